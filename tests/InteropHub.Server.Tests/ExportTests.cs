using System.Net;
using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;

namespace InteropHub.Server.Tests;

public abstract class ExportTests(HubFactory hub)
{
    private static readonly FhirJsonDeserializer Json = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task A_system_export_writes_every_live_resource_of_the_asked_types_as_ndjson()
    {
        var marker = Guid.NewGuid().ToString("N");
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var patient = Fhir.Patient("钱", $"{i}");
            patient.Identifier.Add(new Identifier("urn:test:marker", marker));
            ids.Add((await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(patient)))).Id!);
        }

        await _client.DeleteAsync($"/fhir/Patient/{ids[2]}");
        await _client.PostAsync("/fhir/Organization", Fhir.Content(new Organization { Name = "白沙镇卫生院" }));

        var manifest = await ExportAsync("/fhir/$export?_type=Patient,Organization");

        var output = manifest.GetProperty("output").EnumerateArray().ToList();
        Assert.Equal(["Organization", "Patient"], output.Select(o => o.GetProperty("type").GetString()).Order());
        var patientFile = output.Single(o => o.GetProperty("type").GetString() == "Patient");
        var lines = (await _client.GetStringAsync(new Uri(patientFile.GetProperty("url").GetString()!).PathAndQuery)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Length, patientFile.GetProperty("count").GetInt32());
        var exported = lines.Select(l => (Patient)Json.DeserializeResource(l)).Where(p => p.Identifier.Any(i => i.Value == marker)).ToList();
        Assert.Equal(ids.Take(2).Order(), exported.Select(p => p.Id).Order());
        Assert.All(exported, p => Assert.Equal("钱", p.Name[0].Family));
        Assert.False(manifest.GetProperty("requiresAccessToken").GetBoolean());
    }

    [Fact]
    public async Task Since_exports_only_what_changed_at_or_after_it()
    {
        var before = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("孔", "前"))));
        await System.Threading.Tasks.Task.Delay(20);
        var after = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("孔", "后"))));
        var since = Uri.EscapeDataString(after.Meta!.LastUpdated!.Value.ToString("o", System.Globalization.CultureInfo.InvariantCulture));

        var manifest = await ExportAsync($"/fhir/$export?_type=Patient&_since={since}");

        var url = manifest.GetProperty("output").EnumerateArray().Single().GetProperty("url").GetString()!;
        var text = await _client.GetStringAsync(new Uri(url).PathAndQuery);
        Assert.Contains(after.Id!, text, StringComparison.Ordinal);
        Assert.DoesNotContain(before.Id!, text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/fhir/$export", false)]
    [InlineData("/fhir/$export?_type=Patientt", true)]
    [InlineData("/fhir/$export?_typeFilter=Patient%3Fgender%3Dmale", true)]
    [InlineData("/fhir/$export?_outputFormat=text/csv", true)]
    [InlineData("/fhir/$export?_elements=id", true)]
    public async Task A_kick_off_the_server_cannot_honour_is_400(string url, bool preferAsync)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (preferAsync)
        {
            request.Headers.Add("Prefer", "respond-async");
        }

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Fact]
    public async Task Deleting_a_job_removes_it()
    {
        var status = await KickOffAsync("/fhir/$export?_type=Patient");

        Assert.Equal(HttpStatusCode.Accepted, (await _client.DeleteAsync(status)).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync(status)).StatusCode);
    }

    private async Task<string> KickOffAsync(string url)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Add("Prefer", "respond-async");
        request.Headers.Add("Accept", "application/fhir+json");
        var response = await _client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return response.Content.Headers.ContentLocation!.PathAndQuery;
    }

    private async Task<JsonElement> ExportAsync(string url)
    {
        var status = await KickOffAsync(url);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var response = await _client.GetAsync(status);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            }

            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            Assert.True(response.Headers.Contains("X-Progress"));
            Assert.True(DateTime.UtcNow < deadline, "the export did not finish within 30 s");
            await System.Threading.Tasks.Task.Delay(50);
        }
    }
}

public sealed class ExportTestsOnSqlite(SqliteHub hub) : ExportTests(hub), IClassFixture<SqliteHub>;

public sealed class ExportTestsOnPostgres(PostgresHub hub) : ExportTests(hub), IClassFixture<PostgresHub>;
