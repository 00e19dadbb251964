using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

public sealed partial class PostgresResourceStore : IReindexStore
{
    private const string JobColumns = "id, reason, resource_types, status, cursor, done, total, created_at, updated_at, error";

    private static readonly string[] IndexTables =
        ["search_string", "search_token", "search_date", "search_number", "search_quantity", "search_uri", "search_reference"];

    public async Task<ReindexJob> StartReindexAsync(string reason, IReadOnlyList<string> resourceTypes, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand(
            $"""
            INSERT INTO reindex_job (reason, resource_types, status, cursor, done, total, created_at, updated_at)
            SELECT @reason, @types, 0, 0, 0, count(*), @now, @now FROM resource WHERE NOT deleted AND (@all OR resource_type = ANY(@list))
            RETURNING {JobColumns}
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("reason", reason));
        command.Parameters.Add(new NpgsqlParameter<string>("types", string.Join(',', resourceTypes)));
        command.Parameters.Add(new NpgsqlParameter<bool>("all", resourceTypes.Count == 0));
        command.Parameters.Add(new NpgsqlParameter<string[]>("list", resourceTypes.ToArray()));
        command.Parameters.Add(new NpgsqlParameter<long>("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return ReadJob(reader);
    }

    public async Task<IReadOnlyList<ReindexJob>> ReadReindexJobsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM reindex_job ORDER BY id DESC");
        await using var reader = await command.ExecuteReaderAsync(ct);
        var jobs = new List<ReindexJob>();
        while (await reader.ReadAsync(ct))
        {
            jobs.Add(ReadJob(reader));
        }

        return jobs;
    }

    public async Task<ReindexJob> ReindexBatchAsync(long jobId, int limit, Func<StoredResource, SearchIndexEntries> extract, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);

        // The job row's lock makes instances sharing the database take batches one after another.
        ReindexJob job;
        await using (var read = new NpgsqlCommand($"SELECT {JobColumns} FROM reindex_job WHERE id = @id FOR UPDATE", connection, transaction))
        {
            read.Parameters.Add(new NpgsqlParameter<long>("id", jobId));
            await using var reader = await read.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                throw new InvalidOperationException($"Re-index job {jobId} does not exist.");
            }

            job = ReadJob(reader);
        }

        if (job.Status != ReindexStatus.Running)
        {
            return job;
        }

        // Row locks on the batch: a write of one of these resources waits until this batch commits and then replaces
        // the index rows with its own, so an older version's rows never overwrite a newer one's.
        var batch = new List<(long Rid, string ResourceType, SearchIndexEntries Index)>();
        await using (var select = new NpgsqlCommand(
            $"""
            SELECT rid, {CurrentColumns} FROM resource WHERE rid > @cursor AND NOT deleted AND (@all OR resource_type = ANY(@list))
            ORDER BY rid LIMIT @n FOR UPDATE
            """, connection, transaction))
        {
            select.Parameters.Add(new NpgsqlParameter<long>("cursor", job.Cursor));
            select.Parameters.Add(new NpgsqlParameter<bool>("all", job.ResourceTypes.Count == 0));
            select.Parameters.Add(new NpgsqlParameter<string[]>("list", job.ResourceTypes.ToArray()));
            select.Parameters.Add(new NpgsqlParameter<int>("n", limit));
            await using var reader = await select.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var resource = new StoredResource(reader.GetString(1), reader.GetString(2), reader.GetInt32(3),
                    VersionKeys.ToInstant(reader.GetInt64(4)), reader.GetBoolean(5), reader.GetFieldValue<byte[]>(6));
                batch.Add((reader.GetInt64(0), resource.ResourceType, extract(resource)));
            }
        }

        if (batch.Count > 0)
        {
            await using var clear = new NpgsqlBatch(connection, transaction);
            foreach (var table in IndexTables)
            {
                var delete = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE rid = ANY(@rids)");
                delete.Parameters.Add(new NpgsqlParameter<long[]>("rids", batch.Select(b => b.Rid).ToArray()));
                clear.BatchCommands.Add(delete);
            }

            await clear.ExecuteNonQueryAsync(ct);
            await CopyIndexRowsAsync(connection, batch, ct);
        }

        await using (var update = new NpgsqlCommand(
            $"UPDATE reindex_job SET cursor = @cursor, done = done + @n, status = @status, updated_at = @now WHERE id = @id RETURNING {JobColumns}",
            connection, transaction))
        {
            update.Parameters.Add(new NpgsqlParameter<long>("cursor", batch.Count > 0 ? batch[^1].Rid : job.Cursor));
            update.Parameters.Add(new NpgsqlParameter<long>("n", batch.Count));
            update.Parameters.Add(new NpgsqlParameter<short>("status", (short)(batch.Count < limit ? ReindexStatus.Done : ReindexStatus.Running)));
            update.Parameters.Add(new NpgsqlParameter<long>("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            update.Parameters.Add(new NpgsqlParameter<long>("id", jobId));
            await using var reader = await update.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            job = ReadJob(reader);
        }

        await transaction.CommitAsync(ct);
        return job;
    }

    public async Task FailReindexAsync(long jobId, string error, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE reindex_job SET status = 2, error = @e, updated_at = @now WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<string>("e", error));
        command.Parameters.Add(new NpgsqlParameter<long>("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        command.Parameters.Add(new NpgsqlParameter<long>("id", jobId));
        await command.ExecuteNonQueryAsync(ct);
    }

    private static ReindexJob ReadJob(NpgsqlDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetString(1),
        reader.GetString(2).Split(',', StringSplitOptions.RemoveEmptyEntries),
        (ReindexStatus)reader.GetInt16(3),
        reader.GetInt64(4),
        reader.GetInt64(5),
        reader.GetInt64(6),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
        reader.IsDBNull(9) ? null : reader.GetString(9));
}
