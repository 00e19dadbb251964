using System.Globalization;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// Applies the embedded <c>Schema/NNNN_name.sql</c> files not yet recorded in <c>schema_version</c>, each in its
/// own transaction, in number order. Several hub instances may start at once against one database, so the whole
/// run holds a session advisory lock: the second instance waits, then finds every script already recorded.
/// </summary>
internal static class SchemaMigrator
{
    private const string Prefix = "InteropHub.Storage.Postgres.Schema.";

    public static async Task MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await ExecuteAsync(connection, "SELECT pg_advisory_lock(@k)", AdvisoryLockKeys.Migration, ct);
        try
        {
            await ExecuteAsync(connection,
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)",
                null, ct);
            foreach (var (version, name, resource) in Scripts())
            {
                await ApplyAsync(connection, version, name, resource, ct);
            }
        }
        finally
        {
            // A pooled connection keeps session locks until it is reset on its next use, so release explicitly,
            // even when the migration was cancelled.
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock(@k)", AdvisoryLockKeys.Migration, CancellationToken.None);
        }
    }

    private static IEnumerable<(int Version, string Name, string Resource)> Scripts() =>
        typeof(SchemaMigrator).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Name: n[Prefix.Length..], Resource: n))
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => (int.Parse(s.Name.AsSpan(0, 4), CultureInfo.InvariantCulture), s.Name, s.Resource));

    private static async Task ApplyAsync(NpgsqlConnection connection, int version, string name, string resource, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var check = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM schema_version WHERE version = @v)", connection, tx))
        {
            check.Parameters.Add(new NpgsqlParameter<int>("v", version));
            if ((bool)(await check.ExecuteScalarAsync(ct))!)
            {
                return;
            }
        }

        string sql;
        await using (var stream = typeof(SchemaMigrator).Assembly.GetManifestResourceStream(resource)!)
        using (var reader = new StreamReader(stream))
        {
            sql = await reader.ReadToEndAsync(ct);
        }

        await using (var script = new NpgsqlCommand(sql, connection, tx))
        {
            await script.ExecuteNonQueryAsync(ct);
        }

        await using (var record = new NpgsqlCommand("INSERT INTO schema_version (version, name, applied_at) VALUES (@v, @n, now())", connection, tx))
        {
            record.Parameters.Add(new NpgsqlParameter<int>("v", version));
            record.Parameters.Add(new NpgsqlParameter<string>("n", name));
            await record.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, long? key, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        if (key is { } k)
        {
            command.Parameters.Add(new NpgsqlParameter<long>("k", k));
        }

        await command.ExecuteNonQueryAsync(ct);
    }
}
