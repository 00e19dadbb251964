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
}
