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
internal sealed class PostgresWriteSession(NpgsqlConnection connection, Action notified, Action<int> written) : IWriteSession
{
    private int _loaded;

    private readonly List<string> _changed = [];
    private readonly List<(VersionRow Version, SearchIndexEntries Index)> _created = [];
    private readonly List<long> _locks = [];
    private readonly List<NpgsqlBatchCommand> _beforeCommit = [];
    private readonly List<InboxReceipt> _inboxAdded = [];
    private bool _begun;
    private bool _committed;
    private bool _notified;

    /// <summary>
    /// A transaction-scoped advisory lock: released by commit or rollback, so a crashed or abandoned writer can
    /// never leave it held, and it serialises writers of every hub instance on the database. It is taken at the head
    /// of the session's next round trip (see <see cref="AddWaiting"/>), before anything read or written after it.
    /// </summary>
    public Task LockAsync(string key, CancellationToken ct)
    {
        _locks.Add(AdvisoryLockKeys.For(key));
        return Task.CompletedTask;
    }

    /// <summary>The locks, taken one after another in the order of the list, at the head of the next round trip.</summary>
    public Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        _locks.AddRange(keys.Select(AdvisoryLockKeys.For));
        return Task.CompletedTask;
    }

    public async Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct)
    {
        // A read by id sees only that resource's row: the new resources waiting go in first only when it is one of them.
        var withCreated = _created.Exists(c => c.Version.Id == id && c.Version.ResourceType == resourceType);
        return await QueryAsync([PostgresResourceStore.ReadCurrentCommand(resourceType, id)], withCreated,
            async reader => (await PostgresResourceStore.ReadCurrentRowsAsync(reader, ct)).SingleOrDefault(), ct);
    }

    public async Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct)
    {
        var withCreated = _created.Exists(c => keys.Contains((c.Version.ResourceType, c.Version.Id)));
        return await QueryAsync([PostgresResourceStore.ReadCurrentManyCommand(keys)], withCreated,
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

        return await QueryAsync(commands, withCreated: true, async reader =>
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
        await QueryAsync([PostgresResourceStore.FindCommand(criteria, limit)], withCreated: true,
            async reader => await PostgresResourceStore.ReadMatchesAsync(reader, ct), ct);

    /// <summary>
    /// Runs <paramref name="commands"/> in one round trip after the locks waiting (and, <paramref name="withCreated"/>,
    /// the new resources waiting), and reads their results from the first.
    /// </summary>
    private async Task<T> QueryAsync<T>(IReadOnlyList<NpgsqlBatchCommand> commands, bool withCreated, Func<NpgsqlDataReader, Task<T>> read,
        CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        var skip = AddWaiting(batch, withCreated);
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
        _changed.Add($"{version.ResourceType}/{version.Id}");
        // rid is set once, by the first version, and kept by every later one (the conflict branch leaves it alone), so
        // the index rows of a resource keep their key across updates, deletes and re-creation. A first version's rid is
        // its key, known before the insert: it waits, with the session's other new resources, for the next statement
        // that reads or the commit, and they all go in one round trip of one multi-row insert per table. A later version
        // learns the rid from the upsert, then replaces its index rows in a second round trip.
        if (version.VersionId == 1)
        {
            _created.Add((version, index));
            return;
        }

        long rid;
        await using (var batch = new NpgsqlBatch(connection))
        {
            var skip = AddWaiting(batch, withCreated: true);
            var current = new NpgsqlBatchCommand("""
                INSERT INTO resource (rid, resource_type, id, version, last_key, deleted, content)
                VALUES (@k, @t, @id, @v, @k, @d, @c)
                ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version, last_key = excluded.last_key,
                    deleted = excluded.deleted, content = excluded.content
                RETURNING rid
                """);
            AddVersion(current, version);
            batch.BatchCommands.Add(current);

            var history = new NpgsqlBatchCommand("""
                INSERT INTO resource_history (key, resource_type, id, version, method, deleted, content)
                VALUES (@k, @t, @id, @v, @m, @d, @c)
                """);
            AddVersion(history, version);
            history.Parameters.Add(new NpgsqlParameter<string>("m", version.Method));
            batch.BatchCommands.Add(history);

            await using var reader = await batch.ExecuteReaderAsync(ct);
            for (var i = 0; i < skip; i++)
            {
                await reader.NextResultAsync(ct);
            }

            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"The upsert of {version.ResourceType}/{version.Id} returned no row id.");
            }

            rid = reader.GetInt64(0);

            // Run through the remaining results here, so an error in them surfaces as this call's exception.
            while (await reader.NextResultAsync(ct))
            {
            }
        }

        // Replace the index rows in one round trip: a delete per table, then one insert per table taking all rows as arrays.
        await using var replace = new NpgsqlBatch(connection);
        foreach (var table in Tables)
        {
            var clear = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE rid = @rid");
            clear.Parameters.Add(new NpgsqlParameter<long>("rid", rid));
            replace.BatchCommands.Add(clear);
        }

        AddIndexRows(replace, [(rid, version.ResourceType, index)]);
        await replace.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Sends what waits (BEGIN, locks, new resources) in one round trip, before a statement that cannot go with it.</summary>
    private async Task FlushAsync(CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        AddWaiting(batch, withCreated: true);
        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>
    /// Puts at the head of a round trip the BEGIN of the session's first, the locks asked for since the last one in
    /// the order asked, then (when <paramref name="withCreated"/>) the first versions waiting in <see cref="_created"/>:
    /// a multi-row insert per table. Returns how many results they add ahead of the statements that follow (the
    /// lock's; BEGIN and inserts have none).
    /// </summary>
    private int AddWaiting(NpgsqlBatch batch, bool withCreated)
    {
        var results = 0;
        if (!_begun)
        {
            // READ COMMITTED: each statement sees what committed before it started, so a writer that waited on an
            // advisory lock reads the state its predecessor committed while it held that lock.
            batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN ISOLATION LEVEL READ COMMITTED"));
            _begun = true;
        }

        if (_locks.Count > 0)
        {
            var take = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock(u.k) FROM unnest(@keys) WITH ORDINALITY AS u (k, n) ORDER BY u.n");
            take.Parameters.Add(new NpgsqlParameter<long[]>("keys", _locks.ToArray()));
            _locks.Clear();
            batch.BatchCommands.Add(take);
            results++;
        }

        if (withCreated && _created.Count > 0)
        {
            // A plain insert: a first version of an id that exists (which the callers' locks and version arithmetic
            // rule out) fails the transaction on the unique constraint instead of overwriting anything.
            var created = _created.ToList();
            _created.Clear();
            foreach (var (table, method) in new[] { ("resource (rid, resource_type, id, version, last_key, deleted, content) SELECT u.k, u.t, u.id, u.v, u.k, u.d, u.c", false),
                         ("resource_history (key, resource_type, id, version, method, deleted, content) SELECT u.k, u.t, u.id, u.v, u.m, u.d, u.c", true) })
            {
                var insert = new NpgsqlBatchCommand($"INSERT INTO {table} FROM unnest(@k, @t, @id, @v, @m, @d, @c) AS u (k, t, id, v, m, d, c)");
                insert.Parameters.Add(new NpgsqlParameter<long[]>("k", created.Select(c => c.Version.Key).ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<string[]>("t", created.Select(c => c.Version.ResourceType).ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<string[]>("id", created.Select(c => c.Version.Id).ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<int[]>("v", created.Select(c => c.Version.VersionId).ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<string[]>("m", created.Select(c => method ? c.Version.Method : "").ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<bool[]>("d", created.Select(c => c.Version.IsDeleted).ToArray()));
                insert.Parameters.Add(new NpgsqlParameter<byte[][]>("c", created.Select(c => c.Version.Json).ToArray()));
                batch.BatchCommands.Add(insert);
            }

            AddIndexRows(batch, created.Select(c => (c.Version.Key, c.Version.ResourceType, c.Index)).ToList());
        }

        return results;
    }

    /// <summary>One multi-row insert per index table that has rows, for any number of resources.</summary>
    private static void AddIndexRows(NpgsqlBatch batch, IReadOnlyList<(long Rid, string Type, SearchIndexEntries Index)> resources)
    {
        Insert(batch, resources, "search_string", e => e.Strings, r => r.Param, r => r.Group,
            Column<StringIndexRow, string>("norm", r => r.Normalized), Column<StringIndexRow, string>("exact", r => r.Exact));
        Insert(batch, resources, "search_token", e => e.Tokens, r => r.Param, r => r.Group,
            Column<TokenIndexRow, string>("system", r => r.System), Column<TokenIndexRow, string>("code", r => r.Code),
            Column<TokenIndexRow, string>("text", r => r.Text));
        Insert(batch, resources, "search_date", e => e.Dates, r => r.Param, r => r.Group,
            Column<DateIndexRow, long>("low", r => r.Low), Column<DateIndexRow, long>("high", r => r.High));
        Insert(batch, resources, "search_number", e => e.Numbers, r => r.Param, r => r.Group, Column<NumberIndexRow, double>("value", r => r.Value));
        Insert(batch, resources, "search_quantity", e => e.Quantities, r => r.Param, r => r.Group,
            Column<QuantityIndexRow, string>("system", r => r.System), Column<QuantityIndexRow, string>("code", r => r.Code),
            Column<QuantityIndexRow, double>("value", r => r.Value), Column<QuantityIndexRow, string>("canonical_code", r => r.CanonicalCode),
            Column<QuantityIndexRow, double>("canonical_value", r => r.CanonicalValue));
        Insert(batch, resources, "search_uri", e => e.Uris, r => r.Param, r => r.Group, Column<UriIndexRow, string>("uri", r => r.Uri));
        Insert(batch, resources, "search_reference", e => e.References, r => r.Param, r => r.Group,
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
        (name, rows => new NpgsqlParameter<TValue[]>(name, rows.Select(value).ToArray()));

    private static void Insert<TRow>(NpgsqlBatch batch, IReadOnlyList<(long Rid, string Type, SearchIndexEntries Index)> resources, string table,
        Func<SearchIndexEntries, IReadOnlyCollection<TRow>> of, Func<TRow, string> param, Func<TRow, int> group,
        params (string Name, Func<IEnumerable<TRow>, NpgsqlParameter> Values)[] columns)
    {
        var rows = resources.SelectMany(r => of(r.Index).Select(row => (r.Rid, r.Type, Row: row))).ToList();
        if (rows.Count == 0)
        {
            return;
        }

        var names = string.Join(", ", columns.Select(c => c.Name));
        var arrays = string.Join(", ", columns.Select(c => "@" + c.Name));
        var insert = new NpgsqlBatchCommand(
            $"INSERT INTO {table} (rid, resource_type, param, {names}, grp) SELECT u.rid, u.t, u.param, {string.Join(", ", columns.Select(c => "u." + c.Name))}, u.grp " +
            $"FROM unnest(@rids, @types, @params, {arrays}, @groups) AS u (rid, t, param, {names}, grp)");
        insert.Parameters.Add(new NpgsqlParameter<long[]>("rids", rows.Select(r => r.Rid).ToArray()));
        insert.Parameters.Add(new NpgsqlParameter<string[]>("types", rows.Select(r => r.Type).ToArray()));
        insert.Parameters.Add(new NpgsqlParameter<string[]>("params", rows.Select(r => param(r.Row)).ToArray()));
        insert.Parameters.Add(new NpgsqlParameter<int[]>("groups", rows.Select(r => group(r.Row)).ToArray()));
        foreach (var (_, values) in columns)
        {
            insert.Parameters.Add(values(rows.Select(r => r.Row)));
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
            notify = new NpgsqlBatchCommand($"SELECT pg_notify('{PostgresResourceStore.ChangeChannel}', k) FROM unnest(@keys) AS k");
            notify.Parameters.Add(new NpgsqlParameter<string[]>("keys", _changed.Distinct().ToArray()));
        }

        if (_begun || _locks.Count > 0 || _created.Count > 0 || notify is not null || _beforeCommit.Count > 0)
        {
            await using var batch = new NpgsqlBatch(connection);
            AddWaiting(batch, withCreated: true);
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
        if (_notified)
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

    public async Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct)
    {
        await FlushAsync(ct);
        await using var insert = new NpgsqlCommand(OutboxSql.Insert, connection);
        insert.Parameters.Add(new NpgsqlParameter<string>("s", subscriptionId));
        insert.Parameters.Add(new NpgsqlParameter<string>("t", version.ResourceType));
        insert.Parameters.Add(new NpgsqlParameter<string>("id", version.Id));
        insert.Parameters.Add(new NpgsqlParameter<int>("v", version.VersionId));
        await insert.ExecuteNonQueryAsync(ct);
        _notified = true;
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
