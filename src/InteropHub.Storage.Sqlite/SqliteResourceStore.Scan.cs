using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Sqlite;

public sealed partial class SqliteResourceStore : IResourceScanner
{
    private const int ScanBatch = 1000;

    /// <summary>Reads in keyset batches, so no read transaction stays open for the whole export and writers go on.</summary>
    public async IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until,
        [EnumeratorCancellation] CancellationToken ct)
    {
        long after = 0;
        while (true)
        {
            var batch = new List<(long Rid, StoredResource Resource)>(ScanBatch);
            await using (var connection = await OpenAsync(ct))
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = $"""
                    SELECT {Columns}, rid FROM resource
                    WHERE resource_type = @t AND deleted = 0 AND rid > @after AND last_key >= @since AND last_key < @until
                    ORDER BY rid LIMIT @n
                    """;
                command.Parameters.AddWithValue("@t", resourceType);
                command.Parameters.AddWithValue("@after", after);
                command.Parameters.AddWithValue("@since", since is { } s ? VersionKeys.FromInstant(s) : 0);
                command.Parameters.AddWithValue("@until", VersionKeys.FromInstant(until));
                command.Parameters.AddWithValue("@n", ScanBatch);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    batch.Add((reader.GetInt64(6), ReadCurrentRow(reader)));
                }
            }

            foreach (var (_, resource) in batch)
            {
                yield return resource;
            }

            if (batch.Count < ScanBatch)
            {
                yield break;
            }

            after = batch[^1].Rid;
        }
    }
}
