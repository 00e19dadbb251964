using System.Data.Common;
using System.Runtime.CompilerServices;
using InteropHub.Fhir.Storage;

namespace InteropHub.Storage.Sql;

/// <summary>
/// <see cref="IResourceScanner.ScanDeletedAsync"/> on both stores: the deletions of a type in a range of version keys,
/// found by the history's (resource_type, key) index, that were still the resource's last version at the range's end,
/// each read with the version before it (what the deletion ended). History below the range's end never changes, so
/// pages on the deletion's key are a consistent read without a transaction held open.
/// </summary>
public static class DeletedScan
{
    private const int PageSize = 1000;

    private const string Page = """
        SELECT h.key, h.id, p.version, p.key, p.content FROM resource_history h
        JOIN resource_history p ON p.resource_type = h.resource_type AND p.id = h.id AND p.version = h.version - 1
        WHERE h.resource_type = @t AND h.deleted = TRUE AND h.key > @after AND h.key < @until
          AND NOT EXISTS (SELECT 1 FROM resource_history n
                          WHERE n.resource_type = h.resource_type AND n.id = h.id AND n.version > h.version AND n.key < @until)
        ORDER BY h.key LIMIT @n
        """;

    /// <param name="open">Opens a connection of the store (one per page).</param>
    public static async IAsyncEnumerable<StoredResource> ScanAsync(Func<CancellationToken, Task<DbConnection>> open, string resourceType,
        DateTimeOffset since, DateTimeOffset until, [EnumeratorCancellation] CancellationToken ct)
    {
        var after = VersionKeys.FromInstant(since) - 1;
        while (true)
        {
            var page = new List<(long Key, StoredResource Last)>(PageSize);
            await using (var connection = await open(ct))
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = Page;
                Bind(command, "@t", resourceType);
                Bind(command, "@after", after);
                Bind(command, "@until", VersionKeys.FromInstant(until));
                Bind(command, "@n", PageSize);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    page.Add((reader.GetInt64(0), new StoredResource(resourceType, reader.GetString(1), reader.GetInt32(2),
                        VersionKeys.ToInstant(reader.GetInt64(3)), false, reader.GetFieldValue<byte[]>(4))));
                }
            }

            foreach (var (_, last) in page)
            {
                yield return last;
            }

            if (page.Count < PageSize)
            {
                yield break;
            }

            after = page[^1].Key;
        }
    }

    private static void Bind(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
