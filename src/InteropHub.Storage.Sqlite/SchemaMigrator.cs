using System.Globalization;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

/// <summary>
/// Applies the embedded <c>Schema/NNNN_name.sql</c> files not yet recorded in <c>schema_version</c>, each in its
/// own transaction, in number order; a database written by an older version is brought forward at start-up.
/// </summary>
internal static class SchemaMigrator
{
    private const string Prefix = "InteropHub.Storage.Sqlite.Schema.";

    public static async Task MigrateAsync(SqliteConnection connection, CancellationToken ct)
    {
        await Execute(connection, null, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)", ct);
        var assembly = typeof(SchemaMigrator).Assembly;
        var scripts = assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Name: n[Prefix.Length..], Resource: n))
            .OrderBy(s => s.Name, StringComparer.Ordinal);

        foreach (var (name, resource) in scripts)
        {
            var version = int.Parse(name.AsSpan(0, 4), CultureInfo.InvariantCulture);
            await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await using var check = connection.CreateCommand();
            check.Transaction = tx;
            check.CommandText = "SELECT COUNT(*) FROM schema_version WHERE version = @v";
            check.Parameters.AddWithValue("@v", version);
            if (Convert.ToInt64(await check.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) > 0)
            {
                continue;
            }

            await using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            await Execute(connection, tx, await reader.ReadToEndAsync(ct), ct);
            await using var record = connection.CreateCommand();
            record.Transaction = tx;
            record.CommandText = "INSERT INTO schema_version (version, name, applied_at) VALUES (@v, @n, @at)";
            record.Parameters.AddWithValue("@v", version);
            record.Parameters.AddWithValue("@n", name);
            record.Parameters.AddWithValue("@at", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
            await record.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
    }

    private static async Task Execute(SqliteConnection connection, SqliteTransaction? tx, string sql, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct);
    }
}
