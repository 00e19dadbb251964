using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Storage;
using InteropHub.Fhir.Subscriptions;

namespace InteropHub.Server.Subscriptions;

/// <summary>R4 rest-hook Subscriptions: the write-time matching and the delivery worker (README: Subscriptions).</summary>
public static class SubscriptionServices
{
    public static IServiceCollection AddSubscriptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(_ =>
        {
            var options = new SubscriptionOptions();
            configuration.GetSection("InteropHub:Subscriptions").Bind(options);
            return options;
        });
        services.AddSingleton<ActiveSubscriptions>();
        services.AddSingleton<IWriteRule>(sp => sp.GetRequiredService<ActiveSubscriptions>());
        services.AddSingleton(sp => (ISubscriptionOutbox)sp.GetRequiredService<StoreInstance>().Store);
        services.AddSingleton<SubscriptionDelivery>();
        services.AddHostedService<SubscriptionWorker>();
        return services;
    }
}

/// <summary>
/// Runs <see cref="SubscriptionDelivery"/>. The active subscriptions are loaded before the hub takes requests, so
/// no write after a restart goes unmatched; rows left undelivered by the previous run go out first.
/// </summary>
internal sealed class SubscriptionWorker(SubscriptionDelivery delivery) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await delivery.StartAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => delivery.RunAsync(stoppingToken);
}
