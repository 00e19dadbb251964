namespace InteropHub.Fhir.Storage;

public enum InboxStatus
{
    /// <summary>Stored and acknowledged, not processed yet (or processing was interrupted by a crash).</summary>
    Received,

    /// <summary>Mapped and committed to the FHIR store.</summary>
    Processed,

    /// <summary>Processing failed: a dead letter, with the reason, waiting for a replay.</summary>
    Failed,
}

/// <summary>One inbound legacy message (an HL7 v2 message, a township batch, a birth certificate) exactly as received.</summary>
public sealed record InboxMessage(
    long Id,
    string Source,
    string MessageId,
    string ContentHash,
    DateTimeOffset ReceivedAt,
    string ContentType,
    byte[] Body,
    InboxStatus Status,
    int Attempts,
    string? Outcome,
    DateTimeOffset? ProcessedAt);

/// <summary>
/// A message stored by <see cref="IWriteSession.AddInboxAsync"/>: its inbox id, known once the session has committed.
/// </summary>
public sealed class InboxReceipt
{
    private long? _id;

    /// <summary>The stored message's id; read it only after the session committed.</summary>
    public long Id => _id ?? throw new InvalidOperationException("The inbox message has no id before its session commits.");

    /// <summary>Called by the store when the row is inserted.</summary>
    public void Stored(long id) => _id = id;
}

public sealed record InboxCounts(string Source, long Received, long Processed, long Failed);

/// <summary>
/// The durable inbox of the adapters: every inbound message is stored here (and committed) before it is
/// acknowledged, so nothing accepted is ever lost; processing marks it done or moves it to the dead letters,
/// from where it can be replayed. Accepting is idempotent on (source, message id) and on the content hash.
/// </summary>
public interface IInboxStore
{
    /// <summary>Stores a message; when the same source and message id (or the same bytes) were stored before, returns that one with <c>Duplicate</c>.</summary>
    Task<(InboxMessage Message, bool Duplicate)> AcceptAsync(string source, string messageId, string contentType, byte[] body, CancellationToken ct);

    Task<InboxMessage?> GetAsync(long id, CancellationToken ct);

    /// <summary>Messages in a status, oldest first, after <paramref name="afterId"/>.</summary>
    Task<IReadOnlyList<InboxMessage>> ListAsync(InboxStatus status, long? afterId, int limit, CancellationToken ct) => ListAsync(status, null, afterId, limit, ct);

    /// <summary>Messages in a status, of one source when <paramref name="source"/> is given, oldest first, after <paramref name="afterId"/>.</summary>
    Task<IReadOnlyList<InboxMessage>> ListAsync(InboxStatus status, string? source, long? afterId, int limit, CancellationToken ct);

    /// <summary>Records the outcome of one processing attempt (Processed or Failed with an OperationOutcome JSON).</summary>
    Task CompleteAsync(long id, InboxStatus status, string? outcome, CancellationToken ct);

    Task<IReadOnlyList<InboxCounts>> CountsAsync(CancellationToken ct);
}
