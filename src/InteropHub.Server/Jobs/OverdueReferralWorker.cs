using InteropHub.Hub.Referrals;

namespace InteropHub.Server.Jobs;

/// <summary>Runs <see cref="OverdueReferrals"/> every <see cref="ReferralOptions.CheckEvery"/> on the hub's clock.</summary>
internal sealed class OverdueReferralWorker(OverdueReferrals overdue, ReferralOptions options, TimeProvider clock, ILogger<OverdueReferralWorker> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.CheckEvery, clock);
        do
        {
            try
            {
                var flagged = await overdue.RunOnceAsync(clock.GetUtcNow(), stoppingToken);
                if (flagged > 0)
                {
                    logger.LogInformation("Flagged {Count} referrals not accepted within {AcceptWithin} as overdue.", flagged, options.AcceptWithin);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Looking for overdue referrals failed; trying again in {Interval}.", options.CheckEvery);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
