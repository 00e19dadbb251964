using InteropHub.Hub.ResultRecognition;

namespace InteropHub.Server.Jobs;

/// <summary>
/// Re-tags results when the recognition catalogue changes: every <c>InteropHub:Recognition:CheckEvery</c> (default one
/// minute) it compares the stored catalogue's version with the one the last pass ran for, and runs a
/// <see cref="RecognitionRetagging"/> pass when they differ. The first check after start-up always runs a pass, so a
/// pass cut short by a stop is completed after the restart.
/// </summary>
internal sealed class RecognitionTagWorker(RecognitionRetagging retagging, IConfiguration configuration, TimeProvider clock, ILogger<RecognitionTagWorker> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue<TimeSpan?>("InteropHub:Recognition:CheckEvery") ?? TimeSpan.FromMinutes(1);
        using var timer = new PeriodicTimer(interval, clock);
        string? done = null;
        do
        {
            try
            {
                var version = await retagging.CatalogueVersionAsync(stoppingToken);
                if (version is not null && version != done)
                {
                    var rewritten = await retagging.RunOnceAsync(stoppingToken);
                    logger.LogInformation("Recognition catalogue {Version}: re-tagged {Count} results.", version, rewritten);
                    done = version;
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
