using System.Text.Json;
using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

/// <summary>Named job state on SQLite (table <c>hub_state</c>, Schema/0301_hub_state.sql).</summary>
public sealed partial class SqliteResourceStore : IHubStateStore
{
    private const string UpsertState = "INSERT INTO hub_state (name, value) VALUES (@n, @v) ON CONFLICT (name) DO UPDATE SET value = excluded.value";

    public async Task<string?> ReadStateAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM hub_state WHERE name = @n";
        command.Parameters.AddWithValue("@n", name);
        return await command.ExecuteScalarAsync(ct) as string;
    }

    public async Task WriteStateAsync(string name, string value, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = UpsertState;
            command.Parameters.AddWithValue("@n", name);
            command.Parameters.AddWithValue("@v", value);
            await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<IReadOnlyDictionary<string, string>> ReadStatesAsync(IReadOnlyCollection<string> names, CancellationToken ct)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return values;
        }

        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, value FROM hub_state WHERE name IN (SELECT value FROM json_each(@n))";
        command.Parameters.AddWithValue("@n", JsonSerializer.Serialize(names));
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
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        // A range in the key's byte order finds the prefix by the primary key's index.
        command.CommandText = "SELECT name, value FROM hub_state WHERE name >= @p AND name < @e AND substr(name, 1, length(@p)) = @p";
        command.Parameters.AddWithValue("@p", prefix);
        command.Parameters.AddWithValue("@e", Sql.StatePrefix.End(prefix));
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            values[reader.GetString(0)] = reader.GetString(1);
        }

        return values;
    }

    /// <summary>Adds to counters in a write session's transaction (SQLite has one writer: no add is lost).</summary>
    private static async Task AddToCountsAsync(SqliteConnection connection, SqliteTransaction transaction,
        IReadOnlyList<KeyValuePair<string, long>> counts, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO hub_state (name, value) VALUES (@n, @v)
            ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(hub_state.value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)
            """;
        var name = command.Parameters.Add("@n", SqliteType.Text);
        var value = command.Parameters.Add("@v", SqliteType.Text);
        foreach (var (counter, count) in counts)
        {
            name.Value = counter;
            value.Value = count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>Upserts named values in a write session's transaction (a repeated name keeps its last value).</summary>
    private static async Task WriteStatesAsync(SqliteConnection connection, SqliteTransaction transaction,
        IReadOnlyList<KeyValuePair<string, string>> states, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = UpsertState;
        var name = command.Parameters.Add("@n", SqliteType.Text);
        var value = command.Parameters.Add("@v", SqliteType.Text);
        foreach (var state in states)
        {
            name.Value = state.Key;
            value.Value = state.Value;
            await command.ExecuteNonQueryAsync(ct);
        }
    }
}
