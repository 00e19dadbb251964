using System.Data.Common;
using System.Globalization;
using InteropHub.Fhir.Search;
using InteropHub.Storage.Sql;
using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

/// <summary>
/// The embedded default store: one SQLite file in WAL mode. SQLite has a single writer, so writes are
/// serialised in-process by a semaphore and run in <c>BEGIN IMMEDIATE</c> transactions; readers run in parallel
/// on their own pooled connections and see the last committed state.
/// </summary>
public sealed partial class SqliteResourceStore : SqlSearchReader, IResourceStore, IDisposable
{
    private const string Columns = CurrentColumns;

    private readonly string _connectionString;
    private readonly SemaphoreSlim _writer = new(1, 1);

    public SqliteResourceStore(SqliteStoreOptions options)
        : base(SqlDialect.Sqlite)
    {
        var path = System.IO.Path.GetFullPath(options.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        DatabasePath = path;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string DatabasePath { get; }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL";
            await wal.ExecuteNonQueryAsync(ct);
        }

        await SchemaMigrator.MigrateAsync(connection, ct);
    }

    public async Task<IWriteSession> BeginWriteAsync(CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            var connection = await OpenAsync(ct);
            await using (var pragma = connection.CreateCommand())
            {
                // FULL: a committed write survives a power loss, not only a process crash. Set per write session
                // because pooled connections serve reads too, which need no pragma round trip.
                pragma.CommandText = "PRAGMA synchronous = FULL";
                await pragma.ExecuteNonQueryAsync(ct);
            }

            var transaction = connection.BeginTransaction(deferred: false);
            return new WriteSession(connection, transaction, _writer, this);
        }
        catch
        {
            _writer.Release();
            throw;
        }
    }

    public async Task<StoredResource?> ReadAsync(string resourceType, string id, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ReadCurrentAsync(connection, null, resourceType, id, ct);
    }

    public async Task<StoredResource?> ReadVersionAsync(string resourceType, string id, int versionId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT key, resource_type, id, version, method, deleted, content FROM resource_history WHERE resource_type = @t AND id = @id AND version = @v";
        command.Parameters.AddWithValue("@t", resourceType);
        command.Parameters.AddWithValue("@id", id);
        command.Parameters.AddWithValue("@v", versionId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadHistoryRow(reader).Resource : null;
    }

    public async Task<IReadOnlyList<HistoryEntry>> ReadHistoryAsync(HistoryQuery query, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        var where = HistoryWhere(command, query);
        if (query.BeforeKey is { } before)
        {
            where.Add("key < @before");
            command.Parameters.AddWithValue("@before", before);
        }

        command.CommandText = $"SELECT key, resource_type, id, version, method, deleted, content FROM resource_history h"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "")
            + " ORDER BY key DESC LIMIT @n";
        command.Parameters.AddWithValue("@n", query.Count);

        var entries = new List<HistoryEntry>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            entries.Add(ReadHistoryRow(reader));
        }

        return entries;
    }

    public async Task<long> CountHistoryAsync(HistoryQuery query, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        var where = HistoryWhere(command, query);
        command.CommandText = "SELECT count(*) FROM resource_history h" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "");
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The history query's filters: type, id, <c>_since</c> and <c>_at</c> (a version is current from its key to its successor's).</summary>
    private static List<string> HistoryWhere(SqliteCommand command, HistoryQuery query)
    {
        var where = new List<string>();
        if (query.ResourceType is not null)
        {
            where.Add("h.resource_type = @t");
            command.Parameters.AddWithValue("@t", query.ResourceType);
        }

        if (query.Id is not null)
        {
            where.Add("h.id = @id");
            command.Parameters.AddWithValue("@id", query.Id);
        }

        if (query.Since is { } since)
        {
            where.Add("h.key >= @since");
            command.Parameters.AddWithValue("@since", VersionKeys.FromInstant(since));
        }

        if (query.AtTo is { } to)
        {
            where.Add("h.key < @at_to");
            command.Parameters.AddWithValue("@at_to", to);
        }

        if (query.AtFrom is { } from)
        {
            where.Add("NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.resource_type = h.resource_type AND n.id = h.id"
                + " AND n.version > h.version AND n.key <= @at_from)");
            command.Parameters.AddWithValue("@at_from", from);
        }

        return where;
    }

    /// <summary>A search's statement, on a pooled connection of its own (readers run in parallel with the writer).</summary>
    protected override async Task<T> RunAsync<T>(SqlCommandText sql, bool generic, Func<DbDataReader, Task<T>> read, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await RunAsync(connection, null, sql, read, ct);
    }

    private static async Task<T> RunAsync<T>(SqliteConnection connection, SqliteTransaction? tx, SqlCommandText sql, Func<DbDataReader, Task<T>> read,
        CancellationToken ct)
    {
        await using var command = Command(connection, tx, sql);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await read(reader);
    }

    public void Dispose() => _writer.Dispose();

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        // DefaultTimeout (30 s) is also how long Microsoft.Data.Sqlite retries while another process holds a lock.
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        return connection;
    }

    private static async Task<StoredResource?> ReadCurrentAsync(SqliteConnection connection, SqliteTransaction? tx, string resourceType, string id, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = $"SELECT {Columns} FROM resource WHERE resource_type = @t AND id = @id";
        command.Parameters.AddWithValue("@t", resourceType);
        command.Parameters.AddWithValue("@id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? CurrentRow(reader) : null;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, SqlCommandText sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql.ToString();
        foreach (var (name, value) in sql.Parameters)
        {
            command.Parameters.AddWithValue("@" + name, value);
        }

        return command;
    }

    private static HistoryEntry ReadHistoryRow(DbDataReader reader)
    {
        var key = reader.GetInt64(0);
        return new HistoryEntry(key, new StoredResource(
            reader.GetString(1),
            reader.GetString(2),
            reader.GetInt32(3),
            VersionKeys.ToInstant(key),
            reader.GetInt64(5) != 0,
            (byte[])reader.GetValue(6),
            reader.GetString(4)));
    }

    private sealed class WriteSession(SqliteConnection connection, SqliteTransaction transaction, SemaphoreSlim writer, SqliteResourceStore store)
        : SqlSearchReader(SqlDialect.Sqlite), IWriteSession
    {
        private bool _done;
        private bool _notified;

        // The semaphore already makes this the only writer of the process.
        public Task LockAsync(string key, CancellationToken ct) => Task.CompletedTask;

        public Task LockAllAsync(IReadOnlyList<string> keys, CancellationToken ct) => Task.CompletedTask;

        public Task LockAllOrGiveUpAsync(IReadOnlyList<string> keys, CancellationToken ct) => Task.CompletedTask;

        public Task<StoredResource?> ReadCurrentAsync(string resourceType, string id, CancellationToken ct) =>
            SqliteResourceStore.ReadCurrentAsync(connection, transaction, resourceType, id, ct);

        /// <summary>SQLite reads in-process, where one statement per resource costs no round trip.</summary>
        public async Task<IReadOnlyList<StoredResource>> ReadCurrentManyAsync(IReadOnlyList<(string ResourceType, string Id)> keys, CancellationToken ct)
        {
            var found = new List<StoredResource>();
            foreach (var (resourceType, id) in keys)
            {
                if (await SqliteResourceStore.ReadCurrentAsync(connection, transaction, resourceType, id, ct) is { } current)
                {
                    found.Add(current);
                }
            }

            return found;
        }

        /// <summary>Each match with its current row, read by the same statement (<see cref="SearchSql.FindWithCurrent"/>).</summary>
        public async Task<IReadOnlyList<ResourceMatch>> FindAsync(string resourceType, SearchCriteria criteria, int limit, CancellationToken ct)
        {
            await using var command = Command(connection, transaction, SearchSql.FindWithCurrent(criteria, limit, SqlDialect.Sqlite));
            var matches = new List<ResourceMatch>();
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var current = CurrentRow(reader, first: 1);
                matches.Add(new ResourceMatch(reader.GetInt64(0), current.Id, current.ResourceType, []) { Current = current });
            }

            return matches;
        }

        /// <summary>A search's statement, in the session's transaction: it sees the session's writes.</summary>
        protected override Task<T> RunAsync<T>(SqlCommandText sql, bool generic, Func<DbDataReader, Task<T>> read, CancellationToken ct) =>
            SqliteResourceStore.RunAsync(connection, transaction, sql, read, ct);

        public async Task<SessionReads> FindManyAsync(IReadOnlyList<(string ResourceType, SearchCriteria Criteria, int Limit)> searches,
            IReadOnlyList<(string ResourceType, string Id)> read, CancellationToken ct)
        {
            var answers = new List<IReadOnlyList<ResourceMatch>>();
            foreach (var (resourceType, criteria, limit) in searches)
            {
                answers.Add(await FindAsync(resourceType, criteria, limit, ct));
            }

            return new SessionReads(answers, await ReadCurrentManyAsync(read, ct));
        }

        public async Task WriteAsync(VersionRow version, SearchIndexEntries index, CancellationToken ct)
        {
            await using (var history = connection.CreateCommand())
            {
                history.Transaction = transaction;
                history.CommandText = "INSERT INTO resource_history (key, resource_type, id, version, method, deleted, content) VALUES (@k, @t, @id, @v, @m, @d, @c)";
                history.Parameters.AddWithValue("@k", version.Key);
                history.Parameters.AddWithValue("@t", version.ResourceType);
                history.Parameters.AddWithValue("@id", version.Id);
                history.Parameters.AddWithValue("@v", version.VersionId);
                history.Parameters.AddWithValue("@m", version.Method);
                history.Parameters.AddWithValue("@d", version.IsDeleted ? 1 : 0);
                history.Parameters.AddWithValue("@c", version.Json);
                await history.ExecuteNonQueryAsync(ct);
            }

            long rid;
            await using (var current = connection.CreateCommand())
            {
                current.Transaction = transaction;
                current.CommandText = """
                    INSERT INTO resource (rid, resource_type, id, version, last_key, deleted, content) VALUES (@k, @t, @id, @v, @k, @d, @c)
                    ON CONFLICT (resource_type, id) DO UPDATE SET version = excluded.version, last_key = excluded.last_key,
                        deleted = excluded.deleted, content = excluded.content
                    RETURNING rid
                    """;
                current.Parameters.AddWithValue("@k", version.Key);
                current.Parameters.AddWithValue("@t", version.ResourceType);
                current.Parameters.AddWithValue("@id", version.Id);
                current.Parameters.AddWithValue("@v", version.VersionId);
                current.Parameters.AddWithValue("@d", version.IsDeleted ? 1 : 0);
                current.Parameters.AddWithValue("@c", version.Json);
                rid = Convert.ToInt64(await current.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
            }

            await SqliteIndexWriter.ReplaceAsync(connection, transaction, rid, version.ResourceType, version.VersionId > 1, index, ct);
        }

        public async Task AddNotificationAsync(string subscriptionId, VersionRow version, CancellationToken ct)
        {
            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = OutboxSql.Insert;
            insert.Parameters.AddWithValue("@s", subscriptionId);
            insert.Parameters.AddWithValue("@t", version.ResourceType);
            insert.Parameters.AddWithValue("@id", version.Id);
            insert.Parameters.AddWithValue("@v", version.VersionId);
            await insert.ExecuteNonQueryAsync(ct);
            _notified = true;
        }

        public Task WriteStatesAsync(IReadOnlyList<KeyValuePair<string, string>> states, CancellationToken ct) =>
            SqliteResourceStore.WriteStatesAsync(connection, transaction, states, ct);

        public Task AddToCountsAsync(IReadOnlyList<KeyValuePair<string, long>> counts, CancellationToken ct) =>
            SqliteResourceStore.AddToCountsAsync(connection, transaction, counts, ct);

        public Task CompleteInboxAsync(long id, InboxStatus status, string? outcome, CancellationToken ct) =>
            SqliteResourceStore.CompleteAsync(connection, transaction, id, status, outcome, ct);

        public async Task<InboxReceipt> AddInboxAsync(string source, string messageId, string contentType, byte[] body, InboxStatus status,
            string? outcome, CancellationToken ct)
        {
            var receipt = new InboxReceipt();
            receipt.Stored(await SqliteResourceStore.AddAsync(connection, transaction, source, messageId, contentType, body, status, outcome, ct));
            return receipt;
        }

        public async Task<IReadOnlySet<string>> ExistingIdsAsync(string resourceType, IReadOnlyCollection<string> ids, CancellationToken ct)
        {
            var found = new HashSet<string>(StringComparer.Ordinal);
            if (ids.Count == 0)
            {
                return found;
            }

            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "SELECT id FROM resource WHERE resource_type = @t AND id IN (SELECT value FROM json_each(@ids))";
            command.Parameters.AddWithValue("@t", resourceType);
            command.Parameters.AddWithValue("@ids", System.Text.Json.JsonSerializer.Serialize(ids));
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                found.Add(reader.GetString(0));
            }

            return found;
        }

        public Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct) => InsertResourcesAsync(connection, transaction, resources, ct);

        public async Task<bool> SaveImportProgressAsync(string jobId, string expected, string progress, IReadOnlyList<ImportLineError> errors,
            CancellationToken ct)
        {
            await using var update = connection.CreateCommand();
            update.Transaction = transaction;
            update.CommandText = "UPDATE import_job SET progress = @p WHERE id = @id AND state = 0 AND progress = @e";
            update.Parameters.AddWithValue("@id", jobId);
            update.Parameters.AddWithValue("@e", expected);
            update.Parameters.AddWithValue("@p", progress);
            if (await update.ExecuteNonQueryAsync(ct) != 1)
            {
                return false;
            }

            await using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO import_error (job_id, input, line, message) VALUES (@id, @i, @l, @m)";
            foreach (var error in errors)
            {
                insert.Parameters.Clear();
                insert.Parameters.AddWithValue("@id", jobId);
                insert.Parameters.AddWithValue("@i", error.Input);
                insert.Parameters.AddWithValue("@l", error.Line);
                insert.Parameters.AddWithValue("@m", error.Message);
                await insert.ExecuteNonQueryAsync(ct);
            }

            return true;
        }

        public async Task CommitAsync(CancellationToken ct)
        {
            await transaction.CommitAsync(ct);
            _done = true;
            if (_notified)
            {
                store.OnNotificationsCommitted();
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_done)
                {
                    await transaction.RollbackAsync();
                }

                await transaction.DisposeAsync();
                await connection.DisposeAsync();
            }
            finally
            {
                writer.Release();
            }
        }
    }
}
