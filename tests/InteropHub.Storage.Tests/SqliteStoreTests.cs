using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sqlite;

namespace InteropHub.Storage.Tests;

/// <summary>The conformance suite against the SQLite store, one temp database file per test.</summary>
public sealed class SqliteStoreTests : StoreConformanceTests
{
    private readonly string _folder = Directory.CreateTempSubdirectory("interophub-sqlite-").FullName;

    protected override Task<string> CreateDatabaseAsync() => Task.FromResult(Path.Combine(_folder, "store.db"));

    protected override IResourceStore OpenStore(string location) => new SqliteResourceStore(new SqliteStoreOptions { Path = location });

    [Fact]
    public async Task An_estimated_total_on_sqlite_is_the_count()
    {
        await Store.LoadBulkPatientsAsync(10);

        var criteria = InteropHub.Fhir.Search.SearchCriteria.ParseQueryString("Patient", "gender=female");
        Assert.Equal(5, await Store.EstimateCountAsync(criteria, Ct));
    }

    [Fact]
    public async Task A_search_for_any_of_several_identifiers_on_sqlite_reads_only_those_codes_index_entries()
    {
        await Store.LoadBulkPatientsAsync(10);
        var criteria = InteropHub.Fhir.Search.SearchCriteria.ParseQueryString("Patient",
            "identifier=urn:oid:2.16.156.10011.1.3|369921194001020011,urn:oid:2.16.156.10011.1.2|36992110120100001");
        var find = InteropHub.Storage.Sql.SearchSql.FindWithCurrent(criteria, 2, InteropHub.Storage.Sql.SqlDialect.Sqlite);

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Location}");
        await connection.OpenAsync(Ct);
        await using var explain = connection.CreateCommand();
        explain.CommandText = "EXPLAIN QUERY PLAN " + find.Text;
        foreach (var (name, value) in find.Parameters)
        {
            explain.Parameters.AddWithValue(name, value);
        }

        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                plan.Add(reader.GetString(3));
            }
        }

        // Reading every identifier of the type instead made a batch of conditional updates quadratic.
        Assert.Contains(plan, step => step.Contains("ix_search_token (resource_type=? AND param=? AND code=?)", StringComparison.Ordinal));
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        // Pooled connections keep the file open; Linux deletes open files anyway, so this is only tidiness.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
