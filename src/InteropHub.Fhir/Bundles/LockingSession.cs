using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Bundles;

/// <summary>
/// The write session of a batch entry or a transaction. It takes each lock once (a PostgreSQL advisory lock
/// taken again costs a round trip and is only counted up) and can take a whole set of locks in one canonical
/// order and one round trip, so transactions that touch the same resources in different orders queue instead of
/// deadlocking. It also remembers what each search found until the session next writes (or locks the search's
/// criteria): a transaction looks up a conditional entry's match under its lock, then resolves the entry's id with the
/// same search. The current versions it read are kept too (read by id, or with a search's matches) until the session
/// writes them; one read before its id was locked is read again once it is.
/// </summary>
internal sealed class LockingSession(IWriteSession inner) : ForwardingSearchReader, IWriteSession
{
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Criteria, int Limit), IReadOnlyList<ResourceMatch>> _found = [];
    private readonly Dictionary<(string ResourceType, string Id), StoredResource?> _current = [];

    /// <summary>The resources in <see cref="_current"/> read before their id lock was held, by that lock's name.</summary>
    private readonly Dictionary<string, (string ResourceType, string Id)> _unlocked = new(StringComparer.Ordinal);

    /// <summary>A search entry's reads (sorted matches, includes, their resources) are asked once each: nothing to remember.</summary>
    protected override ISearchReader Reader => inner;

    /// <summary>Takes the locks not held yet in ordinal order of their names (whatever order they come in); every transaction orders the same way.</summary>
    public Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct) => LockAllAsync(keys, giveUp: false, ct);

    /// <summary>
    /// As <see cref="LockAllAsync(IReadOnlyList{string}, CancellationToken)"/>, giving up on a lock another writer keeps
    /// (see <see cref="IWriteSession.LockAllOrGiveUpAsync"/>), but only when the session holds locks already: one that
    /// holds none cannot close a cycle of waiters, and simply waits for a writer that holds the lock long (a township
    /// chunk, an import).
    /// </summary>
    public Task LockAllOrGiveUpAsync(IReadOnlyList<string> keys, CancellationToken ct) => LockAllAsync(keys, giveUp: _held.Count > 0, ct);

    private async Task LockAllAsync(IReadOnlyList<string> keys, bool giveUp, CancellationToken ct)
    {
        var take = keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Where(_held.Add).ToList();
        if (take.Count > 0)
        {
            await (giveUp ? inner.LockAllOrGiveUpAsync(take, ct) : inner.LockAllAsync(take, ct));
            Forget(take);
        }
    }

    public async Task LockAsync(string key, CancellationToken ct)
    {
        if (_held.Add(key))
        {
            await inner.LockAsync(key, ct);
            Forget([key]);
        }
    }

    /// <summary>What a search under newly locked criteria found, or a read of a newly locked resource, before the lock was ours may have changed meanwhile.</summary>
    private void Forget(IReadOnlyList<string> locked)
    {
        foreach (var key in locked)
        {
            if (_unlocked.Remove(key, out var read))
            {
                _current.Remove(read);
            }
            else if (key.StartsWith(VersionWriter.CriteriaLockPrefix, StringComparison.Ordinal))
            {
                foreach (var found in _found.Keys.Where(k => k.Criteria == key[VersionWriter.CriteriaLockPrefix.Length..]).ToList())
                {
                    _found.Remove(found);
                }
            }
        }
    }

    /// <summary>
    /// Reads the current versions of the resources a transaction is about to write in one round trip (after their
    /// locks are held, so they stay as read); each is then answered from here until the session writes it.
    /// </summary>
    public async Task PrefetchAsync(IEnumerable<(string ResourceType, string Id)> keys, CancellationToken ct)
    {
        var wanted = keys.Distinct().Where(k => !_current.ContainsKey(k)).ToList();
        if (wanted.Count > 0)
        {
            Keep(wanted, await inner.ReadCurrentManyAsync(wanted, ct));
        }
    }

    /// <summary>A resource the caller knows is not stored (its id was just made): reading it answers null without a round trip.</summary>
    public void AssumeAbsent(string resourceType, string id) => _current.TryAdd((resourceType, id), null);

    public async Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct) =>
        _current.TryGetValue((resourceType, id), out var current) ? current : await inner.ReadCurrentAsync(resourceType, id, ct);

    public Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct) =>
        inner.ReadCurrentManyAsync(keys, ct);

    public async Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct)
    {
        var key = (criteria.Canonical(resourceType), limit);
        if (!_found.TryGetValue(key, out var matches))
        {
            _found[key] = matches = await inner.FindAsync(resourceType, criteria, limit, ct);
            KeepCurrent(matches);
        }

        return matches;
    }

    public Task<SessionReads> FindManyAsync(IReadOnlyList<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
        IReadOnlyList<(string ResourceType, string Id)> read, CancellationToken ct) => inner.FindManyAsync(searches, read, ct);

    /// <summary>
    /// Runs the searches not remembered yet, and reads the current versions of <paramref name="read"/> not read yet,
    /// in one round trip, and remembers the answers (see <see cref="FindAsync"/> and <see cref="PrefetchAsync"/>).
    /// </summary>
    public async Task FindAheadAsync(IEnumerable<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
        IEnumerable<(string ResourceType, string Id)> read, CancellationToken ct)
    {
        var wanted = searches.DistinctBy(s => (s.Criteria.Canonical(s.ResourceType), s.Limit))
            .Where(s => !_found.ContainsKey((s.Criteria.Canonical(s.ResourceType), s.Limit))).ToList();
        var reads = read.Distinct().Where(k => !_current.ContainsKey(k)).ToList();
        if (wanted.Count < 2 && reads.Count == 0)
        {
            // One search alone is asked when it is needed, in the round trip it is needed in.
            return;
        }

        var answers = await inner.FindManyAsync(wanted, reads, ct);
        for (var i = 0; i < wanted.Count; i++)
        {
            _found[(wanted[i].Criteria.Canonical(wanted[i].ResourceType), wanted[i].Limit)] = answers.Found[i];
            KeepCurrent(answers.Found[i]);
        }

        Keep(reads, answers.Current);
    }

    /// <summary>Keeps the current versions read with a search's matches (not those read already).</summary>
    private void KeepCurrent(IReadOnlyList<ResourceMatch> matches)
    {
        foreach (var match in matches)
        {
            if (match.Current is { } current && !_current.ContainsKey((match.ResourceType, match.Id)))
            {
                Keep([(match.ResourceType, match.Id)], [current]);
            }
        }
    }

    /// <summary>
    /// Keeps what a read of <paramref name="keys"/> found: their current versions, and null for those that do not
    /// exist. Those whose id lock is not held are read again once it is (see <see cref="Forget"/>).
    /// </summary>
    private void Keep(IReadOnlyList<(string ResourceType, string Id)> keys, IReadOnlyList<StoredResource> found)
    {
        foreach (var key in keys)
        {
            _current[key] = null;
            var idLock = VersionWriter.IdLock(key.ResourceType, key.Id);
            if (_held.Contains(idLock))
            {
                _unlocked.Remove(idLock);
            }
            else
            {
                _unlocked[idLock] = key;
            }
        }

        foreach (var current in found)
        {
            _current[(current.ResourceType, current.Id)] = current;
        }
    }

    public Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct)
    {
        _found.Clear();
        _current.Remove((version.ResourceType, version.Id));
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

    public Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct)
    {
        _found.Clear();
        _current.Clear();
        _unlocked.Clear();
        return inner.LoadAsync(resources, ct);
    }

    public Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors, CancellationToken ct) =>
        inner.SaveImportProgressAsync(jobId, expected, progress, errors, ct);

    public Task CommitAsync(CancellationToken ct) => inner.CommitAsync(ct);

    /// <summary>The session belongs to whoever opened it; this wrapper owns nothing.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
