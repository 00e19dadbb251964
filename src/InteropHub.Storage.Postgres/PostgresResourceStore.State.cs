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
