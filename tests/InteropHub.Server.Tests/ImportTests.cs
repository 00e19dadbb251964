using System.Net;
using System.Text;
using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using InteropHub.Fhir.BulkData.Import;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

public abstract class ImportTests(HubFactory hub)
{
    private static readonly FhirSerializers Serializers = new();
    private static readonly FhirJsonDeserializer Json = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Importing_a_folder_creates_every_resource_with_its_id_and_reports_counts_per_type()
    {
        var folder = NewFolder();
        var patients = Enumerable.Range(0, 3).Select(i => WithId(Fhir.Patient("周", $"{i}"))).ToList();
        var observations = patients.Select(p => WithId(Observation(p.Id!))).ToList();
        WriteNdjson(folder, "Patient.ndjson", patients);
        WriteNdjson(folder, "Observation.ndjson", observations);

        var result = await ImportAsync(Input(null, folder));

        Assert.Equal([("Observation", 3L), ("Patient", 3L)], Output(result));
        Assert.Empty(result.GetProperty("error").EnumerateArray());
        foreach (var patient in patients)
        {
            var read = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{patient.Id}"));
            Assert.Equal("1", read.Meta!.VersionId);
            Assert.Equal("周", read.Name[0].Family);
        }

        var search = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Observation?subject=Patient/{patients[1].Id}"));
        Assert.Equal(observations[1].Id, Assert.Single(search.Entry).Resource!.Id);
    }

    [Fact]
    public async Task Lines_that_fail_are_reported_with_file_and_line_and_the_other_lines_are_imported()
    {
        var folder = NewFolder();
        var good = new[] { WithId(Fhir.Patient("吴", "一")), WithId(Fhir.Patient("吴", "二")) };
        var lines = new[]
        {
            Line(good[0]),
            "{ this is not json",
            """{"resourceType":"Patient","id":"x1","unknownElement":true}""",
            Line(WithId(new Organization { Name = "白沙镇卫生院" })),
            "",
            """{"resourceType":"Patient","id":"bad id!"}""",
            Line(good[1]),
        };
        var file = Path.Combine(folder, "Patient.ndjson");
        await File.WriteAllTextAsync(file, string.Join("\n", lines));

        var result = await ImportAsync(Input("Patient", file));

        Assert.Equal([("Patient", 2L)], Output(result));
        var error = Assert.Single(result.GetProperty("error").EnumerateArray());
        Assert.Equal(4, error.GetProperty("count").GetInt32());
        var outcomes = (await _client.GetStringAsync(new Uri(error.GetProperty("url").GetString()!).PathAndQuery))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (OperationOutcome)Json.DeserializeResource(l)).ToList();
        var diagnostics = outcomes.Select(o => o.Issue[0].Diagnostics).ToList();
        Assert.Equal(4, diagnostics.Count);
        // Named under the import folder, as the client knows it, not by the server's own path.
        file = Path.GetRelativePath(HubFactory.ImportRoot, file).Replace(Path.DirectorySeparatorChar, '/');
        Assert.StartsWith($"{file} line 2: ", diagnostics[0], StringComparison.Ordinal);
        Assert.StartsWith($"{file} line 3: ", diagnostics[1], StringComparison.Ordinal);
        Assert.StartsWith($"{file} line 4: ", diagnostics[2], StringComparison.Ordinal);
        Assert.Contains("declared as Patient", diagnostics[2], StringComparison.Ordinal);
        Assert.StartsWith($"{file} line 6: ", diagnostics[3], StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/Patient/{good[1].Id}")).StatusCode);
    }

    [Fact]
    public async Task Importing_an_id_that_exists_writes_a_new_version_of_it()
    {
        var id = Guid.NewGuid().ToString("N");
        var first = Fhir.Patient("郑", "旧");
        first.Id = id;
        Assert.Equal(HttpStatusCode.Created, (await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Content(first))).StatusCode);
        var folder = NewFolder();
        var second = Fhir.Patient("郑", "新");
        second.Id = id;
        WriteNdjson(folder, "Patient.ndjson", [second]);

        await ImportAsync(Input("Patient", folder));

        var read = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}"));
        Assert.Equal("2", read.Meta!.VersionId);
        Assert.Equal("新", read.Name[0].Given.Single());
        var history = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history"));
        Assert.Equal(2, history.Entry.Count);
    }

    [Fact]
    public async Task An_import_moves_a_referral_only_as_the_organisation_its_kick_off_names()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        const string partner = "https://interophub.dev/fhir/StructureDefinition/referral-partner";
        var (township, hospital) = ($"Organization/ts-{suffix}", $"Organization/hosp-{suffix}");
        await _client.PutAsync($"/fhir/{township}", Fhir.Content(new Organization { Id = $"ts-{suffix}", Extension = [new Extension(partner, new ResourceReference(hospital))] }));
        await _client.PutAsync($"/fhir/{hospital}", Fhir.Content(new Organization { Id = $"hosp-{suffix}" }));
        var refer = new Parameters();
        refer.Add("patient", new ResourceReference((await CreateAsync(Fhir.Patient("转", "诊"))).ToString()));
        refer.Add("from", new ResourceReference(township));
        refer.Add("to", new ResourceReference(hospital));
        refer.Add("direction", new Code("up"));
        refer.Add("reason", new FhirString("高血压控制不佳"));
        var referral = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest/$refer") { Content = Fhir.Content(refer), Headers = { { "X-Organization", township } } };
        var made = await _client.SendAsync(referral);
        Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        var task = (await Fhir.Read<Bundle>(made)).Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().Single();
        task.Status = Hl7.Fhir.Model.Task.TaskStatus.Accepted;
        task.Meta = null;
        var folder = NewFolder();
        WriteNdjson(folder, "Task.ndjson", [task]);

        async Task<JsonElement> ImportAsAsync(string? caller)
        {
            var kickOff = new HttpRequestMessage(HttpMethod.Post, "/fhir/$import") { Content = Fhir.Content(Input("Task", folder)), Headers = { { "Prefer", "respond-async" } } };
            if (caller is not null)
            {
                kickOff.Headers.Add("X-Organization", caller);
            }

            var response = await _client.SendAsync(kickOff);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return await WaitAsync(response.Content.Headers.ContentLocation!.PathAndQuery, _client);
        }

        var anonymous = await ImportAsAsync(null);
        var status = await Fhir.Read<Hl7.Fhir.Model.Task>(await _client.GetAsync($"/fhir/Task/{task.Id}"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Requested, status.Status);
        var refused = Assert.Single(anonymous.GetProperty("error").EnumerateArray());
        var outcome = (OperationOutcome)Json.DeserializeResource((await _client.GetStringAsync(new Uri(refused.GetProperty("url").GetString()!).PathAndQuery)).Trim());
        Assert.Contains("[referral-caller]", outcome.Issue[0].Diagnostics, StringComparison.Ordinal);

        await ImportAsAsync(township);
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Requested, (await Fhir.Read<Hl7.Fhir.Model.Task>(await _client.GetAsync($"/fhir/Task/{task.Id}"))).Status);

        await ImportAsAsync(hospital);
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Accepted, (await Fhir.Read<Hl7.Fhir.Model.Task>(await _client.GetAsync($"/fhir/Task/{task.Id}"))).Status);
    }

    private async Task<Uri> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return new Uri(string.Join('/', response.Headers.Location!.AbsolutePath.Split('/')[2..4]), UriKind.Relative);
    }

    [Fact]
    public async Task The_same_id_twice_in_one_input_gives_two_versions()
    {
        var id = Guid.NewGuid().ToString("N");
        var folder = NewFolder();
        var one = Fhir.Patient("冯", "一");
        one.Id = id;
        var two = Fhir.Patient("冯", "二");
        two.Id = id;
        WriteNdjson(folder, "Patient.ndjson", [one, two]);

        var result = await ImportAsync(Input("Patient", folder));

        Assert.Equal([("Patient", 2L)], Output(result));
        var read = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}"));
        Assert.Equal("2", read.Meta!.VersionId);
        Assert.Equal("二", read.Name[0].Given.Single());
    }

    [Fact]
    public async Task An_http_input_is_read_from_its_url()
    {
        var patient = WithId(Fhir.Patient("陈", "网"));
        var port = AdapterTestBase.FreePort();
        using var listener = new HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        listener.Start();
        var serving = System.Threading.Tasks.Task.Run(async () =>
        {
            var context = await listener.GetContextAsync();
            var body = Encoding.UTF8.GetBytes(Line(patient) + "\n");
            context.Response.ContentType = "application/fhir+ndjson";
            await context.Response.OutputStream.WriteAsync(body);
            context.Response.Close();
        });

        var result = await ImportAsync(Input("Patient", $"http://127.0.0.1:{port}/Patient.ndjson"));

        await serving;
        Assert.Equal([("Patient", 1L)], Output(result));
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync($"/fhir/Patient/{patient.Id}")).StatusCode);
    }

    [Fact]
    public async Task An_http_input_must_be_under_an_allowed_url_and_without_a_list_may_not_reach_this_machine()
    {
        await using var unlisted = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:AllowedUrls:0", ""));
        var client = unlisted.CreateClient();
        static HttpRequestMessage KickOff(string url)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/$import") { Content = Fhir.Content(Input("Patient", url)) };
            request.Headers.Add("Prefer", "respond-async");
            return request;
        }

        var notListed = await _client.SendAsync(KickOff("http://localhost:1/Patient.ndjson"));
        var lookalike = await _client.SendAsync(KickOff("http://127.0.0.1.nip.io:1/Patient.ndjson"));
        var withUser = await _client.SendAsync(KickOff("http://x@127.0.0.1:1/Patient.ndjson"));
        var loopback = await client.SendAsync(KickOff("http://127.0.0.1:1/Patient.ndjson"));
        var metadata = await client.SendAsync(KickOff("http://169.254.169.254/latest/meta-data"));

        Assert.Equal(HttpStatusCode.BadRequest, notListed.StatusCode);
        Assert.Contains("InteropHub:Import:AllowedUrls", (await Fhir.Read<OperationOutcome>(notListed)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, lookalike.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, withUser.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, loopback.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, metadata.StatusCode);
        Assert.Contains("link-local", (await Fhir.Read<OperationOutcome>(metadata)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("closed port")]
    [InlineData("unknown host")]
    public async Task An_input_that_cannot_be_read_fails_the_job_with_an_outcome_naming_it(string problem)
    {
        var url = problem == "closed port" ? $"http://127.0.0.1:{AdapterTestBase.FreePort()}/Patient.ndjson" : "http://files.no-such-host.invalid/Patient.ndjson";
        await using var allowing = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:AllowedUrls:1", "http://files.no-such-host.invalid/"));
        using var client = allowing.CreateClient();
        var status = await KickOffAsync(Input("Patient", url), client);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        HttpResponseMessage response;
        while ((response = await client.GetAsync(status)).StatusCode == HttpStatusCode.Accepted && DateTime.UtcNow < deadline)
        {
            await System.Threading.Tasks.Task.Delay(20);
        }

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Contains(url, outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("outside")]
    [InlineData("missing")]
    [InlineData("format")]
    [InlineData("prefer")]
    [InlineData("ftp")]
    public async Task A_kick_off_the_hub_cannot_honour_is_400(string problem)
    {
        var folder = NewFolder();
        WriteNdjson(folder, "Patient.ndjson", [WithId(Fhir.Patient())]);
        var parameters = problem switch
        {
            "outside" => Input(null, Path.GetTempPath()),
            "missing" => Input(null, Path.Combine(folder, "none.ndjson")),
            "ftp" => Input(null, "ftp://example.org/Patient.ndjson"),
            _ => Input(null, folder),
        };
        if (problem == "format")
        {
            parameters.Parameter[0].Value = new Code("text/csv");
        }

        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/$import") { Content = Fhir.Content(parameters) };
        if (problem != "prefer")
        {
            request.Headers.Add("Prefer", "respond-async");
        }

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Fact]
    public async Task Deleting_an_import_job_removes_it()
    {
        var folder = NewFolder();
        WriteNdjson(folder, "Patient.ndjson", [WithId(Fhir.Patient())]);
        var status = await KickOffAsync(Input(null, folder));

        Assert.Equal(HttpStatusCode.Accepted, (await _client.DeleteAsync(status)).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync(status)).StatusCode);
    }

    [Fact]
    public async Task An_id_repeated_in_the_next_batch_becomes_its_second_version_though_batches_are_written_two_at_a_time()
    {
        var folder = NewFolder();
        var patients = Enumerable.Range(0, 20).Select(i => WithId(Fhir.Patient("韩", $"{i}"))).ToList();
        patients[12].Id = patients[3].Id;
        WriteNdjson(folder, "Patient.ndjson", patients);
        await using var small = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:BatchSize", "10"));
        var jobs = small.Services.GetRequiredService<ImportJobs>();
        var job = await jobs.CreateAsync(new ImportRequest(jobs.Resolve([new ImportInput("Patient", folder)]), "test"), CancellationToken.None);

        var done = await jobs.RunAsync(job.Id, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(ImportState.Completed, done.State);
        Assert.Equal(20, done.Progress.Imported);
        var repeated = await small.Services.GetRequiredService<IResourceStore>().ReadAsync("Patient", patients[3].Id!, CancellationToken.None);
        Assert.Equal(2, repeated!.VersionId);
        Assert.Contains("\"12\"", System.Text.Encoding.UTF8.GetString(repeated.Json), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_runner_stopped_after_some_batches_is_continued_from_the_last_committed_batch_and_imports_every_line_once()
    {
        var folder = NewFolder();
        var patients = Enumerable.Range(0, 95).Select(i => WithId(Fhir.Patient("沈", $"{i}"))).ToList();
        WriteNdjson(folder, "Patient.ndjson", patients);
        await using var small = hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:BatchSize", "10"));
        var jobs = small.Services.GetRequiredService<ImportJobs>();
        var job = await jobs.CreateAsync(new ImportRequest(jobs.Resolve([new ImportInput("Patient", folder)]), "test"), CancellationToken.None);

        using var crash = new CancellationTokenSource();
        var batches = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => jobs.RunAsync(job.Id, _ =>
        {
            if (++batches == 3)
            {
                crash.Cancel();
            }
        }, crash.Token));
        var stopped = await jobs.GetAsync(job.Id, CancellationToken.None);
        Assert.Equal(ImportState.Running, stopped.State);
        // Two batches are written at once: the one after the third may have committed before the stop.
        Assert.Contains(stopped.Progress.Line, new long[] { 30, 40 });
        Assert.Equal(stopped.Progress.Line, stopped.Progress.Imported);
        var before = await small.Services.GetRequiredService<IResourceStore>().ReadManyAsync("Patient", patients.Select(p => p.Id!).ToList(), CancellationToken.None);
        Assert.Equal(stopped.Progress.Imported, before.Count);

        ImportProgress? reported = null;
        var done = await jobs.RunAsync(job.Id, p => reported = p, CancellationToken.None);

        Assert.Equal(ImportState.Completed, done.State);
        Assert.Equal(95, done.Progress.Imported);
        Assert.Equal(95, reported!.Line); // the progress shown last is the end, though the last batches finish together
        var stored = await small.Services.GetRequiredService<IResourceStore>().ReadManyAsync("Patient", patients.Select(p => p.Id!).ToList(), CancellationToken.None);
        Assert.Equal(95, stored.Count);
        Assert.All(stored, s => Assert.Equal(1, s.VersionId));
    }

    [Fact]
    public async Task Stopping_the_hub_mid_import_and_starting_it_again_imports_every_line_exactly_once()
    {
        var folder = NewFolder();
        var patients = Enumerable.Range(0, 3000).Select(i => WithId(Fhir.Patient("韩", $"{i}"))).ToList();
        WriteNdjson(folder, "Patient.ndjson", patients);
        long importedAtStop;
        string status;
        await using (var first = hub.Restarted().WithWebHostBuilder(b => b.UseSetting("InteropHub:Import:BatchSize", "10")))
        {
            var client = first.CreateClient();
            status = await KickOffAsync(Input("Patient", folder), client);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                var response = await client.GetAsync(status);
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                importedAtStop = long.Parse(response.Headers.GetValues("X-Progress").Single().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                if (importedAtStop >= 100 || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await System.Threading.Tasks.Task.Delay(10);
            }
        }

        Assert.InRange(importedAtStop, 100, 2999);
        await using var restarted = hub.Restarted();
        var result = await WaitAsync(status, restarted.CreateClient());

        Assert.Equal([("Patient", 3000L)], Output(result));
        var stored = await restarted.Services.GetRequiredService<IResourceStore>().ReadManyAsync("Patient", patients.Select(p => p.Id!).ToList(), CancellationToken.None);
        Assert.Equal(3000, stored.Count);
        Assert.All(stored, s => Assert.Equal(1, s.VersionId));
    }

    [Fact]
    public async Task Import_then_export_gives_back_the_same_resources()
    {
        var folder = NewFolder();
        var marker = Guid.NewGuid().ToString("N");
        var patient = WithId(Fhir.Patient("蒋", "往返"));
        patient.Identifier.Add(new Identifier("urn:test:marker", marker));
        patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, ContactPoint.ContactPointUse.Mobile, "13800000000"));
        var observation = WithId(Observation(patient.Id!));
        var encounter = WithId(new Encounter
        {
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            Subject = new ResourceReference($"Patient/{patient.Id}"),
            Period = new Period { Start = "2025-05-06T08:00:00+08:00", End = "2025-05-06T09:30:00+08:00" },
        });
        var condition = WithId(new Condition
        {
            Subject = new ResourceReference($"Patient/{patient.Id}"),
            Code = new CodeableConcept("http://hl7.org/fhir/sid/icd-10", "I10", "原发性高血压"),
            Encounter = new ResourceReference($"Encounter/{encounter.Id}"),
        });
        var originals = new Resource[] { patient, observation, encounter, condition };
        WriteNdjson(folder, "all.ndjson", originals);

        await ImportAsync(Input(null, folder));
        var manifest = await ExportTests.ExportAsync(_client, $"/fhir/Patient/$export?_type=Patient,Observation,Encounter,Condition&_typeFilter=" +
            Uri.EscapeDataString($"Patient?identifier=urn:test:marker|{marker}"));

        var exported = new List<Resource>();
        foreach (var output in manifest.GetProperty("output").EnumerateArray())
        {
            var text = await _client.GetStringAsync(new Uri(output.GetProperty("url").GetString()!).PathAndQuery);
            exported.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Json.DeserializeResource(l)));
        }

        foreach (var original in originals)
        {
            var back = exported.Single(r => r.TypeName == original.TypeName && r.Id == original.Id);
            Assert.Equal(WithoutMeta(original), WithoutMeta(back));
        }
    }

    internal static Observation Observation(string patientId) => new()
    {
        Status = ObservationStatus.Final,
        Code = new CodeableConcept("http://loinc.org", "8867-4", "心率"),
        Subject = new ResourceReference($"Patient/{patientId}"),
        Effective = new FhirDateTime("2025-05-06T08:15:00+08:00"),
        Value = new Quantity(72, "/min") { System = "http://unitsofmeasure.org", Code = "/min" },
    };

    internal static T WithId<T>(T resource) where T : Resource
    {
        resource.Id = Guid.NewGuid().ToString("N");
        return resource;
    }

    internal static string NewFolder() => Directory.CreateDirectory(Path.Combine(HubFactory.ImportRoot, Guid.NewGuid().ToString("N"))).FullName;

    internal static void WriteNdjson(string folder, string name, IEnumerable<Resource> resources) =>
        File.WriteAllText(Path.Combine(folder, name), string.Concat(resources.Select(r => Line(r) + "\n")));

    internal static Parameters Input(string? type, string url)
    {
        var parameters = new Parameters();
        parameters.Add("inputFormat", new Code("application/fhir+ndjson"));
        var input = new Parameters.ParameterComponent { Name = "input" };
        if (type is not null)
        {
            input.Part.Add(new Parameters.ParameterComponent { Name = "type", Value = new Code(type) });
        }

        input.Part.Add(new Parameters.ParameterComponent { Name = "url", Value = new FhirUri(url) });
        parameters.Parameter.Add(input);
        return parameters;
    }

    internal async Task<JsonElement> ImportAsync(Parameters parameters) => await WaitAsync(await KickOffAsync(parameters, _client), _client);

    private static string Line(Resource resource) => Encoding.UTF8.GetString(Serializers.ToJsonBytes(resource));

    private static string WithoutMeta(Resource resource)
    {
        var copy = (Resource)resource.DeepCopy();
        copy.Meta = null;
        return Line(copy);
    }

    private static List<(string, long)> Output(JsonElement result) =>
        result.GetProperty("output").EnumerateArray().Select(o => (o.GetProperty("type").GetString()!, o.GetProperty("count").GetInt64())).ToList();

    private Task<string> KickOffAsync(Parameters parameters) => KickOffAsync(parameters, _client);

    internal static async Task<string> KickOffAsync(Parameters parameters, HttpClient client)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/$import") { Content = Fhir.Content(parameters) };
        request.Headers.Add("Prefer", "respond-async");
        var response = await client.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return response.Content.Headers.ContentLocation!.PathAndQuery;
    }

    internal static Task<JsonElement> WaitAsync(string status, HttpClient client) => BulkJobStatus.WaitAsync(client, status, TimeSpan.FromSeconds(120));
}

public sealed class ImportTestsOnSqlite(SqliteHub hub) : ImportTests(hub), IClassFixture<SqliteHub>;

public sealed class ImportTestsOnPostgres(PostgresHub hub) : ImportTests(hub), IClassFixture<PostgresHub>;
