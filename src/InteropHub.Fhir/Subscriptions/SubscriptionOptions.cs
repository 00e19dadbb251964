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

    /// <summary>
    /// URLs (with <c>:*</c> for any port) under which channel endpoints must lie. Empty: any endpoint but this machine
    /// and link-local addresses (<see cref="OutboundUrls"/>), checked when a Subscription is written and when the
    /// hub connects (a name may resolve to one).
    /// </summary>
    public string[] AllowedEndpoints { get; set; } = [];

    public const string AllowedEndpointsSetting = "InteropHub:Subscriptions:AllowedEndpoints";

    /// <summary>How long one POST to a subscriber may take before it counts as a failure.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
