using InteropHub.Fhir.Search;

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

    /// <summary>Live resources matching the criteria, in row-id order after <paramref name="afterRid"/>.</summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, long? afterRid, int limit, CancellationToken ct);

    /// <summary>The current versions of the given live resources, in the order asked.</summary>
    Task<IReadOnlyList<StoredResource>> ReadManyAsync(string resourceType, IReadOnlyList<string> ids, CancellationToken ct);
}

/// <summary>One write transaction. Disposing without <see cref="CommitAsync"/> rolls everything back.</summary>
public interface IWriteSession : IAsyncDisposable
{
    /// <summary>
    /// Serialises writers on a key until the transaction ends (a PostgreSQL advisory lock; SQLite has one writer
    /// anyway). Used per resource id and per conditional criteria so parallel identical requests run one after another.
    /// </summary>
    Task LockAsync(string key, CancellationToken ct);

    Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct);

    Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct);

    Task WriteAsync(VersionRow version, IReadOnlyList<TokenIndexEntry> tokens, CancellationToken ct);

    Task CommitAsync(CancellationToken ct);
}
