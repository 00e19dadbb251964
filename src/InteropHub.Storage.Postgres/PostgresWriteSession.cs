using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>One write transaction on one pooled connection. Disposing without <see cref="CommitAsync"/> rolls back.</summary>
internal sealed class PostgresWriteSession(NpgsqlConnection connection, NpgsqlTransaction transaction) : IWriteSession
{
    private readonly List<string> _changed = [];

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
        PostgresResourceStore.FindAsync(connection, transaction, resourceType, criteria, null, limit, ct);

    public async Task WriteAsync(VersionRow version, IReadOnlyList<TokenIndexEntry> tokens, CancellationToken ct)
    {
        _changed.Add($"{version.ResourceType}/{version.Id}");
        long rid;
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            // rid is set once, by the first version, and kept by every later one (the conflict branch leaves it
            // alone), so the index rows of a resource keep their key across updates, deletes and re-creation.
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
            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"The upsert of {version.ResourceType}/{version.Id} returned no row id.");
            }

            rid = reader.GetInt64(0);

            // Run through the history insert here, so an error in it surfaces as this call's exception.
            await reader.NextResultAsync(ct);
        }

        // Replace the index rows in one round trip: the insert takes all tokens as parallel arrays.
        await using var replace = new NpgsqlBatch(connection, transaction);
        var clear = new NpgsqlBatchCommand("DELETE FROM token_index WHERE rid = @rid");
        clear.Parameters.Add(new NpgsqlParameter<long>("rid", rid));
        replace.BatchCommands.Add(clear);
        if (tokens.Count > 0)
        {
            var insert = new NpgsqlBatchCommand("""
                INSERT INTO token_index (resource_type, param, system, code, rid)
                SELECT @t, u.param, u.system, u.code, @rid FROM unnest(@params, @systems, @codes) AS u (param, system, code)
                """);
            insert.Parameters.Add(new NpgsqlParameter<string>("t", version.ResourceType));
            insert.Parameters.Add(new NpgsqlParameter<long>("rid", rid));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("params", tokens.Select(t => t.Param).ToArray()));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("systems", tokens.Select(t => t.System).ToArray()));
            insert.Parameters.Add(new NpgsqlParameter<string[]>("codes", tokens.Select(t => t.Code).ToArray()));
            replace.BatchCommands.Add(insert);
        }

        await replace.ExecuteNonQueryAsync(ct);
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
