using InteropHub.Fhir.Storage;
using Npgsql;
using NpgsqlTypes;

namespace InteropHub.Storage.Postgres;

public sealed partial class PostgresResourceStore : IBulkLoader
{
    /// <summary>
    /// One transaction of binary COPYs: the current rows, the history rows, then each index table. COPY skips the
    /// per-statement parse, plan and round trip of INSERT, which is what makes millions of rows load in minutes.
    /// The unique constraint on (resource_type, id) refuses a resource that exists, failing the whole load.
    /// </summary>
    public async Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct)
    {
        if (resources.Count == 0)
        {
            return;
        }

        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await CopyResourcesAsync(connection, resources, ct);
        await transaction.CommitAsync(ct);
        OnWritten(resources.Count);
    }

    /// <summary>The COPYs of <see cref="LoadAsync"/>, in the connection's current transaction (also a write session's).</summary>
    internal static async Task CopyResourcesAsync(NpgsqlConnection connection, IReadOnlyList<BulkResource> resources, CancellationToken ct)
    {
        if (resources.Count == 0)
        {
            return;
        }

        foreach (var (table, method) in new[] { ("resource (rid, resource_type, id, version, last_key, deleted, content)", (string?)null),
                     ("resource_history (key, resource_type, id, version, deleted, content, method)", "") })
        {
            await using var copy = await connection.BeginBinaryImportAsync($"COPY {table} FROM STDIN (FORMAT BINARY)", ct);
            foreach (var (version, _) in resources)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(version.Key, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(version.ResourceType, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(version.Id, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(version.VersionId, NpgsqlDbType.Integer, ct);
                if (method is null)
                {
                    await copy.WriteAsync(version.Key, NpgsqlDbType.Bigint, ct);
                }

                await copy.WriteAsync(version.IsDeleted, NpgsqlDbType.Boolean, ct);
                await copy.WriteAsync(version.Json, NpgsqlDbType.Bytea, ct);
                if (method is not null)
                {
                    await copy.WriteAsync(version.Method, NpgsqlDbType.Text, ct);
                }
            }

            await copy.CompleteAsync(ct);
        }

        await CopyIndexRowsAsync(connection, resources.Select(r => (r.Version.Key, r.Version.ResourceType, r.Index)).ToList(), ct);
    }

    /// <summary>The index rows of the given resources, one binary COPY per table that has any.</summary>
    private static async Task CopyIndexRowsAsync(NpgsqlConnection connection, IReadOnlyList<(long Rid, string ResourceType, SearchIndexEntries Index)> resources,
        CancellationToken ct)
    {
        await CopyIndexAsync(connection, resources, "search_string (rid, resource_type, param, grp, norm, exact)", e => e.Strings,
            async (copy, row) =>
            {
                await copy.WriteAsync(row.Normalized, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Exact, NpgsqlDbType.Text, ct);
            }, r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources, "search_token (rid, resource_type, param, grp, system, code, text)", e => e.Tokens,
            async (copy, row) =>
            {
                await copy.WriteAsync(row.System, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Code, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Text, NpgsqlDbType.Text, ct);
            }, r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources, "search_date (rid, resource_type, param, grp, low, high)", e => e.Dates,
            async (copy, row) =>
            {
                await copy.WriteAsync(row.Low, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(row.High, NpgsqlDbType.Bigint, ct);
            }, r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources, "search_number (rid, resource_type, param, grp, value)", e => e.Numbers,
            (copy, row) => copy.WriteAsync(row.Value, NpgsqlDbType.Double, ct), r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources,
            "search_quantity (rid, resource_type, param, grp, system, code, value, canonical_code, canonical_value)", e => e.Quantities,
            async (copy, row) =>
            {
                await copy.WriteAsync(row.System, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Code, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Value, NpgsqlDbType.Double, ct);
                await copy.WriteAsync(row.CanonicalCode, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.CanonicalValue, NpgsqlDbType.Double, ct);
            }, r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources, "search_uri (rid, resource_type, param, grp, uri)", e => e.Uris,
            (copy, row) => copy.WriteAsync(row.Uri, NpgsqlDbType.Text, ct), r => (r.Param, r.Group), ct);
        await CopyIndexAsync(connection, resources, "search_reference (rid, resource_type, param, grp, target_type, target_id, url)", e => e.References,
            async (copy, row) =>
            {
                await copy.WriteAsync(row.TargetType, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.TargetId, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(row.Url, NpgsqlDbType.Text, ct);
            }, r => (r.Param, r.Group), ct);
    }

    private static async Task CopyIndexAsync<TRow>(NpgsqlConnection connection, IReadOnlyList<(long Rid, string ResourceType, SearchIndexEntries Index)> resources,
        string table, Func<SearchIndexEntries, IReadOnlyCollection<TRow>> rows, Func<NpgsqlBinaryImporter, TRow, Task> values,
        Func<TRow, (string Param, int Group)> key, CancellationToken ct)
    {
        if (resources.All(r => rows(r.Index).Count == 0))
        {
            return;
        }

        await using var copy = await connection.BeginBinaryImportAsync($"COPY {table} FROM STDIN (FORMAT BINARY)", ct);
        foreach (var (rid, resourceType, index) in resources)
        {
            foreach (var row in rows(index))
            {
                var (param, group) = key(row);
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(rid, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(resourceType, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(param, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(group, NpgsqlDbType.Integer, ct);
                await values(copy, row);
            }
        }

        await copy.CompleteAsync(ct);
    }
}
