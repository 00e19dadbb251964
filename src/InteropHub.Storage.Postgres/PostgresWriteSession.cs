using System.Data.Common;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// One write transaction on one pooled connection. Disposing without <see cref="CommitAsync"/> rolls back. The session
/// writes BEGIN and COMMIT itself, as the head of its first round trip and the tail of its last, so neither costs a
/// round trip of its own (a transaction Bundle of new resources is one round trip in all).
/// </summary>
/// <param name="notified">Called after a commit of a session that added subscription outbox rows.</param>
/// <param name="written">Called after a commit with the number of resource versions it wrote.</param>
internal sealed class PostgresWriteSession(NpgsqlConnection connection, Action notified, Action<int> written)
    : SqlSearchReader(SqlDialect.Postgres), IWriteSession
{
    private int _loaded;

    private readonly List<string> _changed = [];
    private readonly List<(VersionRow Version, SearchIndexEntries Index)> _waiting = [];
    private readonly HashSet<(string ResourceType, string Id)> _waitingKeys = [];
    private readonly List<(long Key, bool GiveUp)> _locks = [];
    private readonly List<NpgsqlBatchCommand> _beforeCommit = [];
    private readonly List<InboxReceipt> _inboxAdded = [];
    private readonly List<(string Subscription, VersionRow Version)> _notifications = [];
    private bool _begun;
    private bool _committed;

    /// <summary>
    /// A transaction-scoped advisory lock: released by commit or rollback, so a crashed or abandoned writer can
    /// never leave it held, and it serialises writers of every hub instance on the database. It is taken at the head
    /// of the session's next round trip (see <see cref="AddWaiting"/>), before anything read or written after it.
    /// </summary>
    public Task LockAsync(string key, CancellationToken ct)
    {
        _locks.Add((AdvisoryLockKeys.For(key), false));
        return Task.CompletedTask;
    }

    /// <summary>The locks, taken one after another in the order of the list, at the head of the next round trip.</summary>
    public Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        _locks.AddRange(keys.Select(k => (AdvisoryLockKeys.For(k), false)));
        return Task.CompletedTask;
    }

    /// <summary>
    /// The locks, as <see cref="LockAllAsync"/>, under a <c>lock_timeout</c> of <see cref="GiveUpAfter"/>: a wait
    /// longer than that fails the transaction with lock_not_available (55P03), which the write session runs again.
    /// </summary>
    public Task LockAllOrGiveUpAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        _locks.AddRange(keys.Select(k => (AdvisoryLockKeys.For(k), true)));
        return Task.CompletedTask;
    }

    /// <summary>Long enough for a writer that holds the lock to commit (milliseconds), far shorter than the second a deadlock takes to be found.</summary>
    private const string GiveUpAfter = "200ms";

    public async Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct)
    {
        // A read by id sees only that resource's row: the versions waiting go in first only when it is one of them.
        var withWrites = _waitingKeys.Contains((resourceType, id));
        return await QueryAsync([PostgresResourceStore.ReadCurrentCommand(resourceType, id)], withWrites,
            async reader => (await PostgresResourceStore.ReadCurrentRowsAsync(reader, ct)).SingleOrDefault(), ct);
    }

    public async Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct)
    {
        var withWrites = keys.Any(_waitingKeys.Contains);
        return await QueryAsync([PostgresResourceStore.ReadCurrentManyCommand(keys)], withWrites,
            async reader => await PostgresResourceStore.ReadCurrentRowsAsync(reader, ct), ct);
    }

    public async Task<SessionReads> FindManyAsync(IReadOnlyList<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
        IReadOnlyList<(string ResourceType, string Id)> read, CancellationToken ct)
    {
        var commands = searches.Select(s => PostgresResourceStore.FindCommand(s.Criteria, s.Limit)).ToList();
        if (read.Count > 0)
        {
            commands.Add(PostgresResourceStore.ReadCurrentManyCommand(read));
        }

        return await QueryAsync(commands, withWrites: true, async reader =>
        {
            var found = new List<IReadOnlyList<ResourceMatch>>();
            for (var i = 0; i < searches.Count; i++)
            {
                found.Add(await PostgresResourceStore.ReadMatchesAsync(reader, ct));
                await reader.NextResultAsync(ct);
            }

            return new SessionReads(found, read.Count > 0 ? await PostgresResourceStore.ReadCurrentRowsAsync(reader, ct) : []);
        }, ct);
    }

    public async Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct) =>
        await QueryAsync([PostgresResourceStore.FindCommand(criteria, limit)], withWrites: true,
            async reader => await PostgresResourceStore.ReadMatchesAsync(reader, ct), ct);

    /// <summary>A search's statement (sorted matches, totals, includes), after the versions waiting: it sees the session's writes.</summary>
    protected override Task<T> RunAsync<T>(SqlCommandText sql, bool generic, Func<DbDataReader, Task<T>> read, CancellationToken ct) =>
        QueryAsync([PostgresResourceStore.BatchCommand(sql)], withWrites: true, read, ct);

    /// <summary>
    /// Runs <paramref name="commands"/> in one round trip after the locks waiting (and, <paramref name="withWrites"/>,
    /// the versions waiting), and reads their results from the first.
    /// </summary>
    private async Task<T> QueryAsync<T>(IReadOnlyList<NpgsqlBatchCommand> commands, bool withWrites, Func<NpgsqlDataReader, Task<T>> read,
        CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        var skip = AddWaiting(batch, withWrites);
        foreach (var command in commands)
        {
            batch.BatchCommands.Add(command);
        }

        await using var reader = await batch.ExecuteReaderAsync(ct);
        for (var i = 0; i < skip; i++)
        {
            await reader.NextResultAsync(ct);
        }

        return await read(reader);
    }

    public async Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct)
    {
        // Versions wait, with the session's other writes, for the next statement that reads or the commit, and go in
        // one round trip of a few multi-row statements (AddWaiting). A second version of one resource first sends the
        // one waiting, so no statement writes a resource twice.
        if (!_waitingKeys.Add((version.ResourceType, version.Id)))
        {
            await FlushAsync(ct);
            _waitingKeys.Add((version.ResourceType, version.Id));
        }

        _changed.Add($"{version.ResourceType}/{version.Id}");
        _waiting.Add((version, index));
    }

    /// <summary>Sends what waits (BEGIN, locks, versions) in one round trip, before a statement that cannot go with it.</summary>
    private async Task FlushAsync(CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        AddWaiting(batch, withWrites: true);
        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>
    /// Puts at the head of a round trip the BEGIN of the session's first, the locks asked for since the last one in
    /// the order asked, then (when <paramref name="withWrites"/>) the versions waiting in <see cref="_waiting"/>: a
    /// multi-row statement per table. Returns how many results they add ahead of the statements that follow (the
    /// lock's; BEGIN and writes have none).
    /// </summary>
    private int AddWaiting(NpgsqlBatch batch, bool withWrites)
    {
        var results = 0;
        if (!_begun)
        {
            // READ COMMITTED: each statement sees what committed before it started, so a writer that waited on an
            // advisory lock reads the state its predecessor committed while it held that lock.
            batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
            _begun = true;
        }

        // One statement per run of locks asked the same way; those that may give up wait under a lock_timeout.
        for (var start = 0; start < _locks.Count;)
        {
            var giveUp = _locks[start].GiveUp;
            var run = _locks.Skip(start).TakeWhile(l => l.GiveUp == giveUp).Select(l => l.Key).ToArray();
            start += run.Length;
            if (giveUp)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"SET LOCAL lock_timeout = '{GiveUpAfter}'"));
            }

            var take = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock(u.k) FROM unnest($1) WITH ORDINALITY AS u (k, n) ORDER BY u.n");
            take.Parameters.Add(Positional(run));
            batch.BatchCommands.Add(take);
            results++;
            if (giveUp)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL lock_timeout TO DEFAULT"));
            }
        }

        _locks.Clear();

        if (withWrites && _waiting.Count > 0)
        {
            var waiting = _waiting.ToList();
            _waiting.Clear();
            _waitingKeys.Clear();
            var created = waiting.Where(w => w.Version.VersionId == 1).ToList();
            var updated = waiting.Where(w => w.Version.VersionId > 1).ToList();

            // A first version's row id is its key, known here. A plain insert: a first version of an id that exists
            // (which the callers' locks and version arithmetic rule out) fails the transaction on the unique constraint
            // instead of overwriting anything.
            if (created.Count > 0)
            {
                batch.BatchCommands.Add(Versions("INSERT INTO resource (rid, resource_type, id, version, last_key, deleted, content) SELECT u.k, u.t, u.id, u.v, u.k, u.d, u.c", created));
            }

            // A later version keeps the row id its first version set (the conflict branch leaves it alone), so the index
            // rows of a resource keep their key across updates, deletes and re-creation; its old index rows go, and its
            // new ones find the row id by the resource's type and id.
            if (updated.Count > 0)
            {
                batch.BatchCommands.Add(Versions("""
                    INSERT INTO resource (rid, resource_type, id, version, last_key, deleted, content) SELECT u.k, u.t, u.id, u.v, u.k, u.d, u.c
                    """, updated, """
                    ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version, last_key = excluded.last_key,
                        deleted = excluded.deleted, content = excluded.content
                    """));
                foreach (var table in Tables)
                {
                    var clear = new NpgsqlBatchCommand($"""
                        DELETE FROM {table} WHERE rid IN
                            (SELECT r.rid FROM resource r JOIN unnest($1, $2) AS u (t, id) ON r.resource_type = u.t AND r.id = u.id)
                        """);
                    clear.Parameters.Add(Positional(updated.Select(u => u.Version.ResourceType).ToArray()));
                    clear.Parameters.Add(Positional(updated.Select(u => u.Version.Id).ToArray()));
                    batch.BatchCommands.Add(clear);
                }
            }

            batch.BatchCommands.Add(Versions("INSERT INTO resource_history (key, resource_type, id, version, method, deleted, content) SELECT u.k, u.t, u.id, u.v, u.m, u.d, u.c", waiting));
            AddIndexRows(batch, created.Select(c => (c.Version.Key, c.Version.ResourceType, c.Version.Id, c.Index)).ToList(), byId: false);
            AddIndexRows(batch, updated.Select(c => (c.Version.Key, c.Version.ResourceType, c.Version.Id, c.Index)).ToList(), byId: true);
        }

        return results;
    }

    /// <summary>A multi-row statement over the versions as arrays <c>u (k, t, id, v, m, d, c)</c>.</summary>
    private static NpgsqlBatchCommand Versions(string head, IReadOnlyList<(VersionRow Version, SearchIndexEntries Index)> versions, string tail = "")
    {
        var command = new NpgsqlBatchCommand($"{head} FROM unnest($1, $2, $3, $4, $5, $6, $7) AS u (k, t, id, v, m, d, c) {tail}");
        command.Parameters.Add(Positional(versions.Select(c => c.Version.Key).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.ResourceType).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.Id).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.VersionId).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.Method).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.IsDeleted).ToArray()));
        command.Parameters.Add(Positional(versions.Select(c => c.Version.Json).ToArray()));
        return command;
    }

    /// <summary>
    /// A parameter without a name, for <c>$n</c> in the statement: a statement whose parameters are all positional is
    /// sent as it is, where named ones make the driver parse and rewrite its text on every execution.
    /// </summary>
    internal static NpgsqlParameter<T> Positional<T>(T value) => new() { TypedValue = value };

    /// <summary>
    /// One multi-row insert per index table that has rows, for any number of resources: by their row id (a first
    /// version's key), or <paramref name="byId"/>, by the row id stored for their type and id.
    /// </summary>
    private static void AddIndexRows(NpgsqlBatch batch, IReadOnlyList<(long Rid, string Type, string Id, SearchIndexEntries Index)> resources, bool byId)
    {
        Insert(batch, resources, byId, "search_string", e => e.Strings, r => r.Param, r => r.Group,
            Column<StringIndexRow, string>("norm", r => r.Normalized), Column<StringIndexRow, string>("exact", r => r.Exact));
        Insert(batch, resources, byId, "search_token", e => e.Tokens, r => r.Param, r => r.Group,
            Column<TokenIndexRow, string>("system", r => r.System), Column<TokenIndexRow, string>("code", r => r.Code),
            Column<TokenIndexRow, string>("text", r => r.Text));
        Insert(batch, resources, byId, "search_date", e => e.Dates, r => r.Param, r => r.Group,
            Column<DateIndexRow, long>("low", r => r.Low), Column<DateIndexRow, long>("high", r => r.High));
        Insert(batch, resources, byId, "search_number", e => e.Numbers, r => r.Param, r => r.Group, Column<NumberIndexRow, double>("value", r => r.Value));
        Insert(batch, resources, byId, "search_quantity", e => e.Quantities, r => r.Param, r => r.Group,
            Column<QuantityIndexRow, string>("system", r => r.System), Column<QuantityIndexRow, string>("code", r => r.Code),
            Column<QuantityIndexRow, double>("value", r => r.Value), Column<QuantityIndexRow, string>("canonical_code", r => r.CanonicalCode),
            Column<QuantityIndexRow, double>("canonical_value", r => r.CanonicalValue));
        Insert(batch, resources, byId, "search_uri", e => e.Uris, r => r.Param, r => r.Group, Column<UriIndexRow, string>("uri", r => r.Uri));
        Insert(batch, resources, byId, "search_reference", e => e.References, r => r.Param, r => r.Group,
            Column<ReferenceIndexRow, string>("target_type", r => r.TargetType), Column<ReferenceIndexRow, string>("target_id", r => r.TargetId),
            Column<ReferenceIndexRow, string>("url", r => r.Url));
    }

    public async Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (ids.Count == 0)
        {
            return found;
        }

        await FlushAsync(ct);

        await using var command = new NpgsqlCommand("SELECT id FROM resource WHERE resource_type = @t AND id = ANY(@ids)", connection);
        command.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", ids.ToArray()));
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            found.Add(reader.GetString(0));
        }

        return found;
    }

    public async Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct)
    {
        await FlushAsync(ct);
        await PostgresResourceStore.CopyResourcesAsync(connection, resources, ct);
        _loaded += resources.Count;
    }

    public async Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors,
        CancellationToken ct)
    {
        await FlushAsync(ct);
        await using (var update = new NpgsqlCommand("UPDATE import_job SET progress = @p WHERE id = @id AND state = 0 AND progress = @e", connection))
        {
            update.Parameters.Add(new NpgsqlParameter<string>("id", jobId));
            update.Parameters.Add(new NpgsqlParameter<string>("e", expected));
            update.Parameters.Add(new NpgsqlParameter<string>("p", progress));
            if (await update.ExecuteNonQueryAsync(ct) != 1)
            {
                return false;
            }
        }

        if (errors.Count > 0)
        {
            await using var insert = new NpgsqlCommand("""
                INSERT INTO import_error (job_id, input, line, message) SELECT @id, u.input, u.line, u.message
                FROM unnest(@inputs, @lines, @messages) AS u (input, line, message)
                """, connection);
            insert.Parameters.Add(new NpgsqlParameter<string>("id", jobId));
            insert.Parameters.Add(new NpgsqlParameter<int[]>("inputs", errors.Select(e => e.Input).ToArray()));
            insert.Parameters.Add(new NpgsqlParameter<long[]>("lines", errors.Select(e => e.Line).ToArray()));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("messages", errors.Select(e => e.Message).ToArray()));
            await insert.ExecuteNonQueryAsync(ct);
        }

        return true;
    }

    private static readonly string[] Tables =
        ["search_string", "search_token", "search_date", "search_number", "search_quantity", "search_uri", "search_reference"];

    private static (string Name, Func<IEnumerable<TRow>, NpgsqlParameter> Values) Column<TRow, TValue>(string name, Func<TRow, TValue> value) =>
        (name, rows => Positional(rows.Select(value).ToArray()));

    private static void Insert<TRow>(NpgsqlBatch batch, IReadOnlyList<(long Rid, string Type, string Id, SearchIndexEntries Index)> resources, bool byId,
        string table, Func<SearchIndexEntries, IReadOnlyCollection<TRow>> of, Func<TRow, string> param, Func<TRow, int> group,
        params (string Name, Func<IEnumerable<TRow>, NpgsqlParameter> Values)[] columns)
    {
        var rows = resources.SelectMany(r => of(r.Index).Select(row => (r.Rid, r.Type, r.Id, Row: row))).ToList();
        if (rows.Count == 0)
        {
            return;
        }

        // Parameters $1–$3 are the row ids (or ids), types and params, $4 the groups, then one per column.
        var names = string.Join(", ", columns.Select(c => c.Name));
        var arrays = string.Join(", ", columns.Select((_, i) => $"${i + 5}"));
        var values = $"u.t, u.param, {string.Join(", ", columns.Select(c => "u." + c.Name))}, u.grp";
        var insert = new NpgsqlBatchCommand(byId
            ? $"INSERT INTO {table} (rid, resource_type, param, {names}, grp) SELECT r.rid, {values} " +
              $"FROM unnest($1, $2, $3, {arrays}, $4) AS u (id, t, param, {names}, grp) JOIN resource r ON r.resource_type = u.t AND r.id = u.id"
            : $"INSERT INTO {table} (rid, resource_type, param, {names}, grp) SELECT u.rid, {values} " +
              $"FROM unnest($1, $2, $3, {arrays}, $4) AS u (rid, t, param, {names}, grp)");
        insert.Parameters.Add(byId ? Positional(rows.Select(r => r.Id).ToArray()) : Positional(rows.Select(r => r.Rid).ToArray()));
        insert.Parameters.Add(Positional(rows.Select(r => r.Type).ToArray()));
        insert.Parameters.Add(Positional(rows.Select(r => param(r.Row)).ToArray()));
        insert.Parameters.Add(Positional(rows.Select(r => group(r.Row)).ToArray()));
        foreach (var (_, column) in columns)
        {
            insert.Parameters.Add(column(rows.Select(r => r.Row)));
        }

        batch.BatchCommands.Add(insert);
    }

    public async Task CommitAsync(CancellationToken ct)
    {
        // Notifications are delivered when (and only if) the transaction commits: every hub instance's read cache
        // hears about the change (see PostgresResourceStore.ListenAsync). They go with the last new resources.
        NpgsqlBatchCommand? notify = null;
        if (_changed.Count > 0)
        {
            notify = new NpgsqlBatchCommand($"SELECT pg_notify('{PostgresResourceStore.ChangeChannel}', k) FROM unnest($1) AS k");
            notify.Parameters.Add(Positional(_changed.Distinct().ToArray()));
        }

        if (_notifications.Count > 0)
        {
            _beforeCommit.Add(PostgresResourceStore.AddNotificationsCommand(_notifications));
        }

        if (_begun || _locks.Count > 0 || _waiting.Count > 0 || notify is not null || _beforeCommit.Count > 0)
        {
            await using var batch = new NpgsqlBatch(connection);
            AddWaiting(batch, withWrites: true);
            if (notify is not null)
            {
                batch.BatchCommands.Add(notify);
            }

            foreach (var command in _beforeCommit)
            {
                batch.BatchCommands.Add(command);
            }

            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            if (_inboxAdded.Count == 0)
            {
                await batch.ExecuteNonQueryAsync(ct);
            }
            else
            {
                await ReadInboxIdsAsync(batch, ct);
            }
        }

        _committed = true;
        written(_changed.Count + _loaded);
        if (_notifications.Count > 0)
        {
            notified();
        }
    }

    /// <summary>Sent with the commit, like an inbox completion.</summary>
    public Task WriteStatesAsync(IReadOnlyList<KeyValuePair<string, string>> states, CancellationToken ct)
    {
        if (states.Count > 0)
        {
            _beforeCommit.Add(PostgresResourceStore.WriteStatesCommand(states));
        }

        return Task.CompletedTask;
    }

    /// <summary>Sent with the commit: the counter rows stay locked only while it commits.</summary>
    public Task AddToCountsAsync(IReadOnlyList<KeyValuePair<string, long>> counts, CancellationToken ct)
    {
        if (counts.Count > 0)
        {
            _beforeCommit.Add(PostgresResourceStore.AddToCountsCommand(counts));
        }

        return Task.CompletedTask;
    }

    /// <summary>Sent with the commit: the completion costs no round trip of its own and commits with the writes.</summary>
    public Task CompleteInboxAsync(long id, InboxStatus status, string? outcome, CancellationToken ct)
    {
        _beforeCommit.Add(PostgresResourceStore.CompleteCommand(id, status, outcome));
        return Task.CompletedTask;
    }

    /// <summary>Sent with the commit, like a completion; the receipt gets the new row's id from the commit's results.</summary>
    public Task<InboxReceipt> AddInboxAsync(string source, string messageId, string contentType, byte[] body, InboxStatus status, string? outcome,
        CancellationToken ct)
    {
        var receipt = new InboxReceipt();
        _beforeCommit.Add(PostgresResourceStore.AddCommand(source, messageId, contentType, body, status, outcome));
        _inboxAdded.Add(receipt);
        return Task.FromResult(receipt);
    }

    /// <summary>Runs the commit's round trip and hands each inbox message it stored its id, in the order they were added.</summary>
    private async Task ReadInboxIdsAsync(NpgsqlBatch batch, CancellationToken ct)
    {
        var next = 0;
        await using var reader = await batch.ExecuteReaderAsync(ct);
        do
        {
            if (reader.FieldCount == 1 && reader.GetName(0) == PostgresResourceStore.AddedInboxId && await reader.ReadAsync(ct))
            {
                _inboxAdded[next++].Stored(reader.GetInt64(0));
            }
        }
        while (await reader.NextResultAsync(ct));
    }

    /// <summary>
    /// Sent with the commit: the session's outbox rows go in one insert, in the order they were added (their sequence),
    /// so a notification costs no round trip and an import batch's thousands of them one statement.
    /// </summary>
    public Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct)
    {
        _notifications.Add((subscriptionId, version));
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_begun && !_committed)
            {
                await using var rollback = new NpgsqlCommand("ROLLBACK", connection);
                await rollback.ExecuteNonQueryAsync();
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // A broken connection (the pool discards it, and the server ended the transaction with it), or one still
            // busy with a failed statement: the error that brought the session here is the one to report.
        }
        finally
        {
            await connection.DisposeAsync();
        }
    }

    private static void AddVersion(NpgsqlBatchCommand command, VersionRow version)
    {
        command.Parameters.Add(new NpgsqlParameter<long>("k", version.Key));
        command.Parameters.Add(new NpgsqlParameter<string>("t", version.ResourceType));
        command.Parameters.Add(new NpgsqlParameter<string>("id", version.Id));
        command.Parameters.Add(new NpgsqlParameter<int>("v", version.VersionId));
        command.Parameters.Add(new NpgsqlParameter<bool>("d", version.IsDeleted));
        command.Parameters.Add(new NpgsqlParameter<byte[]>("c", version.Json));
    }
}
