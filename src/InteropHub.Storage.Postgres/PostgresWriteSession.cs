using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>One write transaction on one pooled connection. Disposing without <see cref="CommitAsync"/> rolls back.</summary>
/// <param name="notified">Called after a commit of a session that added subscription outbox rows.</param>
internal sealed class PostgresWriteSession(NpgsqlConnection connection, NpgsqlTransaction transaction, Action notified) : IWriteSession
{
    private readonly List<string> _changed = [];
    private bool _notified;

    /// <summary>
    /// A transaction-scoped advisory lock: released by commit or rollback, so a crashed or abandoned writer can
    /// never leave it held, and it serialises writers of every hub instance on the database.
    /// </summary>
    public async Task LockAsync(string key, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@k)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<long>("k", AdvisoryLockKeys.For(key)));
        await command.ExecuteNonQueryAsync(ct);
    }

    public Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct) =>
        PostgresResourceStore.ReadCurrentAsync(connection, transaction, resourceType, id, ct);

    public Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct) =>
        PostgresResourceStore.FindAsync(connection, transaction, criteria, [], null, limit, ct);

    public async Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct)
    {
        _changed.Add($"{version.ResourceType}/{version.Id}");
        // rid is set once, by the first version, and kept by every later one (the conflict branch leaves it alone), so
        // the index rows of a resource keep their key across updates, deletes and re-creation. A first version's rid is
        // its key, known before the insert, so its index rows go in the same round trip; a later version learns the
        // rid from the upsert, then replaces its index rows in a second one.
        var first = version.VersionId == 1;
        long rid;
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
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
            if (first)
            {
                AddIndexRows(batch, version.Key, version.ResourceType, index);
            }

            await using var reader = await batch.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"The upsert of {version.ResourceType}/{version.Id} returned no row id.");
            }

            rid = reader.GetInt64(0);
            if (first && rid != version.Key)
            {
                // Version 1 of an id that exists: the index rows just written carry the wrong rid; the caller's
                // version arithmetic is broken, and the transaction must not commit.
                throw new InvalidOperationException($"{version.ResourceType}/{version.Id} was written as version 1 but exists already.");
            }

            // Run through the remaining results here, so an error in them surfaces as this call's exception.
            while (await reader.NextResultAsync(ct))
            {
            }
        }

        if (first)
        {
            return;
        }

        // Replace the index rows in one round trip: a delete per table, then one insert per table taking all rows as arrays.
        await using var replace = new NpgsqlBatch(connection, transaction);
        foreach (var table in Tables)
        {
            var clear = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE rid = @rid");
            clear.Parameters.Add(new NpgsqlParameter<long>("rid", rid));
            replace.BatchCommands.Add(clear);
        }

        AddIndexRows(replace, rid, version.ResourceType, index);
        await replace.ExecuteNonQueryAsync(ct);
    }

    private static void AddIndexRows(NpgsqlBatch batch, long rid, string t, SearchIndexEntries index)
    {
        Insert(batch, rid, t, "search_string", index.Strings, r => r.Param, r => r.Group,
            Column("norm", index.Strings, r => r.Normalized), Column("exact", index.Strings, r => r.Exact));
        Insert(batch, rid, t, "search_token", index.Tokens, r => r.Param, r => r.Group,
            Column("system", index.Tokens, r => r.System), Column("code", index.Tokens, r => r.Code), Column("text", index.Tokens, r => r.Text));
        Insert(batch, rid, t, "search_date", index.Dates, r => r.Param, r => r.Group,
            Column("low", index.Dates, r => r.Low), Column("high", index.Dates, r => r.High));
        Insert(batch, rid, t, "search_number", index.Numbers, r => r.Param, r => r.Group, Column("value", index.Numbers, r => r.Value));
        Insert(batch, rid, t, "search_quantity", index.Quantities, r => r.Param, r => r.Group,
            Column("system", index.Quantities, r => r.System), Column("code", index.Quantities, r => r.Code), Column("value", index.Quantities, r => r.Value),
            Column("canonical_code", index.Quantities, r => r.CanonicalCode), Column("canonical_value", index.Quantities, r => r.CanonicalValue));
        Insert(batch, rid, t, "search_uri", index.Uris, r => r.Param, r => r.Group, Column("uri", index.Uris, r => r.Uri));
        Insert(batch, rid, t, "search_reference", index.References, r => r.Param, r => r.Group,
            Column("target_type", index.References, r => r.TargetType), Column("target_id", index.References, r => r.TargetId),
            Column("url", index.References, r => r.Url));
    }

    public async Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (ids.Count == 0)
        {
            return found;
        }

        await using var command = new NpgsqlCommand("SELECT id FROM resource WHERE resource_type = @t AND id = ANY(@ids)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", ids.ToArray()));
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            found.Add(reader.GetString(0));
        }

        return found;
    }

    public Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct) => PostgresResourceStore.CopyResourcesAsync(connection, resources, ct);

    public async Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors,
        CancellationToken ct)
    {
        await using (var update = new NpgsqlCommand("UPDATE import_job SET progress = @p WHERE id = @id AND state = 0 AND progress = @e", connection, transaction))
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
                """, connection, transaction);
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

    private static (string Name, NpgsqlParameter Values) Column<TRow, TValue>(string name, IEnumerable<TRow> rows, Func<TRow, TValue> value) =>
        (name, new NpgsqlParameter<TValue[]>(name, rows.Select(value).ToArray()));

    private static void Insert<TRow>(NpgsqlBatch batch, long rid, string resourceType, string table, IReadOnlyCollection<TRow> rows,
        Func<TRow, string> param, Func<TRow, int> group, params (string Name, NpgsqlParameter Values)[] columns)
    {
        if (rows.Count == 0)
        {
            return;
        }

        var names = string.Join(", ", columns.Select(c => c.Name));
        var arrays = string.Join(", ", columns.Select(c => "@" + c.Name));
        var insert = new NpgsqlBatchCommand(
            $"INSERT INTO {table} (rid, resource_type, param, {names}, grp) SELECT @rid, @t, u.param, {string.Join(", ", columns.Select(c => "u." + c.Name))}, u.grp " +
            $"FROM unnest(@params, {arrays}, @groups) AS u (param, {names}, grp)");
        insert.Parameters.Add(new NpgsqlParameter<long>("rid", rid));
        insert.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        insert.Parameters.Add(new NpgsqlParameter<string[]>("params", rows.Select(param).ToArray()));
        insert.Parameters.Add(new NpgsqlParameter<int[]>("groups", rows.Select(group).ToArray()));
        foreach (var (_, values) in columns)
        {
            insert.Parameters.Add(values);
        }

        batch.BatchCommands.Add(insert);
    }

    public async Task CommitAsync(CancellationToken ct)
    {
        if (_changed.Count > 0)
        {
            // Notifications are delivered when (and only if) the transaction commits: every hub instance's read
            // cache hears about the change (see PostgresResourceStore.ListenAsync).
            await using var notify = new NpgsqlCommand($"SELECT pg_notify('{PostgresResourceStore.ChangeChannel}', k) FROM unnest(@keys) AS k", connection, transaction);
            notify.Parameters.Add(new NpgsqlParameter<string[]>("keys", _changed.Distinct().ToArray()));
            await notify.ExecuteNonQueryAsync(ct);
        }

        await transaction.CommitAsync(ct);
        if (_notified)
        {
            notified();
        }
    }

    public async Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct)
    {
        await using var insert = new NpgsqlCommand(OutboxSql.Insert, connection, transaction);
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
            // Npgsql rolls back a transaction disposed before it completed; it also copes with a commit that
            // failed half-way, where an explicit rollback would throw and hide the original error.
            await transaction.DisposeAsync();
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
