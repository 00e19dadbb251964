using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Storage;

/// <summary>
/// A resource store (SQLite or PostgreSQL). Reads are plain (a search's are those of <see cref="ISearchReader"/>);
/// every write goes through an <see cref="IWriteSession"/>, one database transaction in which the handler checks
/// preconditions, writes the version and its index rows, and commits, so a crash leaves either all of it or none.
/// </summary>
public interface IResourceStore : ISearchReader
{
    /// <summary>Applies pending schema migrations (called once at start-up).</summary>
    Task MigrateAsync(CancellationToken ct);

    Task<IWriteSession> BeginWriteAsync(CancellationToken ct);

    /// <summary>The current version, deleted or not; null when the id never existed.</summary>
    Task<StoredResource?> ReadAsync(string resourceType, string id, CancellationToken ct);

    Task<StoredResource?> ReadVersionAsync(string resourceType, string id, int versionId, CancellationToken ct);

    /// <summary>Versions newest first, filtered by type, id and <c>_since</c>, keyset-paged on the version key.</summary>
    Task<IReadOnlyList<HistoryEntry>> ReadHistoryAsync(HistoryQuery query, CancellationToken ct);

    /// <summary>How many versions the query's filters select, ignoring its count and paging key.</summary>
    Task<long> CountHistoryAsync(HistoryQuery query, CancellationToken ct);

    /// <summary>Live resources matching the criteria, in row-id order after <paramref name="afterRid"/>.</summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, long? afterRid, int limit, CancellationToken ct) =>
        FindAsync(criteria, [], afterRid is { } rid ? new SearchCursor([], rid) : null, limit, ct);
}

/// <summary>
/// One write transaction. Disposing without <see cref="CommitAsync"/> rolls everything back. Its searches
/// (<see cref="ISearchReader"/>, and the unsorted finds below) see its own writes.
/// </summary>
public interface IWriteSession : ISearchReader, IAsyncDisposable
{
    /// <summary>
    /// Serialises writers on a key until the transaction ends (a PostgreSQL advisory lock; SQLite has one writer
    /// anyway). Used per resource id and per conditional criteria so parallel identical requests run one after another.
    /// The lock holds before anything the session reads or writes after asking for it; PostgreSQL sends it with that
    /// next statement, so asking costs no round trip of its own.
    /// </summary>
    Task LockAsync(string key, CancellationToken ct);

    /// <summary>Takes several locks, in the order given (callers sort them, so writers never wait on each other crosswise).</summary>
    Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct);

    /// <summary>
    /// Takes several locks like <see cref="LockAllAsync"/>, but gives up when another writer keeps one of them for more
    /// than a moment: the transaction then fails with PostgreSQL's lock_not_available, which <see cref="WriteSessions"/>
    /// runs again. For locks taken out of the canonical order, where waiting could close a cycle of waiters that only
    /// the database's deadlock check (after a second) would break.
    /// </summary>
    Task LockAllOrGiveUpAsync(IReadOnlyList<string> keys, CancellationToken ct);

    Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct);

    /// <summary>The current versions (deleted ones included) of those of the given resources that exist, in one round trip.</summary>
    Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct);

    /// <summary>The matches, each with its current version (<see cref="ResourceMatch.Current"/>), read by the same statement.</summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct);

    /// <summary>
    /// Several <see cref="FindAsync"/>s and a <see cref="ReadCurrentManyAsync"/> of <paramref name="read"/> in one round
    /// trip; the answers in the order of the searches.
    /// </summary>
    Task<SessionReads> FindManyAsync(IReadOnlyList<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
        IReadOnlyList<(string ResourceType, string Id)> read, CancellationToken ct);

    /// <summary>Writes the version, makes it current and replaces the resource's index rows with <paramref name="index"/>.</summary>
    Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct);

    /// <summary>Adds a row to the subscription outbox (<see cref="ISubscriptionOutbox"/>) for a version written in this session.</summary>
    Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct);

    /// <summary>
    /// Marks an inbox message done (<see cref="IInboxStore.CompleteAsync"/>) in this session's transaction: the writes a
    /// message made and its completion commit together, or neither does.
    /// </summary>
    Task CompleteInboxAsync(long id, InboxStatus status, string? outcome, CancellationToken ct);

    /// <summary>
    /// Stores a message in the inbox already done (status and outcome as <see cref="CompleteInboxAsync"/> records
    /// them) in this session's transaction, for a message applied by the transaction that receives it: the message,
    /// its writes and its completion commit together, or none does. A message id the source used before fails the
    /// transaction (the inbox's unique key) at the latest when it commits; the sender is then answered by the inbox's
    /// own path (<see cref="IInboxStore.AcceptAsync"/>).
    /// </summary>
    Task<InboxReceipt> AddInboxAsync(string source, string messageId, string contentType, byte[] body, InboxStatus status, string? outcome,
        CancellationToken ct);

    /// <summary>
    /// Writes named values (<see cref="IHubStateStore"/>; a name given twice keeps its last value) in this session's
    /// transaction, so they commit with its writes or not at all.
    /// </summary>
    Task WriteStatesAsync(IReadOnlyList<KeyValuePair<string, string>> states, CancellationToken ct);

    /// <summary>
    /// Adds to named counters (<see cref="IHubStateStore"/>; a value is a decimal count, a new name starts at zero) in
    /// this session's transaction: an add commits with the writes it counts, and concurrent adds never lose one.
    /// </summary>
    Task AddToCountsAsync(IReadOnlyList<KeyValuePair<string, long>> counts, CancellationToken ct);

    /// <summary>Which of the given ids exist as resources of the type, deleted or not (bulk import: new or a new version?).</summary>
    Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct);

    /// <summary>
    /// Writes the first versions of many new resources by the store's fastest path (PostgreSQL: binary COPY) in this
    /// transaction; an id that exists fails the transaction (see <see cref="IBulkLoader"/>).
    /// </summary>
    Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct);

    /// <summary>
    /// Records an import job's position and the lines that failed since the last call in this transaction, so a
    /// batch of resources and the position after it commit together (see <see cref="IImportJobStore"/>). Only when
    /// the job is running and its stored progress is still <paramref name="expected"/>: otherwise (another runner
    /// moved it on) nothing is recorded and the answer is false, and the caller must roll back.
    /// </summary>
    Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors, CancellationToken ct);

    Task CommitAsync(CancellationToken ct);
}
