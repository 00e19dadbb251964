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

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        // Pooled connections keep the file open; Linux deletes open files anyway, so this is only tidiness.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
