using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// Keeps the planner's statistics up with a database that grows fast. PostgreSQL's autovacuum analyses a table at most
/// once a minute, and the generic plans of the write path's prepared statements are made from the statistics of the
/// moment: while a first load or an import fills an empty database, a conditional identifier lookup planned on an
/// almost empty <c>search_token</c> walked more and more rows (measured: from 0.15 ms to 2 ms per lookup over 10,000
/// township rows, then 0.01 ms once the table was analysed). So the hub analyses the tables it writes itself, in the
/// background, each time it has committed a fifth more resources than the database held at the last analysis.
/// </summary>
public sealed partial class PostgresResourceStore
{
    private const string AnalyzedTables =
        "resource, resource_history, search_string, search_token, search_date, search_number, search_quantity, search_uri, search_reference";

    private long _writtenSinceAnalyze;
    private long _analyzeAfter = 1000;
    private int _analyzing;
    private Task _analysis = Task.CompletedTask;

    /// <summary>Counts resources committed; starts an analysis when enough were since the last one.</summary>
    private void OnWritten(int resources)
    {
        if (resources == 0 || Interlocked.Add(ref _writtenSinceAnalyze, resources) < Interlocked.Read(ref _analyzeAfter)
            || Interlocked.Exchange(ref _analyzing, 1) == 1)
        {
            return;
        }

        _analysis = Task.Run(AnalyzeAsync);
    }

    private async Task AnalyzeAsync()
    {
        try
        {
            Interlocked.Exchange(ref _writtenSinceAnalyze, 0);
            await using var connection = await _dataSource.OpenConnectionAsync();
            await using (var analyze = new NpgsqlCommand($"ANALYZE {AnalyzedTables}", connection))
            {
                await analyze.ExecuteNonQueryAsync();
            }

            await using var count = new NpgsqlCommand("SELECT reltuples::bigint FROM pg_class WHERE oid = 'resource'::regclass", connection);
            var resources = Convert.ToInt64(await count.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
            Interlocked.Exchange(ref _analyzeAfter, Math.Max(1000, resources / 5));
        }
        catch (Exception e) when (e is NpgsqlException or ObjectDisposedException or InvalidOperationException)
        {
            // Statistics only speed plans up; autovacuum analyses the tables later anyway.
        }
        finally
        {
            Volatile.Write(ref _analyzing, 0);
        }
    }
}
