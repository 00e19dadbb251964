using InteropHub.Fhir.Storage;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using InteropHub.Testing;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>The subscription outbox: rows commit or roll back with their write session, in order per subscription, and one delivery claim at a time.</summary>
public abstract class OutboxStoreTests : IAsyncLifetime
{
    private static readonly CancellationToken Ct = CancellationToken.None;
    private IResourceStore _store = null!;

    private ISubscriptionOutbox Outbox => (ISubscriptionOutbox)_store;

    protected abstract Task<string> CreateDatabaseAsync();

    protected abstract IResourceStore OpenStore(string location);

    public async Task InitializeAsync()
    {
        _store = OpenStore(await CreateDatabaseAsync());
        await _store.MigrateAsync(Ct);
    }

    public async Task DisposeAsync()
    {
        if (_store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
        else if (_store is IDisposable plain)
        {
            plain.Dispose();
        }
    }

    [Fact]
    public async Task Rows_exist_only_once_their_session_commits_and_come_back_in_order_per_subscription()
    {
        var commits = 0;
        Outbox.NotificationsCommitted += (_, _) => commits++;
        await using (var rolledBack = await _store.BeginWriteAsync(Ct))
        {
            await rolledBack.AddNotificationAsync("s1", Version("Task", "t0", 1), Ct);
        }

        await using (var session = await _store.BeginWriteAsync(Ct))
        {
            await session.AddNotificationAsync("s1", Version("Task", "t1", 1), Ct);
            await session.AddNotificationAsync("s2", Version("Task", "t1", 1), Ct);
            await session.AddNotificationAsync("s1", Version("Task", "t1", 2), Ct);
            await session.AddNotificationAsync("s1", Version("Task", "t2", 1), Ct);
            await session.CommitAsync(Ct);
        }

        Assert.Equal(1, commits);
        Assert.Equal(["s1", "s2"], (await Outbox.OutboxSubscriptionsAsync(Ct)).Order(StringComparer.Ordinal));
        var s1 = await Outbox.ReadOutboxAsync("s1", 10, Ct);
        Assert.Equal(["Task/t1/1", "Task/t1/2", "Task/t2/1"], s1.Select(e => $"{e.ResourceType}/{e.ResourceId}/{e.VersionId}"));
        Assert.All(s1, e => Assert.Equal("s1", e.SubscriptionId));

        await Outbox.RemoveFromOutboxAsync(s1[0].Sequence, Ct);
        Assert.Equal([s1[1].Sequence, s1[2].Sequence], (await Outbox.ReadOutboxAsync("s1", 10, Ct)).Select(e => e.Sequence));
        Assert.Single(await Outbox.ReadOutboxAsync("s1", 1, Ct));

        await Outbox.ClearOutboxAsync("s1", Ct);
        Assert.Empty(await Outbox.ReadOutboxAsync("s1", 10, Ct));
        Assert.Equal(["s2"], await Outbox.OutboxSubscriptionsAsync(Ct));
    }

    [Fact]
    public async Task A_delivery_claim_is_held_by_one_owner_until_it_expires_or_is_released()
    {
        var now = DateTimeOffset.UtcNow;
        var minute = TimeSpan.FromMinutes(1);

        Assert.True(await Outbox.ClaimDeliveryAsync("s1", "a", now + minute, now, Ct));
        Assert.False(await Outbox.ClaimDeliveryAsync("s1", "b", now + minute, now, Ct));
        Assert.True(await Outbox.ClaimDeliveryAsync("s2", "b", now + minute, now, Ct));
        Assert.True(await Outbox.ClaimDeliveryAsync("s1", "a", now + 2 * minute, now, Ct));

        var later = now + 3 * minute;
        Assert.True(await Outbox.ClaimDeliveryAsync("s1", "b", later + minute, later, Ct));
        Assert.False(await Outbox.ClaimDeliveryAsync("s1", "a", later + minute, later, Ct));

        await Outbox.ReleaseDeliveryAsync("b", Ct);
        Assert.True(await Outbox.ClaimDeliveryAsync("s1", "a", later + minute, later, Ct));
        Assert.True(await Outbox.ClaimDeliveryAsync("s2", "a", later + minute, later, Ct));
    }

    private static VersionRow Version(string type, string id, int version) => new(type, id, version, 0, "PUT", false, []);
}

public sealed class OutboxStoreTestsOnSqlite : OutboxStoreTests
{
    protected override Task<string> CreateDatabaseAsync() =>
        Task.FromResult(Path.Combine(Directory.CreateTempSubdirectory("interophub-outbox-").FullName, "store.db"));

    protected override IResourceStore OpenStore(string location) => new SqliteResourceStore(new SqliteStoreOptions { Path = location });
}

public sealed class OutboxStoreTestsOnPostgres : OutboxStoreTests
{
    protected override Task<string> CreateDatabaseAsync() => PostgresCluster.CreateDatabaseAsync("outbox_tests");

    protected override IResourceStore OpenStore(string location) => new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = location });
}
