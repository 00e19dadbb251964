namespace InteropHub.Fhir.Subscriptions;

/// <summary><c>InteropHub:Subscriptions</c>: how rest-hook notifications are delivered.</summary>
public sealed class SubscriptionOptions
{
    /// <summary>The wait after a first failed delivery; it doubles with each further failure in a row.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest wait between two attempts.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Failed deliveries in a row after which the Subscription goes to <c>error</c> and delivery to it stops.</summary>
    public int MaxFailures { get; set; } = 10;

    /// <summary>How often the worker looks for work it was not told about (other hub instances' writes, retries).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one POST to a subscriber may take before it counts as a failure.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
