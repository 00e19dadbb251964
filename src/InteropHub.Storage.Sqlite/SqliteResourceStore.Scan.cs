using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;

namespace InteropHub.Storage.Sqlite;

public sealed partial class SqliteResourceStore : IResourceScanner
{
    private const int ScanBatch = 1000;

    /// <summary>Reads in keyset batches, so no read transaction stays open for the whole export and writers go on.</summary>
    public async IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until,
        [EnumeratorCancellation] CancellationToken ct)
    {
        long after = 0;
        var from = since is { } s ? VersionKeys.FromInstant(s) : 0;
        while (true)
        {
            var batch = new List<(long Rid, long Key, StoredResource Resource)>(ScanBatch);
            await using (var connection = await OpenAsync(ct))
            await using (var command = connection.CreateCommand())
            {
                // Each row once, in rid order: current when written before the transaction time, else (changed or
                // deleted since) the version of its history current then; its rid pages on either way.
                command.CommandText = """
                    SELECT last_key, resource_type, id, version, 'PUT', deleted, content, rid FROM resource
                    WHERE resource_type = @t AND rid > @after AND last_key < @until AND deleted = 0
                    UNION ALL
                    SELECT h.key, r.resource_type, r.id, h.version, h.method, h.deleted, h.content, r.rid FROM resource r
                    JOIN resource_history h ON h.resource_type = r.resource_type AND h.id = r.id AND h.version = (
                        SELECT max(v.version) FROM resource_history v WHERE v.resource_type = r.resource_type AND v.id = r.id AND v.key < @until)
                    WHERE r.resource_type = @t AND r.rid > @after AND r.last_key >= @until
                    ORDER BY 8 LIMIT @n
                    """;
                command.Parameters.AddWithValue("@t", resourceType);
                command.Parameters.AddWithValue("@after", after);
                command.Parameters.AddWithValue("@until", VersionKeys.FromInstant(until));
                command.Parameters.AddWithValue("@n", ScanBatch);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var entry = ReadHistoryRow(reader);
                    batch.Add((reader.GetInt64(7), entry.Key, entry.Resource));
                }
            }

            foreach (var (_, key, resource) in batch)
            {
                if (!resource.IsDeleted && key >= from)
                {
                    yield return resource;
                }
            }

            if (batch.Count < ScanBatch)
            {
                yield break;
            }

            after = batch[^1].Rid;
        }
    }

    public IAsyncEnumerable<StoredResource> ScanDeletedAsync(string resourceType, DateTimeOffset since, DateTimeOffset until, CancellationToken ct) =>
        DeletedScan.ScanAsync(async c => await OpenAsync(c), resourceType, since, until, ct);
}
