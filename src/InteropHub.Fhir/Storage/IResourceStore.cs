using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Storage;

/// <summary>
/// A resource store (SQLite or PostgreSQL). Reads are plain; every write goes through an
/// <see cref="IWriteSession"/>, one database transaction in which the handler checks preconditions,
/// writes the version and its index rows, and commits, so a crash leaves either all of it or none.
/// </summary>
public interface IResourceStore
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

    /// <summary>
    /// Live resources of the criteria's types matching them, ordered by <paramref name="sort"/> and then by row id,
    /// starting after <paramref name="after"/> (keyset paging: the cursor holds the sort values and row id of the
    /// last match of the previous page, so pages stay correct while data changes).
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after, int limit, CancellationToken ct);

    /// <summary>Live resources matching the criteria, in row-id order after <paramref name="afterRid"/>.</summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, long? afterRid, int limit, CancellationToken ct) =>
        FindAsync(criteria, [], afterRid is { } rid ? new SearchCursor([], rid) : null, limit, ct);

    /// <summary>How many live resources match (<c>_total=accurate</c>).</summary>
    Task<long> CountAsync(SearchCriteria criteria, CancellationToken ct);

    /// <summary>
    /// About how many live resources match (<c>_total=estimate</c>): a store that can estimate without counting
    /// (PostgreSQL's planner statistics) does; the others count.
    /// </summary>
    Task<long> EstimateCountAsync(SearchCriteria criteria, CancellationToken ct) => CountAsync(criteria, ct);

    /// <summary>
    /// The live local targets the given resources reference (<c>_include</c>) through <paramref name="param"/> (null:
    /// any reference parameter), of <paramref name="targetType"/> (null: any type), in row-id order, at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindReferencesAsync(IReadOnlyList<long> rids, string? param, string? targetType, int limit, CancellationToken ct);

    /// <summary>
    /// The live resources that refer to one of <paramref name="targets"/> (<c>_revinclude</c>) through one of
    /// <paramref name="links"/> (each counts for targets of its target type), or that name one of <paramref name="urls"/>
    /// (canonical URLs, each with the type of the resource it is the URL of) through one; in row-id order, at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindReferringAsync(IReadOnlyList<ReferenceLink> links, IReadOnlyList<ResourceKey> targets,
        IReadOnlyList<(string ResourceType, string Url)> urls, int limit, CancellationToken ct);

    /// <summary>
    /// The canonical URLs (without a version) the given resources reference through <paramref name="param"/>
    /// (<c>MeasureReport.measure</c>, <c>CarePlan.instantiatesCanonical</c>), at most <paramref name="limit"/>: what
    /// <c>_include</c> then finds by <c>url</c>.
    /// </summary>
    Task<IReadOnlyList<string>> FindCanonicalReferencesAsync(IReadOnlyList<long> rids, string param, int limit, CancellationToken ct);

    /// <summary>The current versions of the given live resources, in the order asked.</summary>
    Task<IReadOnlyList<StoredResource>> ReadManyAsync(string resourceType, IReadOnlyList<string> ids, CancellationToken ct);
}

/// <summary>One write transaction. Disposing without <see cref="CommitAsync"/> rolls everything back.</summary>
public interface IWriteSession : IAsyncDisposable
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

    /// <summary>How many live resources match, this session's writes included (the total of a search inside a transaction).</summary>
    Task<long> CountAsync(SearchCriteria criteria, CancellationToken ct);

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
