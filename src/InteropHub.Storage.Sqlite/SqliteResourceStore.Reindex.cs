using System.Data.Common;
using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

public sealed partial class SqliteResourceStore : IReindexStore
{
    private const string JobColumns = "id, reason, resource_types, status, cursor, done, total, created_at, updated_at, error";

    public async Task<ReindexJob> StartReindexAsync(string reason, IReadOnlyList<string> resourceTypes, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = $"""
                INSERT INTO reindex_job (reason, resource_types, status, cursor, done, total, created_at, updated_at)
                SELECT @reason, @types, 0, 0, 0, count(*), @now, @now FROM resource WHERE deleted = 0 {TypeFilter(command, resourceTypes)}
                RETURNING {JobColumns}
                """;
            command.Parameters.AddWithValue("@reason", reason);
            command.Parameters.AddWithValue("@types", string.Join(',', resourceTypes));
            command.Parameters.AddWithValue("@now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return ReadJob(reader);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<IReadOnlyList<ReindexJob>> ReadReindexJobsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {JobColumns} FROM reindex_job ORDER BY id DESC";
        await using var reader = await command.ExecuteReaderAsync(ct);
        var jobs = new List<ReindexJob>();
        while (await reader.ReadAsync(ct))
        {
            jobs.Add(ReadJob(reader));
        }

        return jobs;
    }

    /// <summary>One write transaction: SQLite's single writer keeps other writes out of the batch while it runs.</summary>
    public async Task<ReindexJob> ReindexBatchAsync(long jobId, int limit, Func<StoredResource, SearchIndexEntries> extract, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            var job = await ReadJobAsync(connection, transaction, jobId, ct)
                ?? throw new InvalidOperationException($"Re-index job {jobId} does not exist.");
            if (job.Status != ReindexStatus.Running)
            {
                return job;
            }

            var batch = new List<(long Rid, StoredResource Resource)>();
            await using (var select = connection.CreateCommand())
            {
                select.Transaction = transaction;
                select.CommandText = $"SELECT rid, {Columns} FROM resource WHERE rid > @cursor AND deleted = 0 {TypeFilter(select, job.ResourceTypes)} ORDER BY rid LIMIT @n";
                select.Parameters.AddWithValue("@cursor", job.Cursor);
                select.Parameters.AddWithValue("@n", limit);
                await using var reader = await select.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    batch.Add((reader.GetInt64(0), new StoredResource(reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                        VersionKeys.ToInstant(reader.GetInt64(4)), reader.GetInt64(5) != 0, (byte[])reader.GetValue(6))));
                }
            }

            foreach (var (rid, resource) in batch)
            {
                await SqliteIndexWriter.ReplaceAsync(connection, transaction, rid, resource.ResourceType, hadIndex: true, extract(resource), ct);
            }

            await using (var update = connection.CreateCommand())
            {
                update.Transaction = transaction;
                update.CommandText = "UPDATE reindex_job SET cursor = @cursor, done = done + @n, status = @status, updated_at = @now WHERE id = @id";
                update.Parameters.AddWithValue("@cursor", batch.Count > 0 ? batch[^1].Rid : job.Cursor);
                update.Parameters.AddWithValue("@n", batch.Count);
                update.Parameters.AddWithValue("@status", (int)(batch.Count < limit ? ReindexStatus.Done : ReindexStatus.Running));
                update.Parameters.AddWithValue("@now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                update.Parameters.AddWithValue("@id", jobId);
                await update.ExecuteNonQueryAsync(ct);
            }

            job = (await ReadJobAsync(connection, transaction, jobId, ct))!;
            await transaction.CommitAsync(ct);
            return job;
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task FailReindexAsync(long jobId, string error, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE reindex_job SET status = 2, error = @e, updated_at = @now WHERE id = @id";
            command.Parameters.AddWithValue("@e", error);
            command.Parameters.AddWithValue("@now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("@id", jobId);
            await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }

    private static string TypeFilter(SqliteCommand command, IReadOnlyList<string> resourceTypes)
    {
        if (resourceTypes.Count == 0)
        {
            return "";
        }

        var names = resourceTypes.Select((type, i) =>
        {
            command.Parameters.AddWithValue($"@type{i}", type);
            return $"@type{i}";
        });
        return $"AND resource_type IN ({string.Join(", ", names)})";
    }

    private static async Task<ReindexJob?> ReadJobAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, CancellationToken ct)
    {
        await using var read = connection.CreateCommand();
        read.Transaction = transaction;
        read.CommandText = $"SELECT {JobColumns} FROM reindex_job WHERE id = @id";
        read.Parameters.AddWithValue("@id", jobId);
        await using var reader = await read.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadJob(reader) : null;
    }

    private static ReindexJob ReadJob(DbDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetString(1),
        reader.GetString(2).Split(',', StringSplitOptions.RemoveEmptyEntries),
        (ReindexStatus)reader.GetInt32(3),
        reader.GetInt64(4),
        reader.GetInt64(5),
        reader.GetInt64(6),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
        reader.IsDBNull(9) ? null : reader.GetString(9));
}
