using System.Text;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using InteropHub.Testing;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Storage.Tests;

/// <summary>The adapters' durable inbox: stored before acknowledged, idempotent, and the home of dead letters.</summary>
public abstract class InboxStoreTests : IAsyncLifetime
{
    private static readonly CancellationToken Ct = CancellationToken.None;
    private readonly List<object> _opened = [];
    private string _location = "";

    protected abstract Task<string> CreateDatabaseAsync();

    protected abstract IResourceStore OpenStore(string location);

    public async Task InitializeAsync()
    {
        _location = await CreateDatabaseAsync();
        await ((IResourceStore)Open()).MigrateAsync(Ct);
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _opened.OfType<IAsyncDisposable>())
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_accepted_message_is_stored_as_received_byte_for_byte()
    {
        var body = Encoding.UTF8.GetBytes("MSH|^~\\&|HIS|QX2100012|HUB|QX|20250430||ADT^A04|MSG001|P|2.5\rPID|1||Z001^^^QX2100012||赵^建华");

        var (message, duplicate) = await Open().AcceptAsync("his", "MSG001", "x-application/hl7-v2+er7", body, Ct);

        Assert.False(duplicate);
        var stored = await Open().GetAsync(message.Id, Ct);
        Assert.NotNull(stored);
        Assert.Equal(body, stored.Body);
        Assert.Equal(InboxStatus.Received, stored.Status);
        Assert.Equal("MSG001", stored.MessageId);
        Assert.Equal(0, stored.Attempts);
    }

    [Fact]
    public async Task A_message_completed_in_a_write_session_is_done_only_when_the_session_commits()
    {
        var inbox = Open();
        var (message, _) = await inbox.AcceptAsync("his", "MSG-TX", "text/plain", Encoding.UTF8.GetBytes("tx"), Ct);
        var store = (IResourceStore)inbox;

        await using (var abandoned = await store.BeginWriteAsync(Ct))
        {
            await abandoned.CompleteInboxAsync(message.Id, InboxStatus.Processed, "{\"resourceType\":\"OperationOutcome\"}", Ct);
        }

        Assert.Equal(InboxStatus.Received, (await inbox.GetAsync(message.Id, Ct))!.Status);

        await using (var committed = await store.BeginWriteAsync(Ct))
        {
            await committed.CompleteInboxAsync(message.Id, InboxStatus.Processed, "{\"resourceType\":\"OperationOutcome\"}", Ct);
            await committed.CommitAsync(Ct);
        }

        var done = (await inbox.GetAsync(message.Id, Ct))!;
        Assert.Equal(InboxStatus.Processed, done.Status);
        Assert.Equal(1, done.Attempts);
        Assert.Equal("{\"resourceType\":\"OperationOutcome\"}", done.Outcome);
    }

    [Fact]
    public async Task Messages_added_in_a_write_session_are_stored_with_its_writes_and_get_their_ids_at_commit()
    {
        var inbox = Open();
        var store = (IResourceStore)inbox;
        var (earlier, _) = await inbox.AcceptAsync("his", "MSG-EARLIER", "text/plain", Encoding.UTF8.GetBytes("earlier"), Ct);
        InboxReceipt first, second;
        await using (var session = await store.BeginWriteAsync(Ct))
        {
            // Among a resource's insert, its change notification and a completion, which have results of their own.
            await session.WriteAsync(new VersionRow("Basic", "with-inbox", 1, VersionKeys.Next(), "PUT", false, "{\"resourceType\":\"Basic\",\"id\":\"with-inbox\"}"u8.ToArray()),
                SearchIndexEntries.Empty, Ct);
            first = await session.AddInboxAsync("his", "MSG-ADD-1", "text/plain", Encoding.UTF8.GetBytes("one"), InboxStatus.Processed, "{\"n\":1}", Ct);
            await session.CompleteInboxAsync(earlier.Id, InboxStatus.Processed, null, Ct);
            second = await session.AddInboxAsync("his", "MSG-ADD-2", "text/plain", Encoding.UTF8.GetBytes("two"), InboxStatus.Failed, "{\"n\":2}", Ct);
            await session.CommitAsync(Ct);
        }

        Assert.NotNull(await store.ReadAsync("Basic", "with-inbox", Ct));
        var one = (await inbox.GetAsync(first.Id, Ct))!;
        var two = (await inbox.GetAsync(second.Id, Ct))!;
        Assert.Equal(("MSG-ADD-1", "one", InboxStatus.Processed, "{\"n\":1}", 1), (one.MessageId, Encoding.UTF8.GetString(one.Body), one.Status, one.Outcome, one.Attempts));
        Assert.Equal(("MSG-ADD-2", "two", InboxStatus.Failed, "{\"n\":2}"), (two.MessageId, Encoding.UTF8.GetString(two.Body), two.Status, two.Outcome));
        Assert.True(first.Id > earlier.Id && second.Id > first.Id);
        Assert.NotNull(one.ProcessedAt);

        // Stored as if accepted: a resend is a duplicate of it.
        var (resent, duplicate) = await inbox.AcceptAsync("his", "MSG-ADD-1", "text/plain", Encoding.UTF8.GetBytes("one"), Ct);
        Assert.True(duplicate);
        Assert.Equal(first.Id, resent.Id);
    }

    [Fact]
    public async Task A_message_added_in_a_write_session_is_not_stored_when_the_session_rolls_back()
    {
        var inbox = Open();
        await using (var abandoned = await ((IResourceStore)inbox).BeginWriteAsync(Ct))
        {
            await abandoned.AddInboxAsync("his", "MSG-GONE", "text/plain", Encoding.UTF8.GetBytes("gone"), InboxStatus.Processed, null, Ct);
        }

        var (message, duplicate) = await inbox.AcceptAsync("his", "MSG-GONE", "text/plain", Encoding.UTF8.GetBytes("gone"), Ct);
        Assert.False(duplicate);
        Assert.Equal(InboxStatus.Received, message.Status);
    }

    [Fact]
    public async Task Adding_a_message_id_the_source_used_before_fails_the_session_and_writes_nothing()
    {
        var inbox = Open();
        var store = (IResourceStore)inbox;
        var (stored, _) = await inbox.AcceptAsync("his", "MSG-TWICE", "text/plain", Encoding.UTF8.GetBytes("first"), Ct);

        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(async () =>
        {
            await using var session = await store.BeginWriteAsync(Ct);
            await session.WriteAsync(new VersionRow("Basic", "not-written", 1, VersionKeys.Next(), "PUT", false, "{\"resourceType\":\"Basic\",\"id\":\"not-written\"}"u8.ToArray()),
                SearchIndexEntries.Empty, Ct);
            await session.AddInboxAsync("his", "MSG-TWICE", "text/plain", Encoding.UTF8.GetBytes("second"), InboxStatus.Processed, null, Ct);
            await session.CommitAsync(Ct);
        });

        Assert.Null(await store.ReadAsync("Basic", "not-written", Ct));
        var kept = (await inbox.GetAsync(stored.Id, Ct))!;
        Assert.Equal(("first", InboxStatus.Received), (Encoding.UTF8.GetString(kept.Body), kept.Status));
    }

    [Fact]
    public async Task The_same_message_id_or_the_same_bytes_from_a_source_is_a_duplicate()
    {
        var inbox = Open();
        var (first, _) = await inbox.AcceptAsync("his", "MSG002", "text/plain", Encoding.UTF8.GetBytes("a"), Ct);

        var (sameId, idDuplicate) = await inbox.AcceptAsync("his", "MSG002", "text/plain", Encoding.UTF8.GetBytes("b"), Ct);
        var (sameBytes, bytesDuplicate) = await inbox.AcceptAsync("his", "MSG003", "text/plain", Encoding.UTF8.GetBytes("a"), Ct);
        var (otherSource, otherDuplicate) = await inbox.AcceptAsync("township", "MSG002", "text/plain", Encoding.UTF8.GetBytes("a"), Ct);

        Assert.True(idDuplicate);
        Assert.Equal(first.Id, sameId.Id);
        Assert.True(bytesDuplicate);
        Assert.Equal(first.Id, sameBytes.Id);
        Assert.False(otherDuplicate);
        Assert.NotEqual(first.Id, otherSource.Id);
    }

    [Fact]
    public async Task Parallel_copies_of_one_message_are_stored_once()
    {
        var inbox = Open();
        var body = Encoding.UTF8.GetBytes("MSH|dup");

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => inbox.AcceptAsync("his", "MSG-P", "text/plain", body, Ct))));

        Assert.Single(results, r => !r.Duplicate);
        Assert.Single(results.Select(r => r.Message.Id).Distinct());
    }

    [Fact]
    public async Task Dead_letters_are_listed_by_source_when_one_is_named_and_paged_within_it()
    {
        var inbox = Open();
        var ids = new List<(string Source, long Id)>();
        foreach (var (source, n) in new[] { ("his", 0), ("township", 1), ("his", 2), ("birth-certificate", 3), ("his", 4) })
        {
            var id = (await inbox.AcceptAsync(source, $"S{n}", "text/plain", Encoding.UTF8.GetBytes($"s{n}"), Ct)).Message.Id;
            await inbox.CompleteAsync(id, InboxStatus.Failed, "{\"resourceType\":\"OperationOutcome\"}", Ct);
            ids.Add((source, id));
        }

        var his = ids.Where(i => i.Source == "his").Select(i => i.Id).ToList();
        Assert.Equal(his, (await inbox.ListAsync(InboxStatus.Failed, "his", null, 10, Ct)).Select(m => m.Id));
        Assert.Equal(his[1..2], (await inbox.ListAsync(InboxStatus.Failed, "his", his[0], 1, Ct)).Select(m => m.Id));
        Assert.Equal([ids[1].Id], (await inbox.ListAsync(InboxStatus.Failed, "township", null, 10, Ct)).Select(m => m.Id));
        Assert.Empty(await inbox.ListAsync(InboxStatus.Processed, "his", null, 10, Ct));
        Assert.Equal(5, (await inbox.ListAsync(InboxStatus.Failed, null, null, 10, Ct)).Count);
    }

    [Fact]
    public async Task Failed_messages_are_dead_letters_listed_in_order_and_can_be_completed_later()
    {
        var inbox = Open();
        var ids = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await inbox.AcceptAsync("his", $"F{i}", "text/plain", Encoding.UTF8.GetBytes($"m{i}"), Ct)).Message.Id);
        }

        await inbox.CompleteAsync(ids[0], InboxStatus.Failed, "{\"resourceType\":\"OperationOutcome\"}", Ct);
        await inbox.CompleteAsync(ids[1], InboxStatus.Processed, null, Ct);
        await inbox.CompleteAsync(ids[2], InboxStatus.Failed, "{\"resourceType\":\"OperationOutcome\"}", Ct);

        var dead = await inbox.ListAsync(InboxStatus.Failed, null, 10, Ct);
        Assert.Equal([ids[0], ids[2]], dead.Select(m => m.Id));
        Assert.Equal([ids[2]], (await inbox.ListAsync(InboxStatus.Failed, ids[0], 10, Ct)).Select(m => m.Id));
        Assert.Equal(1, dead[0].Attempts);
        Assert.NotNull(dead[0].Outcome);

        await inbox.CompleteAsync(ids[0], InboxStatus.Processed, null, Ct);
        var replayed = await inbox.GetAsync(ids[0], Ct);
        Assert.Equal(InboxStatus.Processed, replayed!.Status);
        Assert.Equal(2, replayed.Attempts);
        Assert.Equal(new InboxCounts("his", 3, 2, 1), (await inbox.CountsAsync(Ct)).Single());
    }

    [Fact]
    public async Task Received_messages_survive_a_restart_for_processing()
    {
        var (message, _) = await Open().AcceptAsync("birth-certificate", "Q360418201", "application/xml", Encoding.UTF8.GetBytes("<BirthCertificate/>"), Ct);

        var pending = await Open().ListAsync(InboxStatus.Received, null, 10, Ct);

        Assert.Equal([message.Id], pending.Select(m => m.Id));
    }

    private IInboxStore Open()
    {
        var store = OpenStore(_location);
        _opened.Add(store);
        return (IInboxStore)store;
    }
}

public sealed class InboxStoreTestsOnSqlite : InboxStoreTests
{
    protected override Task<string> CreateDatabaseAsync() =>
        Task.FromResult(Path.Combine(Directory.CreateTempSubdirectory("interophub-inbox-").FullName, "store.db"));

    protected override IResourceStore OpenStore(string location) => new SqliteResourceStore(new SqliteStoreOptions { Path = location });
}

public sealed class InboxStoreTestsOnPostgres : InboxStoreTests
{
    protected override Task<string> CreateDatabaseAsync() => PostgresCluster.CreateDatabaseAsync("inbox_tests");

    protected override IResourceStore OpenStore(string location) => new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = location });
}
