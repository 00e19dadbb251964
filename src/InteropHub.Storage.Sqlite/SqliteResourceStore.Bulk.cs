using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

public sealed partial class SqliteResourceStore : IBulkLoader
{
    /// <summary>
    /// One write transaction of plain INSERTs (SQLite has no faster path: statements cost no round trip). Without
    /// the upsert of a normal write, a resource that exists violates the unique key and fails the whole load.
    /// </summary>
    public async Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct)
    {
        if (resources.Count == 0)
        {
            return;
        }

        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await InsertResourcesAsync(connection, transaction, resources, ct);
            await transaction.CommitAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>The INSERTs of <see cref="LoadAsync"/>, in the given transaction (also a write session's).</summary>
    private static async Task InsertResourcesAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<BulkResource> resources,
        CancellationToken ct)
    {
        await using var current = connection.CreateCommand();
        current.Transaction = transaction;
        current.CommandText = "INSERT INTO resource (rid, resource_type, id, version, last_key, deleted, content) VALUES (@k, @t, @id, @v, @k, @d, @c)";
        await using var history = connection.CreateCommand();
        history.Transaction = transaction;
        history.CommandText = "INSERT INTO resource_history (key, resource_type, id, version, method, deleted, content) VALUES (@k, @t, @id, @v, @m, @d, @c)";
        foreach (var (version, index) in resources)
        {
            foreach (var command in new[] { current, history })
            {
                command.Parameters.Clear();
                command.Parameters.AddWithValue("@k", version.Key);
                command.Parameters.AddWithValue("@t", version.ResourceType);
                command.Parameters.AddWithValue("@id", version.Id);
                command.Parameters.AddWithValue("@v", version.VersionId);
                command.Parameters.AddWithValue("@d", version.IsDeleted ? 1 : 0);
                command.Parameters.AddWithValue("@c", version.Json);
            }

            history.Parameters.AddWithValue("@m", version.Method);
            await current.ExecuteNonQueryAsync(ct);
            await history.ExecuteNonQueryAsync(ct);
            await SqliteIndexWriter.InsertAllAsync(connection, transaction, version.Key, version.ResourceType, index, ct);
        }
    }
}
