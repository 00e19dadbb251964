using InteropHub.Adapters.Ingest;

namespace InteropHub.Server.Adapters;

/// <summary>
/// At start-up, processes the inbox messages an interrupted run acknowledged (they are stored) but did not finish:
/// a crash between acknowledgement and completion loses nothing.
/// </summary>
internal sealed class InboxRecovery(IngestPipeline pipeline, ILogger<InboxRecovery> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var recovered = await pipeline.RecoverAsync(stoppingToken);
        if (recovered > 0)
        {
            logger.LogInformation("Processed {Count} inbox messages left by an interrupted run.", recovered);
        }
    }
}
