using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Bundles;

/// <summary>
/// The write session of a batch entry or a transaction. It takes each lock once (a PostgreSQL advisory lock
/// taken again costs a round trip and is only counted up) and can take a whole set of locks in one canonical
/// order, so transactions that touch the same resources in different orders queue instead of deadlocking.
/// </summary>
internal sealed class LockingSession(IWriteSession inner) : IWriteSession
{
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);

    /// <summary>Takes the locks in ordinal order of their names; every transaction orders the same way.</summary>
    public async Task LockAllAsync(IEnumerable<string> keys, CancellationToken ct)
    {
        foreach (var key in keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            await LockAsync(key, ct);
        }
    }

    public async Task LockAsync(string key, CancellationToken ct)
    {
        if (_held.Add(key))
        {
            await inner.LockAsync(key, ct);
        }
    }

    public Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct) => inner.ReadCurrentAsync(resourceType, id, ct);

    public Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct) =>
        inner.FindAsync(resourceType, criteria, limit, ct);

    public Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct) => inner.WriteAsync(version, index, ct);

    public Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct) =>
        inner.AddNotificationAsync(subscriptionId, version, ct);

    public Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct) =>
        inner.ExistingIdsAsync(resourceType, ids, ct);

    public Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct) => inner.LoadAsync(resources, ct);

    public Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors, CancellationToken ct) =>
        inner.SaveImportProgressAsync(jobId, expected, progress, errors, ct);

    public Task CommitAsync(CancellationToken ct) => inner.CommitAsync(ct);

    /// <summary>The session belongs to whoever opened it; this wrapper owns nothing.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
