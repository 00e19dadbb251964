using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using InteropHub.Testing;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>The in-memory read cache must never answer with a version older than the last committed write.</summary>
public abstract class ReadCacheTests : IAsyncLifetime, IDisposable
{
    private readonly VersionWriter _writer = new(new FhirSerializers(), TimeProvider.System);
    private readonly List<IResourceStore> _opened = [];
    private readonly CancellationTokenSource _following = new();
    private readonly List<Task> _feeds = [];

    protected string Location { get; private set; } = "";

    protected abstract Task<string> CreateDatabaseAsync();

    protected abstract IResourceStore OpenStore(string location);

    public async Task InitializeAsync()
    {
        Location = await CreateDatabaseAsync();
        await Open().MigrateAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _following.CancelAsync();
        await Task.WhenAll(_feeds);
        foreach (var store in _opened)
        {
            if (store is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }

    public void Dispose() => _following.Dispose();

    [Fact]
    public async Task A_write_through_the_cache_is_seen_by_the_next_read()
    {
        var cache = await ServingCacheAsync();
        await PutAsync(cache, "p1", "一");
        await WaitUntilAsync(async () =>
        {
            var hits = cache.Hits;
            return (await cache.ReadAsync("Patient", "p1", CancellationToken.None))?.VersionId == 1 && cache.Hits == hits + 1;
        });

        await PutAsync(cache, "p1", "二");

        var read = await cache.ReadAsync("Patient", "p1", CancellationToken.None);
        Assert.Equal(2, read!.VersionId);
    }

    [Fact]
    public async Task Reads_racing_with_writes_never_keep_an_older_version()
    {
        var cache = await ServingCacheAsync();
        await PutAsync(cache, "p2", "0");
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await cache.ReadAsync("Patient", "p2", CancellationToken.None);
            }
        })).ToList();

        for (var i = 1; i <= 30; i++)
        {
            await PutAsync(cache, "p2", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(i + 1, (await cache.ReadAsync("Patient", "p2", CancellationToken.None))!.VersionId);
        }

        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Equal(31, (await cache.ReadAsync("Patient", "p2", CancellationToken.None))!.VersionId);
    }

    /// <summary>A cache that answers from memory: following the change feed where the store has one.</summary>
    protected async Task<CachingResourceStore> ServingCacheAsync()
    {
        var cache = new CachingResourceStore(Open(), new ReadCacheOptions());
        _feeds.Add(cache.FollowChangesAsync(_following.Token));
        await WaitUntilAsync(() => Task.FromResult(cache.Serving));
        return cache;
    }

    protected static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold within 10 s");
            await Task.Delay(20);
        }
    }

    protected IResourceStore Open()
    {
        var store = OpenStore(Location);
        _opened.Add(store);
        return store;
    }

    protected Task PutAsync(IResourceStore store, string id, string given)
    {
        var patient = new Patient { Id = id, Name = [new HumanName { Family = "王", Given = [given] }] };
        return new UpdateResource(store, _writer).HandleAsync(new UpdateRequest("Patient", id, null, patient, null), CancellationToken.None);
    }
}

public sealed class ReadCacheTestsOnSqlite : ReadCacheTests
{
    protected override Task<string> CreateDatabaseAsync() =>
        Task.FromResult(Path.Combine(Directory.CreateTempSubdirectory("interophub-cache-").FullName, "store.db"));

    protected override IResourceStore OpenStore(string location) => new SqliteResourceStore(new SqliteStoreOptions { Path = location });
}

public sealed class ReadCacheTestsOnPostgres : ReadCacheTests
{
    protected override Task<string> CreateDatabaseAsync() => PostgresCluster.CreateDatabaseAsync("cache_tests");

    protected override IResourceStore OpenStore(string location) => new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = location });

    [Fact]
    public async Task A_write_by_another_hub_instance_evicts_the_cached_copy()
    {
        var mine = new CachingResourceStore(Open(), new ReadCacheOptions());
        var other = Open();
        using var following = new CancellationTokenSource();
        var feed = mine.FollowChangesAsync(following.Token);
        await WaitUntilAsync(() => Task.FromResult(mine.Serving));
        await PutAsync(other, "p3", "一");
        // Until version 1 is answered from memory (its own notification may still evict it once).
        await WaitUntilAsync(async () =>
        {
            var hits = mine.Hits;
            return (await mine.ReadAsync("Patient", "p3", CancellationToken.None))?.VersionId == 1 && mine.Hits == hits + 1;
        });

        await PutAsync(other, "p3", "二");

        await WaitUntilAsync(async () => (await mine.ReadAsync("Patient", "p3", CancellationToken.None))!.VersionId == 2);
        await following.CancelAsync();
        await feed;
    }

    [Fact]
    public async Task Without_a_running_change_feed_nothing_is_served_from_memory()
    {
        var mine = new CachingResourceStore(Open(), new ReadCacheOptions());
        var other = Open();
        await PutAsync(other, "p4", "一");
        Assert.Equal(1, (await mine.ReadAsync("Patient", "p4", CancellationToken.None))!.VersionId);

        await PutAsync(other, "p4", "二");

        Assert.False(mine.Serving);
        Assert.Equal(2, (await mine.ReadAsync("Patient", "p4", CancellationToken.None))!.VersionId);
        Assert.Equal(0, mine.Hits);
    }
}
