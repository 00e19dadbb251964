using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>
/// Keeps the planner's statistics up with a database that grows fast. PostgreSQL's autovacuum analyses a table at most
/// once a minute (less often with many databases on one server), and plans are made from the statistics of the moment:
/// while a first load or an import fills an empty database, a conditional identifier lookup planned on an almost empty
/// <c>search_token</c> walked more and more rows (measured: from 0.15 ms to 2 ms per lookup over 10,000 township rows,
/// then 0.01 ms once the table was analysed), and a chained search over tables never analysed was planned as a nested
/// loop that read every name for every reference (<c>Immunization?patient.name=…&amp;_summary=count</c> over 1,000
/// just-loaded patients: 350 ms, and past the 30 s command timeout on a loaded machine; 5 ms once analysed). So the hub
/// analyses the tables the lookups and searches read itself, in the background, each time it has committed as many
/// resources as the database held at the last analysis: a few times while a database fills, then hardly ever (an
/// analysis samples a growing table and costs CPU the writes need). The count survives a restart (<see cref="MigrateAsync"/>).
/// </summary>
public sealed partial class PostgresResourceStore
{
    /// <summary>
    /// What the write path's lookups by id and by identifier are planned from. search_token's columns are named so the
    /// analysis skips the extended statistics object that searches use (it samples 300,000 rows: 15 s at a million
    /// resources, 3.8 s since it keeps no functional dependencies, against 2 s without), which PostgreSQL notes with a
    /// warning in its log.
    /// </summary>
    private const string AnalyzedTables =
        "resource, search_token (resource_type, param, code), search_string, search_reference, search_date, search_quantity, search_number, search_uri";

    private long _writtenSinceAnalyze;
    private long _analyzeAfter = 2000;
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

    /// <summary>
    /// Counts the resources written since <c>resource</c> was last analysed, by this process or one before it (a hub
    /// stopped, or killed, while it loaded a batch), so a start neither forgets that growth nor waits for as many writes
    /// again before the first analysis.
    /// </summary>
    private async Task CountWrittenSinceAnalyzeAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT s.n_mod_since_analyze, c.reltuples::bigint FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.relid = 'resource'::regclass
            """);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (await reader.ReadAsync(ct))
        {
            Interlocked.Exchange(ref _analyzeAfter, Math.Max(2000, reader.GetInt64(1)));
            OnWritten((int)Math.Min(reader.GetInt64(0), int.MaxValue));
        }
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
            Interlocked.Exchange(ref _analyzeAfter, Math.Max(2000, resources));
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
