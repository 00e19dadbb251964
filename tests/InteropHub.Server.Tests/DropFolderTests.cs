using Hl7.Fhir.Model;
using InteropHub.Server.Seeds;
using Microsoft.AspNetCore.Hosting;

namespace InteropHub.Server.Tests;

/// <summary>
/// The township drop folder (<c>InteropHub:Township:DropFolder</c>). Each test class has its own database, used only
/// by the watching hub, so no second hub instance shares it.
/// </summary>
public abstract class DropFolderTests(HubFactory hub)
{
    [Fact]
    public async Task Batches_dropped_as_a_zip_or_a_folder_are_ingested_and_moved_to_done()
    {
        var legacy = AdapterTestBase.Legacy;
        var drop = Path.Combine(Path.GetTempPath(), "interophub-tests", "drop-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(drop);
        using var watching = await WatchingAsync(drop);
        var client = watching.CreateClient();

        var folder = Path.Combine(drop, "incoming", "batch-001");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(legacy, "township", "batch-001")))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        // Placed whole (a rename), as a careful exporter does, so the watcher never sees a half-copied batch.
        Directory.Move(folder, Path.Combine(drop, "batch-001"));
        // The zip too: written under another name, then renamed (with no settle time, the watcher could otherwise
        // read it half-written on a busy machine).
        var writing = Path.Combine(drop, "incoming", "longquan.zip.part");
        await File.WriteAllBytesAsync(writing, SeedLoader.Zip(Path.Combine(legacy, "township", "batch-003-longquan-gb18030")));
        File.Move(writing, Path.Combine(drop, "longquan.zip"));
        var done = Path.Combine(drop, "done");
        for (var wait = 0; wait < 300 && (!Directory.Exists(done) || Directory.EnumerateFileSystemEntries(done).Count() < 2); wait++)
        {
            await System.Threading.Tasks.Task.Delay(100);
        }

        Assert.Equal(["batch-001", "longquan.zip"], Directory.EnumerateFileSystemEntries(done)
            .Select(p => Path.GetFileName(p)[(Path.GetFileName(p).IndexOf('-', StringComparison.Ordinal) + 1)..]).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(drop), p => Path.GetFileName(p) is "batch-001" or "longquan.zip");
        foreach (var identifier in new[] { "369902194910010866", "369902195804121372" })
        {
            var found = await Fhir.Read<Bundle>(await client.GetAsync($"/fhir/Patient?identifier={identifier}"));
            Assert.Single(found.Entry);
        }
    }

    [Fact]
    public async Task A_batch_dropped_again_after_it_was_done_is_moved_beside_the_first_and_later_batches_still_go_in()
    {
        var legacy = AdapterTestBase.Legacy;
        var drop = Path.Combine(Path.GetTempPath(), "interophub-tests", "drop-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(drop, "incoming"));
        using var watching = await WatchingAsync(drop);
        var client = watching.CreateClient();

        async Task DropFolderAsync(int expectedDone)
        {
            var folder = Path.Combine(drop, "incoming", "batch-001");
            Directory.CreateDirectory(folder);
            foreach (var file in Directory.EnumerateFiles(Path.Combine(legacy, "township", "batch-001")))
            {
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            }

            Directory.Move(folder, Path.Combine(drop, "batch-001"));
            await WaitForDoneAsync(drop, expectedDone);
        }

        await DropFolderAsync(1);
        await DropFolderAsync(2);
        var writing = Path.Combine(drop, "incoming", "longquan.zip.part");
        await File.WriteAllBytesAsync(writing, SeedLoader.Zip(Path.Combine(legacy, "township", "batch-003-longquan-gb18030")));
        File.Move(writing, Path.Combine(drop, "longquan.zip"));
        await WaitForDoneAsync(drop, 3);

        var names = Directory.EnumerateFileSystemEntries(Path.Combine(drop, "done")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(3, names.Count);
        Assert.Equal(2, names.Count(n => n!.EndsWith("-batch-001", StringComparison.Ordinal) || n.EndsWith("-batch-001.2", StringComparison.Ordinal)));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(drop), p => Path.GetFileName(p) is not ("done" or "incoming"));
        var found = await Fhir.Read<Bundle>(await client.GetAsync("/fhir/Patient?identifier=369902194910010866"));
        Assert.Single(found.Entry);
    }

    [Fact]
    public async Task An_unreadable_entry_holds_up_no_batch_and_one_refused_whole_goes_to_failed()
    {
        var legacy = AdapterTestBase.Legacy;
        var drop = Path.Combine(Path.GetTempPath(), "interophub-tests", "drop-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(drop, "incoming"));
        // A link to nothing sorts first by its time; a "zip" that is not one is refused whole.
        File.CreateSymbolicLink(Path.Combine(drop, "aaa-broken.zip"), Path.Combine(drop, "nowhere", "gone.zip"));
        await File.WriteAllTextAsync(Path.Combine(drop, "incoming", "notazip.zip"), "hello");
        File.Move(Path.Combine(drop, "incoming", "notazip.zip"), Path.Combine(drop, "notazip.zip"));
        using var watching = await WatchingAsync(drop);

        var writing = Path.Combine(drop, "incoming", "longquan.zip.part");
        await File.WriteAllBytesAsync(writing, SeedLoader.Zip(Path.Combine(legacy, "township", "batch-003-longquan-gb18030")));
        File.Move(writing, Path.Combine(drop, "longquan.zip"));
        await WaitForDoneAsync(drop, 1);

        Assert.EndsWith("-longquan.zip", Assert.Single(Directory.EnumerateFileSystemEntries(Path.Combine(drop, "done"))), StringComparison.Ordinal);
        Assert.EndsWith("-notazip.zip", Assert.Single(Directory.EnumerateFileSystemEntries(Path.Combine(drop, "failed"))), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(drop, "aaa-broken.zip")) || new FileInfo(Path.Combine(drop, "aaa-broken.zip")).LinkTarget is not null);
    }

    /// <summary>The hub watching <paramref name="drop"/> every 0.2 s, with the county's organisations.</summary>
    private async Task<Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program>> WatchingAsync(string drop)
    {
        var watching = hub.WithWebHostBuilder(b => b
            .UseSetting("InteropHub:Township:DropFolder", drop)
            .UseSetting("InteropHub:Township:PollSeconds", "0.2")
            .UseSetting("InteropHub:Township:SettleSeconds", "0"));
        await AdapterTestBase.SeedOrganizationsAsync(watching.Services);
        return watching;
    }

    private static async Task WaitForDoneAsync(string drop, int count)
    {
        var done = Path.Combine(drop, "done");
        for (var wait = 0; wait < 300 && (!Directory.Exists(done) || Directory.EnumerateFileSystemEntries(done).Count() < count); wait++)
        {
            await System.Threading.Tasks.Task.Delay(100);
        }

        Assert.Equal(count, Directory.EnumerateFileSystemEntries(done).Count());
    }
}

public sealed class DropFolderTestsOnSqlite(SqliteHub hub) : DropFolderTests(hub), IClassFixture<SqliteHub>;

public sealed class DropFolderTestsOnPostgres(PostgresHub hub) : DropFolderTests(hub), IClassFixture<PostgresHub>;
