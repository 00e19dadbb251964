using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

public sealed partial class PostgresResourceStore : IResourceScanner
{
    private const int ScanBatch = 1000;

    /// <summary>Reads in keyset batches, so no snapshot stays open for the whole export and memory stays bounded.</summary>
    public async IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until,
        [EnumeratorCancellation] CancellationToken ct)
    {
        long after = 0;
        while (true)
        {
            var batch = new List<(long Rid, StoredResource Resource)>(ScanBatch);
            await using (var command = _dataSource.CreateCommand($"""
                SELECT {CurrentColumns}, rid FROM resource
                WHERE resource_type = @t AND NOT deleted AND rid > @after AND last_key >= @since AND last_key < @until
                ORDER BY rid LIMIT @n
                """))
            {
                command.Parameters.Add(new NpgsqlParameter<string>("t", resourceType));
                command.Parameters.Add(new NpgsqlParameter<long>("after", after));
                command.Parameters.Add(new NpgsqlParameter<long>("since", since is { } s ? VersionKeys.FromInstant(s) : 0));
                command.Parameters.Add(new NpgsqlParameter<long>("until", VersionKeys.FromInstant(until)));
                command.Parameters.Add(new NpgsqlParameter<int>("n", ScanBatch));
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
