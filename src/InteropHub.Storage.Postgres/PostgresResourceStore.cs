using System.Data;
using System.Data.Common;
using InteropHub.Fhir.Search;
using InteropHub.Storage.Sql;
using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// The production store. Behaves exactly like the SQLite store (same logical schema, same answers) but allows
/// many writers: each write session is one READ COMMITTED transaction on its own connection, and writers that
/// must not interleave (same resource id, same conditional criteria) serialise on transaction-scoped advisory
/// locks, which also holds across hub instances sharing the database. All connections come from one
/// <see cref="NpgsqlDataSource"/>.
/// </summary>
public sealed partial class PostgresResourceStore : SqlSearchReader, IResourceStore, IChangeFeed, IAsyncDisposable, IDisposable
{
    /// <summary>The NOTIFY channel on which every committed write announces <c>Type/id</c>.</summary>
    internal const string ChangeChannel = "interophub_changes";

    private const string HistoryColumns = "key, resource_type, id, version, method, deleted, content";

    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource _searchSource;
    private readonly bool _ownsDataSource;

    public PostgresResourceStore(PostgresStoreOptions options)
        : base(SqlDialect.Postgres)
    {
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("InteropHub:Storage:Postgres:ConnectionString is empty.", nameof(options));
        }

        var connection = new NpgsqlConnectionStringBuilder(options.ConnectionString);
        if (connection.MaxAutoPrepare == 0)
        {
            // The hub runs a handful of statement shapes over and over: preparing them once per connection saves
            // PostgreSQL the parse and plan of every read (measured ~30% more reads/s).
            connection.MaxAutoPrepare = 64;
            connection.AutoPrepareMinUsages = 2;
        }

        // The hub leaves no session state behind (advisory locks are transaction-scoped), so the reset that
        // would otherwise precede each pooled use, and would drop the prepared statements, is not needed.
        connection.NoResetOnClose = true;
        _dataSource = NpgsqlDataSource.Create(connection);

        // Searches are not prepared: a prepared statement soon runs a generic plan, made without the parameter values,
        // and how many rows a search value matches (one identifier or half the observations) is what decides the
        // plan. Unprepared, PostgreSQL plans each search with its values (measured at 1M resources: a token search
        // with a common code took 1.2 s on the generic plan, 2 ms on its own).
        connection.MaxAutoPrepare = 0;

        // No JIT for searches either: a search that the planner costs high (it cannot know the LIMIT stops it early)
        // spent 80 ms compiling expressions for a 2 ms execution.
        connection.Options = string.IsNullOrEmpty(connection.Options) ? "-c jit=off" : connection.Options + " -c jit=off";
        _searchSource = NpgsqlDataSource.Create(connection);
        _ownsDataSource = true;
    }

    /// <summary>Uses a data source the host built and owns (it is not disposed with the store).</summary>
    public PostgresResourceStore(NpgsqlDataSource dataSource)
        : base(SqlDialect.Postgres)
    {
        _dataSource = dataSource;
        _searchSource = dataSource;
        _ownsDataSource = false;
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await SchemaMigrator.MigrateAsync(_dataSource, ct);
        await CountWrittenSinceAnalyzeAsync(ct);
    }

    /// <summary>
    /// LISTENs for the changes every hub instance commits on this database. A connection that fails is replaced
    /// after a second; an idle one is probed every 30 s, so a silently dead connection is noticed and reported
    /// as <see cref="IChangeListener.Lost"/> rather than leaving a cache serving stale data.
    /// </summary>
    public async Task ListenAsync(IChangeListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                connection.Notification += (_, e) =>
                {
                    var slash = e.Payload.IndexOf('/', StringComparison.Ordinal);
                    if (slash > 0)
                    {
                        listener.Changed(e.Payload[..slash], e.Payload[(slash + 1)..]);
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {ChangeChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(ct);
                }

                listener.Connected();
                try
                {
                    while (true)
                    {
                        if (!await connection.WaitAsync(TimeSpan.FromSeconds(30), ct))
                        {
                            await using var probe = new NpgsqlCommand("SELECT 1", connection);
                            await probe.ExecuteScalarAsync(ct);
                        }
                    }
                }
                finally
                {
                    listener.Lost();
                    if (connection.FullState == ConnectionState.Open)
                    {
                        // The connection goes back to the pool: it must not keep receiving notifications there.
                        await using var unlisten = new NpgsqlCommand("UNLISTEN *", connection);
                        await unlisten.ExecuteNonQueryAsync(CancellationToken.None);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async Task<IWriteSession> BeginWriteAsync(CancellationToken ct) =>
        new PostgresWriteSession(await _dataSource.OpenConnectionAsync(ct), OnNotificationsCommitted, OnWritten);

    public async Task<StoredResource?> ReadAsync(string resourceType, string id, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await ReadCurrentAsync(connection, resourceType, id, ct);
    }

    public async Task<StoredResource?> ReadVersionAsync(string resourceType, string id, int versionId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"SELECT {HistoryColumns} FROM resource_history WHERE resource_type = @t AND id = @id AND version = @v");
        command.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        command.Parameters.Add(new NpgsqlParameter<int>("v", versionId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadHistoryRow(reader).Resource : null;
    }

    public async Task<IReadOnlyList<HistoryEntry>> ReadHistoryAsync(HistoryQuery query, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand();
        var where = HistoryWhere(command, query);
        if (query.BeforeKey is { } before)
        {
            where.Add("key < @before");
            command.Parameters.Add(new NpgsqlParameter<long>("before", before));
        }

        command.CommandText = $"SELECT {HistoryColumns} FROM resource_history h"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "")
            + " ORDER BY key DESC LIMIT @n";
        command.Parameters.Add(new NpgsqlParameter<int>("n", query.Count));

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
        await using var command = _dataSource.CreateCommand();
        var where = HistoryWhere(command, query);
        command.CommandText = "SELECT count(*) FROM resource_history h" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "");
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The history query's filters: type, id, <c>_since</c> and <c>_at</c> (a version is current from its key to its successor's).</summary>
    private static List<string> HistoryWhere(NpgsqlCommand command, HistoryQuery query)
    {
        var where = new List<string>();
        if (query.ResourceType is not null)
        {
            where.Add("h.resource_type = @t");
            command.Parameters.Add(new NpgsqlParameter<string>("t", query.ResourceType));
        }

        if (query.Id is not null)
        {
            where.Add("h.id = @id");
            command.Parameters.Add(new NpgsqlParameter<string>("id", query.Id));
        }

        if (query.Since is { } since)
        {
            where.Add("h.key >= @since");
            command.Parameters.Add(new NpgsqlParameter<long>("since", VersionKeys.FromInstant(since)));
        }

        if (query.AtTo is { } to)
        {
            where.Add("h.key < @at_to");
            command.Parameters.Add(new NpgsqlParameter<long>("at_to", to));
        }

        if (query.AtFrom is { } from)
        {
            where.Add("NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.resource_type = h.resource_type AND n.id = h.id"
                + " AND n.version > h.version AND n.key <= @at_from)");
            command.Parameters.Add(new NpgsqlParameter<long>("at_from", from));
        }

        return where;
    }

    /// <summary>
    /// A search's statement: a generic one (a read by id, a lookup by identifier) on the prepared connections, whose plan
    /// fits it whatever the values, and the ingest pipeline's lookups skip a planning that costs more than the
    /// execution; the others on the search connections, planned with their values.
    /// </summary>
    protected override async Task<T> RunAsync<T>(SqlCommandText sql, bool generic, Func<DbDataReader, Task<T>> read, CancellationToken ct)
    {
        await using var connection = await (generic ? _dataSource : _searchSource).OpenConnectionAsync(ct);
        await using var command = Command(connection, sql);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await read(reader);
    }

    /// <summary>
    /// The planner's row estimate for the matching row ids (EXPLAIN, nothing executed): as good as the statistics
    /// of schema 0003, and the same cost whether a million resources match or ten.
    /// </summary>
    public override async Task<long> EstimateCountAsync(SearchCriteria criteria, CancellationToken ct)
    {
        await using var connection = await _searchSource.OpenConnectionAsync(ct);
        var count = SearchSql.Matches(criteria, SqlDialect.Postgres);
        count.Text.Insert(0, "EXPLAIN (FORMAT JSON) ");
        await using var command = Command(connection, count);
        using var plan = System.Text.Json.JsonDocument.Parse((string)(await command.ExecuteScalarAsync(ct))!);
        return (long)Math.Round(plan.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble());
    }

    public async ValueTask DisposeAsync()
    {
        await _analysis;
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync();
            await _searchSource.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _analysis.Wait();
        if (_ownsDataSource)
        {
            _dataSource.Dispose();
            _searchSource.Dispose();
        }
    }

    private static async Task<StoredResource?> ReadCurrentAsync(NpgsqlConnection connection, string resourceType, string id, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { ReadCurrentCommand(resourceType, id) } };
        await using var reader = await batch.ExecuteReaderAsync(ct);
        return (await ReadCurrentRowsAsync(reader, ct)).SingleOrDefault();
    }

    /// <summary>The statements of <see cref="ReadCurrentManyCommand"/> for 1 to 16 keys: a UNION ALL of key lookups.</summary>
    private static readonly string[] KeyLookups = [.. Enumerable.Range(1, 16).Select(count => string.Join(" UNION ALL ",
        Enumerable.Range(0, count).Select(i => $"SELECT {CurrentColumns} FROM resource WHERE resource_type = @t{i} AND id = @id{i}")))];

    /// <summary>The current rows of the given resources (those that exist), for a write session's round trip.</summary>
    internal static NpgsqlBatchCommand ReadCurrentManyCommand(IReadOnlyList<(string ResourceType, string Id)> keys)
    {
        // A join with unnest(@types, @ids) has a generic plan that PostgreSQL estimates dearer than a plan for the
        // array's actual length, so it planned the join again on every call: 0.1 ms of planning for 0.02 ms of work in
        // a HIS message's transaction. A few keys are therefore looked up one by one, in a statement whose only plan
        // is the one it keeps; many keys share the join (its planning spread over their rows).
        if (keys.Count is > 0 and <= 16)
        {
            var lookups = new NpgsqlBatchCommand(KeyLookups[keys.Count - 1]);
            for (var i = 0; i < keys.Count; i++)
            {
                lookups.Parameters.Add(new NpgsqlParameter<string>($"t{i}", keys[i].ResourceType));
                lookups.Parameters.Add(new NpgsqlParameter<string>($"id{i}", keys[i].Id));
            }

            return lookups;
        }

        var command = new NpgsqlBatchCommand(
            $"SELECT {CurrentColumns} FROM resource JOIN unnest(@types, @ids) AS k (kt, kid) ON resource_type = k.kt AND id = k.kid");
        command.Parameters.Add(new NpgsqlParameter<string[]>("types", keys.Select(k => k.ResourceType).ToArray()));
        command.Parameters.Add(new NpgsqlParameter<string[]>("ids", keys.Select(k => k.Id).ToArray()));
        return command;
    }

    /// <summary>The current row of one resource, for a write session's round trip.</summary>
    internal static NpgsqlBatchCommand ReadCurrentCommand(string resourceType, string id)
    {
        var command = new NpgsqlBatchCommand($"SELECT {CurrentColumns} FROM resource WHERE resource_type = @t AND id = @id");
        command.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        return command;
    }

    /// <summary>The rows of the reader's current result, read by <see cref="ReadCurrentCommand"/> or <see cref="ReadCurrentManyCommand"/>.</summary>
    internal static async Task<List<StoredResource>> ReadCurrentRowsAsync(NpgsqlDataReader reader, CancellationToken ct)
    {
        var found = new List<StoredResource>();
        while (await reader.ReadAsync(ct))
        {
            found.Add(CurrentRow(reader));
        }

        return found;
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, SqlCommandText sql)
    {
        var command = new NpgsqlCommand(sql.ToString(), connection);
        command.Parameters.AddRange(Parameters(sql));
        return command;
    }

    private static NpgsqlParameter[] Parameters(SqlCommandText sql) =>
    [
        .. sql.Parameters.Select(p => p.Value switch
        {
            long l => new NpgsqlParameter<long>(p.Key, l),
            int i => new NpgsqlParameter<int>(p.Key, i),
            double d => new NpgsqlParameter<double>(p.Key, d),
            string text => new NpgsqlParameter<string>(p.Key, text),
            _ => new NpgsqlParameter(p.Key, p.Value),
        }),
    ];

    /// <summary>
    /// An unsorted find that also reads each match's current row (<see cref="SearchSql.FindWithCurrent"/>), for a
    /// write session's round trip (several go in one).
    /// </summary>
    internal static NpgsqlBatchCommand FindCommand(SearchCriteria criteria, int limit) =>
        BatchCommand(SearchSql.FindWithCurrent(criteria, limit, SqlDialect.Postgres));

    /// <summary>A statement of <see cref="SearchSql"/>, for a write session's round trip.</summary>
    internal static NpgsqlBatchCommand BatchCommand(SqlCommandText sql)
    {
        var command = new NpgsqlBatchCommand(sql.ToString());
        command.Parameters.AddRange(Parameters(sql));
        return command;
    }

    /// <summary>The matches in the reader's current result, found by <see cref="FindCommand"/>, each with its current row.</summary>
    internal static async Task<List<ResourceMatch>> ReadMatchesAsync(NpgsqlDataReader reader, CancellationToken ct)
    {
        var matches = new List<ResourceMatch>();
        while (await reader.ReadAsync(ct))
        {
            var current = CurrentRow(reader, first: 1);
            matches.Add(new ResourceMatch(reader.GetInt64(0), current.Id, current.ResourceType, []) { Current = current });
        }

        return matches;
    }

    private static HistoryEntry ReadHistoryRow(NpgsqlDataReader reader)
    {
        var key = reader.GetInt64(0);
        return new HistoryEntry(key, new StoredResource(
            reader.GetString(1),
            reader.GetString(2),
            reader.GetInt32(3),
            VersionKeys.ToInstant(key),
            reader.GetBoolean(5),
            reader.GetFieldValue<byte[]>(6),
            reader.GetString(4)));
    }
}
