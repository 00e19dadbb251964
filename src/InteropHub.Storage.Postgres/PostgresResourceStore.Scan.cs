using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;
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
        // One statement, one snapshot: each resource row is read once, as current (written before the transaction
        // time) or, changed or deleted since, as the version of its history current then.
        await using var export = await connection.BeginBinaryExportAsync($"""
            COPY (SELECT id, version, last_key, content FROM resource
                  WHERE resource_type = '{resourceType}' AND NOT deleted AND last_key >= {from} AND last_key < {to}
                  UNION ALL
                  SELECT h.id, h.version, h.key, h.content FROM resource r
                  CROSS JOIN LATERAL (SELECT id, version, key, content, deleted FROM resource_history
                                      WHERE resource_type = r.resource_type AND id = r.id AND key < {to}
                                      ORDER BY version DESC LIMIT 1) h
                  WHERE r.resource_type = '{resourceType}' AND r.last_key >= {to} AND NOT h.deleted AND h.key >= {from}
                 ) TO STDOUT (FORMAT BINARY)
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

    public IAsyncEnumerable<StoredResource> ScanDeletedAsync(string resourceType, DateTimeOffset since, DateTimeOffset until, CancellationToken ct) =>
        DeletedScan.ScanAsync(async c => await _dataSource.OpenConnectionAsync(c), resourceType, since, until, ct);
}
