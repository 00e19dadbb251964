using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

/// <summary>Replaces the index rows of one resource inside the write transaction: delete by rid, then insert the new set.</summary>
internal static class SqliteIndexWriter
{
    private static readonly string[] Tables =
        ["search_string", "search_token", "search_date", "search_number", "search_quantity", "search_uri", "search_reference"];

    /// <param name="hadIndex">False for a first version: its rid is new, so there are no rows to delete.</param>
    public static async Task ReplaceAsync(SqliteConnection connection, SqliteTransaction transaction, long rid, string resourceType,
        bool hadIndex, SearchIndexEntries index, CancellationToken ct)
    {
        foreach (var table in hadIndex ? Tables : [])
        {
            await using var clear = connection.CreateCommand();
            clear.Transaction = transaction;
            clear.CommandText = $"DELETE FROM {table} WHERE rid = @rid";
            clear.Parameters.AddWithValue("@rid", rid);
            await clear.ExecuteNonQueryAsync(ct);
        }

        await InsertAllAsync(connection, transaction, rid, resourceType, index, ct);
    }

    /// <summary>Inserts the index rows of a resource that has none yet.</summary>
    public static async Task InsertAllAsync(SqliteConnection connection, SqliteTransaction transaction, long rid, string resourceType,
        SearchIndexEntries index, CancellationToken ct)
    {
        await InsertAsync(connection, transaction, rid, resourceType, "search_string", ["norm", "exact"], index.Strings,
            r => [r.Param, r.Normalized, r.Exact, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_token", ["system", "code", "text"], index.Tokens,
            r => [r.Param, r.System, r.Code, r.Text, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_date", ["low", "high"], index.Dates,
            r => [r.Param, r.Low, r.High, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_number", ["value"], index.Numbers,
            r => [r.Param, r.Value, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_quantity", ["system", "code", "value", "canonical_code", "canonical_value"],
            index.Quantities, r => [r.Param, r.System, r.Code, r.Value, r.CanonicalCode, r.CanonicalValue, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_uri", ["uri"], index.Uris,
            r => [r.Param, r.Uri, r.Group], ct);
        await InsertAsync(connection, transaction, rid, resourceType, "search_reference", ["target_type", "target_id", "url"], index.References,
            r => [r.Param, r.TargetType, r.TargetId, r.Url, r.Group], ct);
    }

    /// <summary>One prepared INSERT per table, executed per row (SQLite statements are cheap; there is no network).</summary>
    private static async Task InsertAsync<T>(SqliteConnection connection, SqliteTransaction transaction, long rid, string resourceType, string table,
        string[] columns, IReadOnlyCollection<T> rows, Func<T, object[]> values, CancellationToken ct)
    {
        if (rows.Count == 0)
        {
            return;
        }

        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        var names = columns.Select((_, i) => $"@c{i}").ToList();
        insert.CommandText = $"INSERT INTO {table} (rid, resource_type, param, {string.Join(", ", columns)}, grp) VALUES (@rid, @t, @param, {string.Join(", ", names)}, @grp)";
        insert.Parameters.AddWithValue("@rid", rid);
        insert.Parameters.AddWithValue("@t", resourceType);
        var parameters = names.Prepend("@param").Append("@grp").Select(n => insert.Parameters.Add(n, SqliteType.Text)).ToArray();
        foreach (var row in rows)
        {
            var rowValues = values(row);
            for (var i = 0; i < parameters.Length; i++)
            {
                parameters[i].SqliteType = rowValues[i] switch
                {
                    long or int => SqliteType.Integer,
                    double => SqliteType.Real,
                    _ => SqliteType.Text,
                };
                parameters[i].Value = rowValues[i];
            }

            await insert.ExecuteNonQueryAsync(ct);
        }
    }
}
