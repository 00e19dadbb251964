using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

public sealed partial class SqliteResourceStore : IImportJobStore
{
    public Task CreateImportJobAsync(ImportJobRow job, CancellationToken ct) =>
        ExecuteWriteAsync("INSERT INTO import_job (id, state, request, progress, error, created_at) VALUES (@id, @s, @r, @p, @e, @c)", command =>
        {
            command.Parameters.AddWithValue("@id", job.Id);
            command.Parameters.AddWithValue("@s", (int)job.State);
            command.Parameters.AddWithValue("@r", job.Request);
            command.Parameters.AddWithValue("@p", job.Progress);
            command.Parameters.AddWithValue("@e", (object?)job.Error ?? DBNull.Value);
            command.Parameters.AddWithValue("@c", job.Created.ToUnixTimeMilliseconds());
        }, ct);

    public async Task<ImportJobRow?> ReadImportJobAsync(string id, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, state, request, progress, error, created_at FROM import_job WHERE id = @id";
        command.Parameters.AddWithValue("@id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new ImportJobRow(reader.GetString(0), (ImportState)reader.GetInt32(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)))
            : null;
    }

    public async Task<IReadOnlyList<string>> ListImportJobsAsync(ImportState state, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id FROM import_job WHERE state = @s ORDER BY created_at, id";
        command.Parameters.AddWithValue("@s", (int)state);
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public Task FinishImportJobAsync(string id, ImportState state, string? error, CancellationToken ct) =>
        ExecuteWriteAsync("UPDATE import_job SET state = @s, error = @e WHERE id = @id AND state = 0", command =>
        {
            command.Parameters.AddWithValue("@id", id);
            command.Parameters.AddWithValue("@s", (int)state);
            command.Parameters.AddWithValue("@e", (object?)error ?? DBNull.Value);
        }, ct);

    public Task DeleteImportJobAsync(string id, CancellationToken ct) =>
        ExecuteWriteAsync("DELETE FROM import_error WHERE job_id = @id; DELETE FROM import_job WHERE id = @id", command => command.Parameters.AddWithValue("@id", id), ct);

    public async Task<IReadOnlyList<ImportLineError>> ReadImportErrorsAsync(string id, int afterInput, long afterLine, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT input, line, message FROM import_error WHERE job_id = @id AND (input > @i OR (input = @i AND line > @l))
            ORDER BY input, line LIMIT @n
            """;
        command.Parameters.AddWithValue("@id", id);
        command.Parameters.AddWithValue("@i", afterInput);
        command.Parameters.AddWithValue("@l", afterLine);
        command.Parameters.AddWithValue("@n", limit);
        var errors = new List<ImportLineError>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            errors.Add(new ImportLineError(reader.GetInt32(0), reader.GetInt64(1), reader.GetString(2)));
        }

        return errors;
    }

    /// <summary>One statement as the process's single writer.</summary>
    private async Task ExecuteWriteAsync(string sql, Action<SqliteCommand> parameters, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            parameters(command);
            await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }
}
