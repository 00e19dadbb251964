using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>Named job state on PostgreSQL (table <c>hub_state</c>, Schema/0301_hub_state.sql).</summary>
public sealed partial class PostgresResourceStore : IHubStateStore
{
    public async Task<string?> ReadStateAsync(string name, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT value FROM hub_state WHERE name = @n");
        command.Parameters.Add(new NpgsqlParameter<string>("n", name));
        return await command.ExecuteScalarAsync(ct) as string;
    }

    public async Task WriteStateAsync(string name, string value, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "INSERT INTO hub_state (name, value) VALUES (@n, @v) ON CONFLICT (name) DO UPDATE SET value = excluded.value");
        command.Parameters.Add(new NpgsqlParameter<string>("n", name));
        command.Parameters.Add(new NpgsqlParameter<string>("v", value));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyDictionary<string, string>> ReadStatesAsync(IReadOnlyCollection<string> names, CancellationToken ct)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return values;
        }

        await using var command = _dataSource.CreateCommand("SELECT name, value FROM hub_state WHERE name = ANY(@n)");
        command.Parameters.Add(new NpgsqlParameter<string[]>("n", names.ToArray()));
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            values[reader.GetString(0)] = reader.GetString(1);
        }

        return values;
    }

    public async Task<IReadOnlyDictionary<string, string>> ReadStatesStartingWithAsync(string prefix, CancellationToken ct)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        // A range in byte order (the key's collation, Schema/0303) finds the prefix by index; starts_with keeps it exact.
        await using var command = _dataSource.CreateCommand(
            "SELECT name, value FROM hub_state WHERE name >= @p AND name < @e AND starts_with(name, @p)");
        command.Parameters.Add(new NpgsqlParameter<string>("p", prefix));
        command.Parameters.Add(new NpgsqlParameter<string>("e", Sql.StatePrefix.End(prefix)));
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            values[reader.GetString(0)] = reader.GetString(1);
        }

        return values;
    }

    /// <summary>
    /// Adds to counters for a write session's batch. The rows are locked in name order, so transactions adding to the
    /// same counters wait for each other instead of deadlocking; a repeated name is added once with its sum.
    /// </summary>
    internal static NpgsqlBatchCommand AddToCountsCommand(IReadOnlyList<KeyValuePair<string, long>> counts)
    {
        var sums = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, count) in counts)
        {
            sums[name] = sums.GetValueOrDefault(name) + count;
        }

        var command = new NpgsqlBatchCommand("""
            INSERT INTO hub_state (name, value) SELECT n, d::text FROM unnest($1::text[], $2::bigint[]) AS t(n, d) ORDER BY n
            ON CONFLICT (name) DO UPDATE SET value = (hub_state.value::bigint + excluded.value::bigint)::text
            """);
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. sums.Keys]));
        command.Parameters.Add(PostgresWriteSession.Positional<long[]>([.. sums.Values]));
        return command;
    }

    /// <summary>An upsert of named values for a write session's batch (one statement whatever their number).</summary>
    internal static NpgsqlBatchCommand WriteStatesCommand(IReadOnlyList<KeyValuePair<string, string>> states)
    {
        // ON CONFLICT cannot touch a row twice in one statement: a repeated name keeps its last value.
        var last = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in states)
        {
            last[name] = value;
        }

        var command = new NpgsqlBatchCommand("""
            INSERT INTO hub_state (name, value) SELECT * FROM unnest($1::text[], $2::text[])
            ON CONFLICT (name) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. last.Keys]));
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. last.Values]));
        return command;
    }
}
