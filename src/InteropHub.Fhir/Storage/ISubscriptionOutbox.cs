namespace InteropHub.Fhir.Storage;

/// <summary>A notification owed to a Subscription: the version it is about, in the order the writes made them.</summary>
public sealed record OutboxEntry(long Sequence, string SubscriptionId, string ResourceType, string ResourceId, int VersionId);

/// <summary>
/// The subscription outbox (subscription.html, rest-hook). Rows are added by a write session
/// (<see cref="IWriteSession.AddNotificationAsync"/>) in the transaction of the change, so a notification exists if and
/// only if the change committed; the delivery worker removes a row once the subscriber has taken it.
/// </summary>
public interface ISubscriptionOutbox
{
    /// <summary>Raised after a write session that added rows has committed (this process's writes only).</summary>
    event EventHandler? NotificationsCommitted;

    /// <summary>The subscriptions that have rows waiting.</summary>
    Task<IReadOnlyList<string>> OutboxSubscriptionsAsync(CancellationToken ct);

    /// <summary>The oldest rows waiting for one subscription, in sequence order.</summary>
    Task<IReadOnlyList<OutboxEntry>> ReadOutboxAsync(string subscriptionId, int limit, CancellationToken ct);

    Task RemoveFromOutboxAsync(long sequence, CancellationToken ct);

    /// <summary>Drops every row of a subscription (it was deleted, or its write never committed).</summary>
    Task ClearOutboxAsync(string subscriptionId, CancellationToken ct);

    /// <summary>
    /// Claims (or renews the claim on) delivering one subscription's rows until <paramref name="until"/>, so that of
    /// several hub instances only one delivers it at a time; false while another owner holds an unexpired claim.
    /// </summary>
    Task<bool> ClaimDeliveryAsync(string subscriptionId, string owner, DateTimeOffset until, DateTimeOffset now, CancellationToken ct);

    /// <summary>Gives up every claim of <paramref name="owner"/> (at shutdown, so another instance need not wait for them to expire).</summary>
    Task ReleaseDeliveryAsync(string owner, CancellationToken ct);
}
