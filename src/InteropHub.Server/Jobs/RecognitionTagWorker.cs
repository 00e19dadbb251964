using InteropHub.Hub.ResultRecognition;

namespace InteropHub.Server.Jobs;

/// <summary>
/// Re-tags results when the recognition catalogue changes: every <c>InteropHub:Recognition:CheckEvery</c> (default one
/// minute, and once at start-up) it runs <see cref="RecognitionRetagging.RunIfCatalogueChangedAsync"/>.
/// </summary>
internal sealed class RecognitionTagWorker(RecognitionRetagging retagging, IConfiguration configuration, TimeProvider clock, ILogger<RecognitionTagWorker> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue<TimeSpan?>("InteropHub:Recognition:CheckEvery") ?? TimeSpan.FromMinutes(1);
        using var timer = new PeriodicTimer(interval, clock);
        do
        {
            try
            {
                if (await retagging.RunIfCatalogueChangedAsync(stoppingToken) is { } rewritten)
                {
                    logger.LogInformation("The recognition catalogue changed: re-tagged {Count} results.", rewritten);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Re-tagging results for the recognition catalogue failed; trying again in {Interval}.", interval);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
