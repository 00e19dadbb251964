using System.Collections.Concurrent;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Storage;

/// <summary><c>InteropHub:ReadCache</c>.</summary>
public sealed class ReadCacheOptions
{
    /// <summary>Bytes of resource JSON kept in memory; 0 turns the cache off.</summary>
    public long MaxBytes { get; set; } = 64 * 1024 * 1024;
}

/// <summary>
/// Keeps the current version of recently read resources in memory, so a read is answered without a database
/// round trip. Correctness first:
/// <list type="bullet">
/// <item>this process's writes evict what they wrote as soon as they commit, before the handler answers;</item>
/// <item>on a store with an <see cref="IChangeFeed"/> (PostgreSQL), every instance's commits evict too, and the
/// cache serves nothing while the feed is down;</item>
/// <item>a read that raced with a write never puts the older version back: an entry is only added when no eviction
/// happened between the start of its database read and the insert.</item>
/// </list>
/// Only single-resource reads use it; searches, history and write sessions always read the database.
/// </summary>
public sealed class CachingResourceStore(IResourceStore inner, ReadCacheOptions options) : ForwardingSearchReader, IResourceStore, IChangeListener
{
    private readonly ConcurrentDictionary<(string Type, string Id), StoredResource> _entries = new();
    private long _bytes;
    private long _evictions;
    private long _hits;
    private volatile bool _serving = inner is not IChangeFeed;

    public IResourceStore Inner => inner;

    protected override ISearchReader Reader => inner;

    /// <summary>True while the cache answers reads (always without a change feed; while connected with one).</summary>
    public bool Serving => _serving;

    /// <summary>Reads answered from memory since start.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    public Task MigrateAsync(CancellationToken ct) => inner.MigrateAsync(ct);

    public async Task<IWriteSession> BeginWriteAsync(CancellationToken ct) => new EvictingSession(await inner.BeginWriteAsync(ct), this);

    public async Task<StoredResource?> ReadAsync(string resourceType, string id, CancellationToken ct)
    {
        if (_serving && _entries.TryGetValue((resourceType, id), out var cached))
        {
            Interlocked.Increment(ref _hits);
            return cached;
        }

        var before = Interlocked.Read(ref _evictions);
        var resource = await inner.ReadAsync(resourceType, id, ct);
        if (resource is not null && _serving && options.MaxBytes > 0 && resource.Json.Length < options.MaxBytes / 16
            && Interlocked.Read(ref _evictions) == before)
        {
            Add(resource);
            if (Interlocked.Read(ref _evictions) != before
                && _entries.TryRemove(new KeyValuePair<(string, string), StoredResource>((resourceType, id), resource)))
            {
                // An eviction counted between the check and the add may have looked for the entry before it was there:
                // take it out again (an eviction counted after this check finds and removes it itself).
                Interlocked.Add(ref _bytes, -resource.Json.Length);
            }
        }

        return resource;
    }

    public Task<StoredResource?> ReadVersionAsync(string resourceType, string id, int versionId, CancellationToken ct) =>
        inner.ReadVersionAsync(resourceType, id, versionId, ct);

    public Task<IReadOnlyList<HistoryEntry>> ReadHistoryAsync(HistoryQuery query, CancellationToken ct) => inner.ReadHistoryAsync(query, ct);

    public Task<long> CountHistoryAsync(HistoryQuery query, CancellationToken ct) => inner.CountHistoryAsync(query, ct);

    public Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, long? afterRid, int limit, CancellationToken ct) =>
        inner.FindAsync(resourceType, criteria, afterRid, limit, ct);

    /// <summary>Follows the store's change feed until cancelled (a no-op for stores without one).</summary>
    public Task FollowChangesAsync(CancellationToken ct) => inner is IChangeFeed feed ? feed.ListenAsync(this, ct) : Task.CompletedTask;

    public void Connected()
    {
        Clear();
        _serving = true;
    }

    public void Changed(string resourceType, string id) => Evict(resourceType, id);

    public void Lost()
    {
        _serving = false;
        Clear();
    }

    private void Evict(string resourceType, string id)
    {
        // Count first, remove second: a reader that started before this point will not re-insert the old version.
        Interlocked.Increment(ref _evictions);
        if (_entries.TryRemove((resourceType, id), out var removed))
        {
            Interlocked.Add(ref _bytes, -removed.Json.Length);
        }
    }

    private void Clear()
    {
        Interlocked.Increment(ref _evictions);
        _entries.Clear();
        Interlocked.Exchange(ref _bytes, 0);
    }

    private void Add(StoredResource resource)
    {
        if (Interlocked.Add(ref _bytes, resource.Json.Length) > options.MaxBytes)
        {
            // Over budget: drop everything rather than track recency on every hit; the hot set refills quickly.
            Clear();
            Interlocked.Add(ref _bytes, resource.Json.Length);
        }

        if (!_entries.TryAdd((resource.ResourceType, resource.Id), resource))
        {
            Interlocked.Add(ref _bytes, -resource.Json.Length);
        }
    }

    private sealed class EvictingSession(IWriteSession inner, CachingResourceStore cache) : ForwardingSearchReader, IWriteSession
    {
        private readonly List<(string Type, string Id)> _written = [];

        protected override ISearchReader Reader => inner;

        public Task LockAsync(string key, CancellationToken ct) => inner.LockAsync(key, ct);

        public Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.LockAllAsync(keys, ct);

        public Task LockAllOrGiveUpAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.LockAllOrGiveUpAsync(keys, ct);

        public Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct) => inner.ReadCurrentAsync(resourceType, id, ct);

        public Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct) =>
            inner.ReadCurrentManyAsync(keys, ct);

        public Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct) =>
            inner.FindAsync(resourceType, criteria, limit, ct);

        public Task<SessionReads> FindManyAsync(IReadOnlyList<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
            IReadOnlyList<(string ResourceType, string Id)> read, CancellationToken ct) => inner.FindManyAsync(searches, read, ct);

        public Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct)
        {
            _written.Add((version.ResourceType, version.Id));
            return inner.WriteAsync(version, index, ct);
        }

        public Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct) =>
            inner.AddNotificationAsync(subscriptionId, version, ct);

        public Task WriteStatesAsync(IReadOnlyList<KeyValuePair<string, string>> states, CancellationToken ct) => inner.WriteStatesAsync(states, ct);

        public Task AddToCountsAsync(IReadOnlyList<KeyValuePair<string, long>> counts, CancellationToken ct) => inner.AddToCountsAsync(counts, ct);

        public Task CompleteInboxAsync(long id, InboxStatus status, string? outcome, CancellationToken ct) =>
            inner.CompleteInboxAsync(id, status, outcome, ct);

        public Task<InboxReceipt> AddInboxAsync(string source, string messageId, string contentType, byte[] body, InboxStatus status, string? outcome,
            CancellationToken ct) => inner.AddInboxAsync(source, messageId, contentType, body, status, outcome, ct);

        public Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct) =>
            inner.ExistingIdsAsync(resourceType, ids, ct);

        public Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct) => inner.LoadAsync(resources, ct);

        public Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors, CancellationToken ct) =>
            inner.SaveImportProgressAsync(jobId, expected, progress, errors, ct);

        public async Task CommitAsync(CancellationToken ct)
        {
            try
            {
                await inner.CommitAsync(ct);
            }
            finally
            {
                // Also after a failed commit: whether it landed is unknown, so the cached version may be stale.
                foreach (var (type, id) in _written)
                {
                    cache.Evict(type, id);
                }
            }
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
