using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Sqlite;

/// <summary>Named job state on SQLite (table <c>hub_state</c>, Schema/0301_hub_state.sql).</summary>
public sealed partial class SqliteResourceStore : IHubStateStore
{
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
            command.CommandText = "INSERT INTO hub_state (name, value) VALUES (@n, @v) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
            command.Parameters.AddWithValue("@n", name);
            command.Parameters.AddWithValue("@v", value);
            await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }
}
