using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;
using NpgsqlTypes;

namespace InteropHub.Storage.Postgres;

public sealed partial class PostgresResourceStore : IResourceScanner
{
    /// <summary>
    /// One binary COPY of the type's rows: PostgreSQL streams them in a single snapshot (a consistent export) and
    /// rows are handed on one at a time, so memory stays bounded by a row whatever the count.
    /// </summary>
    public async IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until,
        [EnumeratorCancellation] CancellationToken ct)
    {
        if (!Fhir.Resources.ResourceTypes.IsKnown(resourceType))
        {
            throw new ArgumentException($"'{resourceType}' is not a resource type.", nameof(resourceType));
        }

        // COPY takes no parameters: the type is a known resource type name (letters only) and the keys are numbers.
        var from = since is { } s ? VersionKeys.FromInstant(s) : 0;
        var to = VersionKeys.FromInstant(until);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var export = await connection.BeginBinaryExportAsync($"""
            COPY (SELECT id, version, last_key, content FROM resource
                  WHERE resource_type = '{resourceType}' AND NOT deleted AND last_key >= {from} AND last_key < {to}
                  ORDER BY rid) TO STDOUT (FORMAT BINARY)
            """, ct);
        while (await export.StartRowAsync(ct) != -1)
        {
            var id = await export.ReadAsync<string>(NpgsqlDbType.Text, ct);
            var version = await export.ReadAsync<int>(NpgsqlDbType.Integer, ct);
            var key = await export.ReadAsync<long>(NpgsqlDbType.Bigint, ct);
            var content = await export.ReadAsync<byte[]>(NpgsqlDbType.Bytea, ct);
            yield return new StoredResource(resourceType, id, version, VersionKeys.ToInstant(key), false, content);
        }
    }
}
