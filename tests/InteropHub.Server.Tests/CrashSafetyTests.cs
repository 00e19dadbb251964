using System.Collections.Concurrent;
using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>
/// Runs the real server as a child process, writes to it from several clients, kills it with SIGKILL in the
/// middle of the writes, and then checks the database: every acknowledged write is there, and no resource is
/// half-written (current row, history and index agree, and the stored bytes parse).
/// </summary>
public abstract class CrashSafetyTests(HubFactory hub)
{
    [Fact]
    public async Task Killing_the_server_mid_write_loses_no_acknowledged_write_and_leaves_no_partial_resource()
    {
        var acknowledged = new ConcurrentDictionary<string, int>();
        var identifiers = new ConcurrentDictionary<string, string>();
        using (var server = await StartServerAsync(hub))
        {
            using var client = new HttpClient { BaseAddress = server.BaseAddress };
            using var writing = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 4).Select(w => WriteUntilCancelledAsync(client, w, acknowledged, identifiers, writing.Token)).ToList();

            await WaitForAsync(() => acknowledged.Count >= 40, TimeSpan.FromSeconds(60));
            server.Kill();
            await writing.CancelAsync();
            await System.Threading.Tasks.Task.WhenAll(writers);
        }

        Assert.True(acknowledged.Count >= 40, $"only {acknowledged.Count} writes were acknowledged before the kill");
        using var restarted = hub.Restarted();
        var store = restarted.Services.GetRequiredService<IResourceStore>();
        var serializers = restarted.Services.GetRequiredService<FhirSerializers>();

        foreach (var (id, version) in acknowledged)
        {
            var current = await store.ReadAsync("Patient", id, CancellationToken.None);
            Assert.NotNull(current);
            Assert.True(current.VersionId >= version, $"Patient/{id} acknowledged at version {version} but stored at {current.VersionId}");
            var patient = Assert.IsType<Patient>(serializers.ParseStored(current.Json));
            Assert.Equal(current.VersionId.ToString(System.Globalization.CultureInfo.InvariantCulture), patient.Meta!.VersionId);
            var latest = await store.ReadHistoryAsync(new HistoryQuery("Patient", id, null, 1, null), CancellationToken.None);
            Assert.Equal(current.VersionId, latest.Single().Resource.VersionId);
            var criteria = SearchCriteria.ParseQueryString("Patient", $"identifier=urn:oid:2.16.156.10011.1.3|{identifiers[id]}");
            Assert.Equal(id, (await store.FindAsync("Patient", criteria, null, 10, CancellationToken.None)).Single().Id);
        }

        // The restarted server serves the data.
        var any = acknowledged.Keys.First();
        Assert.Equal(HttpStatusCode.OK, (await restarted.CreateClient().GetAsync($"/fhir/Patient/{any}")).StatusCode);
    }

    private static async Task WriteUntilCancelledAsync(HttpClient client, int writer, ConcurrentDictionary<string, int> acknowledged,
        ConcurrentDictionary<string, string> identifiers, CancellationToken ct)
    {
        var filler = new string('档', 3000);
        for (var i = 0; !ct.IsCancellationRequested; i++)
        {
            try
            {
                var number = $"36992120000101{writer:D2}{i:D4}";
                var patient = Fhir.Patient("孙", $"第{writer}-{i}", number);
                patient.Text = new Narrative { Status = Narrative.NarrativeStatus.Generated, Div = $"<div xmlns=\"http://www.w3.org/1999/xhtml\">{filler}</div>" };
                var created = await client.PostAsync("/fhir/Patient", Fhir.Content(patient), ct);
                if (created.StatusCode != HttpStatusCode.Created)
                {
                    continue;
                }

                var stored = await Fhir.Read<Patient>(created);
                identifiers[stored.Id!] = number;
                acknowledged[stored.Id!] = 1;
                stored.Gender = AdministrativeGender.Female;
                var updated = await client.PutAsync($"/fhir/Patient/{stored.Id}", Fhir.Content(stored), ct);
                if (updated.StatusCode == HttpStatusCode.OK)
                {
                    acknowledged[stored.Id!] = 2;
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // The server died under us: whatever was not acknowledged may or may not be there.
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                await System.Threading.Tasks.Task.Delay(20, CancellationToken.None);
            }
        }
    }

    /// <summary>The server's own binary, configured through the environment as in production.</summary>
    private static Task<ChildProcess> StartServerAsync(HubFactory hub)
    {
        var environment = hub.StoreSettings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);
        environment["InteropHub__Seeds__Load"] = "false";
        environment["InteropHub__Mllp__Port"] = "0";
        environment["Logging__LogLevel__Default"] = "Warning";
        return ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata");
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await System.Threading.Tasks.Task.Delay(10);
        }
    }
}

public sealed class CrashSafetyTestsOnSqlite(SqliteHub hub) : CrashSafetyTests(hub), IClassFixture<SqliteHub>;

public sealed class CrashSafetyTestsOnPostgres(PostgresHub hub) : CrashSafetyTests(hub), IClassFixture<PostgresHub>;
