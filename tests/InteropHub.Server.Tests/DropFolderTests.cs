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
        using var watching = hub.WithWebHostBuilder(b => b
            .UseSetting("InteropHub:Township:DropFolder", drop)
            .UseSetting("InteropHub:Township:PollSeconds", "0.2")
            .UseSetting("InteropHub:Township:SettleSeconds", "0"));
        var client = watching.CreateClient();
        await AdapterTestBase.SeedOrganizationsAsync(watching.Services);

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
}

public sealed class DropFolderTestsOnSqlite(SqliteHub hub) : DropFolderTests(hub), IClassFixture<SqliteHub>;

public sealed class DropFolderTestsOnPostgres(PostgresHub hub) : DropFolderTests(hub), IClassFixture<PostgresHub>;
