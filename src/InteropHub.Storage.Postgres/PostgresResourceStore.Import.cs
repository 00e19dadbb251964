using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

public sealed partial class PostgresResourceStore : IImportJobStore
{
    public async Task CreateImportJobAsync(ImportJobRow job, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "INSERT INTO import_job (id, state, request, progress, error, created_at) VALUES (@id, @s, @r, @p, @e, @c)");
        command.Parameters.Add(new NpgsqlParameter<string>("id", job.Id));
        command.Parameters.Add(new NpgsqlParameter<short>("s", (short)job.State));
        command.Parameters.Add(new NpgsqlParameter<string>("r", job.Request));
        command.Parameters.Add(new NpgsqlParameter<string>("p", job.Progress));
        command.Parameters.Add(new NpgsqlParameter("e", (object?)job.Error ?? DBNull.Value));
        command.Parameters.Add(new NpgsqlParameter<long>("c", job.Created.ToUnixTimeMilliseconds()));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<ImportJobRow?> ReadImportJobAsync(string id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT id, state, request, progress, error, created_at FROM import_job WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new ImportJobRow(reader.GetString(0), (ImportState)reader.GetInt16(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)))
            : null;
    }

    public async Task<IReadOnlyList<string>> ListImportJobsAsync(ImportState state, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT id FROM import_job WHERE state = @s ORDER BY created_at, id");
        command.Parameters.Add(new NpgsqlParameter<short>("s", (short)state));
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public async Task FinishImportJobAsync(string id, ImportState state, string? error, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE import_job SET state = @s, error = @e WHERE id = @id AND state = 0");
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        command.Parameters.Add(new NpgsqlParameter<short>("s", (short)state));
        command.Parameters.Add(new NpgsqlParameter("e", (object?)error ?? DBNull.Value));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task DeleteImportJobAsync(string id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("DELETE FROM import_job WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ImportLineError>> ReadImportErrorsAsync(string id, int afterInput, long afterLine, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT input, line, message FROM import_error WHERE job_id = @id AND (input, line) > (@i, @l) ORDER BY input, line LIMIT @n
            """);
        command.Parameters.Add(new NpgsqlParameter<string>("id", id));
        command.Parameters.Add(new NpgsqlParameter<int>("i", afterInput));
        command.Parameters.Add(new NpgsqlParameter<long>("l", afterLine));
        command.Parameters.Add(new NpgsqlParameter<int>("n", limit));
        var errors = new List<ImportLineError>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            errors.Add(new ImportLineError(reader.GetInt32(0), reader.GetInt64(1), reader.GetString(2)));
        }

        return errors;
    }
}
