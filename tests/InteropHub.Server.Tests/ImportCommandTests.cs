using Hl7.Fhir.Model;
using InteropHub.Fhir.BulkData.Import;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Operations.Import;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>The <c>import &lt;folder&gt;</c> command line, run in-process on the test hub's database.</summary>
public abstract class ImportCommandTests(HubFactory hub)
{
    [Fact]
    public async Task The_import_command_imports_every_ndjson_file_of_the_folder_and_exits_0()
    {
        var folder = ImportTests.NewFolder();
        var patients = Enumerable.Range(0, 25).Select(i => ImportTests.WithId(Fhir.Patient("秦", $"{i}"))).ToList();
        ImportTests.WriteNdjson(folder, "Patient.ndjson", patients);
        ImportTests.WriteNdjson(folder, "Observation.ndjson", patients.Select(p => ImportTests.WithId(ImportTests.Observation(p.Id!))));

        var exit = await ImportCommand.RunAsync([folder, .. Settings()]);

        Assert.Equal(0, exit);
        var store = hub.Services.GetRequiredService<IResourceStore>();
        Assert.Equal(25, (await store.ReadManyAsync("Patient", patients.Select(p => p.Id!).ToList(), CancellationToken.None)).Count);
    }

    [Fact]
    public async Task The_import_command_exits_1_when_lines_failed_and_imports_the_others()
    {
        var folder = ImportTests.NewFolder();
        var patient = ImportTests.WithId(Fhir.Patient("尤", "一"));
        ImportTests.WriteNdjson(folder, "Patient.ndjson", [patient]);
        await File.AppendAllTextAsync(Path.Combine(folder, "Patient.ndjson"), "{not json\n");

        var exit = await ImportCommand.RunAsync([folder, .. Settings()]);

        Assert.Equal(1, exit);
        Assert.NotNull(await hub.Services.GetRequiredService<IResourceStore>().ReadAsync("Patient", patient.Id!, CancellationToken.None));
    }

    [Fact]
    public async Task The_import_command_continues_an_unfinished_import_of_the_same_folder()
    {
        var folder = ImportTests.NewFolder();
        var patients = Enumerable.Range(0, 40).Select(i => ImportTests.WithId(Fhir.Patient("许", $"{i}"))).ToList();
        ImportTests.WriteNdjson(folder, "Patient.ndjson", patients);
        await using var small = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:BatchSize", "10"));
        var jobs = small.Services.GetRequiredService<ImportJobs>();
        var job = await jobs.CreateAsync(new ImportRequest(jobs.Resolve([new ImportInput(null, folder)]), "test"), CancellationToken.None);
        using var crash = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => jobs.RunAsync(job.Id, _ => crash.Cancel(), crash.Token));

        var exit = await ImportCommand.RunAsync([folder, .. Settings(), "--InteropHub:Import:BatchSize=10"]);

        Assert.Equal(0, exit);
        var done = await jobs.GetAsync(job.Id, CancellationToken.None);
        Assert.Equal(ImportState.Completed, done.State);
        Assert.Equal(40, done.Progress.Imported);
        var stored = await small.Services.GetRequiredService<IResourceStore>().ReadManyAsync("Patient", patients.Select(p => p.Id!).ToList(), CancellationToken.None);
        Assert.All(stored, s => Assert.Equal(1, s.VersionId));
        Assert.Equal(40, stored.Count);
    }

    [Fact]
    public async Task A_resource_the_import_command_creates_is_delivered_to_the_Subscription_it_matches()
    {
        await using var receiver = await Receiver.StartAsync();
        var marker = $"bulk25-{Guid.NewGuid():N}";
        var subscription = new Subscription
        {
            Status = Subscription.SubscriptionStatus.Requested,
            Reason = "Imported observations",
            Criteria = $"Observation?identifier=urn:test:bulk25|{marker}",
            Channel = new Subscription.ChannelComponent { Type = Subscription.SubscriptionChannelType.RestHook, Endpoint = receiver.Url, Payload = "application/fhir+json" },
        };
        Assert.Equal(System.Net.HttpStatusCode.Created, (await hub.CreateClient().PostAsync("/fhir/Subscription", Fhir.Content(subscription))).StatusCode);
        var folder = ImportTests.NewFolder();
        var observation = ImportTests.WithId(ImportTests.Observation("bulk25-nobody"));
        observation.Identifier.Add(new Identifier("urn:test:bulk25", marker));
        ImportTests.WriteNdjson(folder, "Observation.ndjson", [ImportTests.WithId(ImportTests.Observation("bulk25-nobody")), observation]);

        Assert.Equal(0, await ImportCommand.RunAsync([folder, .. Settings()]));

        // Queued by the command in the batch's transaction, delivered by the running hub.
        Assert.Equal($"/hook/Observation/{observation.Id}", (await receiver.NextAsync()).Path);
    }

    [Fact]
    public async Task The_import_command_without_a_folder_exits_2()
    {
        Assert.Equal(2, await ImportCommand.RunAsync([]));
        Assert.Equal(2, await ImportCommand.RunAsync([Path.Combine(ImportTests.NewFolder(), "missing"), .. Settings()]));
    }

    private string[] Settings() => hub.StoreSettings.Select(s => $"--{s.Key}={s.Value}").ToArray();
}

public sealed class ImportCommandTestsOnSqlite(SqliteHub hub) : ImportCommandTests(hub), IClassFixture<SqliteHub>;

public sealed class ImportCommandTestsOnPostgres(PostgresHub hub) : ImportCommandTests(hub), IClassFixture<PostgresHub>;
