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
        // Written at +08:00 with the '+' unencoded, as clients often send it (it arrives as a space).
        var since = after.Meta!.LastUpdated!.Value.ToOffset(TimeSpan.FromHours(8)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", System.Globalization.CultureInfo.InvariantCulture);

        var manifest = await ExportAsync($"/fhir/$export?_type=Patient&_since={since}&_outputFormat=application/fhir+ndjson");

        var url = manifest.GetProperty("output").EnumerateArray().Single().GetProperty("url").GetString()!;
        var text = await _client.GetStringAsync(new Uri(url).PathAndQuery);
        Assert.Contains(after.Id!, text, StringComparison.Ordinal);
        Assert.DoesNotContain(before.Id!, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_since_the_manifest_lists_what_of_the_exported_types_was_deleted_since_as_transaction_bundles_and_without_it_has_no_deleted()
    {
        var id = $"bulk25-{Guid.NewGuid():N}"[..20];
        await PutAsync(Fhir.Patient("删", "前"), $"{id}-old");
        await _client.DeleteAsync($"/fhir/Patient/{id}-old");
        await PutAsync(Fhir.Patient("删", "去"), $"{id}-gone");
        await PutAsync(Fhir.Patient("删", "回"), $"{id}-back");
        await PutAsync(ImportTests.Observation($"{id}-gone"), $"{id}-obs");
        var since = await SinceAsync();
        await _client.DeleteAsync($"/fhir/Patient/{id}-gone");
        await PutAsync(Fhir.Patient("删", "短"), $"{id}-brief");
        await _client.DeleteAsync($"/fhir/Patient/{id}-brief");
        await _client.DeleteAsync($"/fhir/Patient/{id}-back");
        await PutAsync(Fhir.Patient("删", "回"), $"{id}-back");
        await _client.DeleteAsync($"/fhir/Observation/{id}-obs");

        var patients = await ExportAsync($"/fhir/$export?_type=Patient&_since={since}");
        var both = await ExportAsync($"/fhir/$export?_type=Patient,Observation&_since={since}");
        var all = await ExportAsync($"/fhir/$export?_type=Patient,Observation");

        // Deleted since, or created and deleted since; one deleted and created again is in the output instead.
        Assert.Equal([$"Patient/{id}-brief", $"Patient/{id}-gone"], (await DeletedAsync(patients)).Where(u => u.Contains(id, StringComparison.Ordinal)).Order());
        Assert.Equal([$"Patient/{id}-back"], (await ResourcesAsync(patients)).Where(r => r.Id!.StartsWith(id, StringComparison.Ordinal)).Select(r => $"{r.TypeName}/{r.Id}"));
        Assert.Equal([$"Observation/{id}-obs", $"Patient/{id}-brief", $"Patient/{id}-gone"],
            (await DeletedAsync(both)).Where(u => u.Contains(id, StringComparison.Ordinal)).Order());
        Assert.False(all.TryGetProperty("deleted", out _));
        // The files go with the job.
        var file = new Uri(both.GetProperty("deleted")[0].GetProperty("url").GetString()!).PathAndQuery;
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync(file)).StatusCode);
        await _client.DeleteAsync($"/fhir/$export-status/{file.Split('/')[^2]}");
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync(file)).StatusCode);
    }

    [Fact]
    public async Task A_patient_or_group_export_with_since_lists_the_deleted_resources_of_its_compartments_only()
    {
        var id = $"bulk25-{Guid.NewGuid():N}"[..20];
        await PutAsync(Fhir.Patient("杨", "甲"), $"{id}-m1");
        await PutAsync(Fhir.Patient("杨", "乙"), $"{id}-m2");
        await PutAsync(Fhir.Patient("杨", "丙"), $"{id}-x");
        await PutAsync(ImportTests.Observation($"{id}-m1"), $"{id}-o1");
        await PutAsync(ImportTests.Observation($"{id}-x"), $"{id}-ox");
        var group = new Group
        {
            Type = Group.GroupType.Person,
            Actual = true,
            Member = [new() { Entity = new ResourceReference($"Patient/{id}-m1") }, new() { Entity = new ResourceReference($"Patient/{id}-m2") }],
        };
        await PutAsync(group, $"{id}-g");
        var since = await SinceAsync();
        foreach (var deleted in new[] { $"Patient/{id}-m2", $"Observation/{id}-o1", $"Observation/{id}-ox" })
        {
            await _client.DeleteAsync($"/fhir/{deleted}");
        }

        var ofGroup = await ExportAsync($"/fhir/Group/{id}-g/$export?_since={since}");
        var ofOutsider = await ExportAsync($"/fhir/Patient/$export?_type=Patient,Observation&_since={since}&patient=Patient/{id}-x");
        var ofEveryPatient = await ExportAsync($"/fhir/Patient/$export?_since={since}");

        // A deleted resource is in a compartment when its last version was: the Observation by its subject.
        Assert.Equal([$"Observation/{id}-o1", $"Patient/{id}-m2"], (await DeletedAsync(ofGroup)).Where(u => u.Contains(id, StringComparison.Ordinal)).Order());
        Assert.Equal([$"Observation/{id}-ox"], (await DeletedAsync(ofOutsider)).Where(u => u.Contains(id, StringComparison.Ordinal)));
        Assert.Equal([$"Observation/{id}-o1", $"Observation/{id}-ox", $"Patient/{id}-m2"],
            (await DeletedAsync(ofEveryPatient)).Where(u => u.Contains(id, StringComparison.Ordinal)).Order());
    }

    /// <summary>A <c>_since</c> value (URL-encoded) between what a test wrote so far and what it writes next.</summary>
    private async Task<string> SinceAsync()
    {
        var marker = await CreateAsync(new Organization { Name = "bulk25 since" });
        return Uri.EscapeDataString(marker.Meta!.LastUpdated!.Value.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task PutAsync(Resource resource, string id)
    {
        resource.Id = id;
        var response = await _client.PutAsync($"/fhir/{resource.TypeName}/{id}", Fhir.Content(resource));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The <c>request.url</c> of every entry of the manifest's <c>deleted</c> files, each a transaction Bundle of DELETEs.</summary>
    private async Task<List<string>> DeletedAsync(JsonElement manifest)
    {
        var urls = new List<string>();
        foreach (var file in manifest.GetProperty("deleted").EnumerateArray())
        {
            Assert.Equal("Bundle", file.GetProperty("type").GetString());
            var text = await _client.GetStringAsync(new Uri(file.GetProperty("url").GetString()!).PathAndQuery);
            foreach (var bundle in text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Assert.IsType<Bundle>(Json.DeserializeResource(l))))
            {
                Assert.Equal(Bundle.BundleType.Transaction, bundle.Type);
                Assert.All(bundle.Entry, e => Assert.Equal(Bundle.HTTPVerb.DELETE, e.Request!.Method));
                urls.AddRange(bundle.Entry.Select(e => e.Request!.Url!));
            }
        }

        return urls;
    }

    [Fact]
    public async Task A_patient_export_has_the_patients_and_what_is_in_their_compartments()
    {
        var patient = await CreateAsync(Fhir.Patient("褚", "一"));
        var onPatient = await CreateAsync(ImportTests.Observation(patient.Id!));
        var group = await CreateAsync(new Group { Type = Group.GroupType.Person, Actual = true });
        var onGroup = ImportTests.Observation(patient.Id!);
        onGroup.Subject = new ResourceReference($"Group/{group.Id}");
        onGroup = await CreateAsync(onGroup);

        var exported = await ExportedIdsAsync("/fhir/Patient/$export?_type=Patient,Observation");

        Assert.Contains($"Patient/{patient.Id}", exported);
        Assert.Contains($"Observation/{onPatient.Id}", exported);
        Assert.DoesNotContain($"Observation/{onGroup.Id}", exported);
        Assert.DoesNotContain($"Group/{group.Id}", exported);
    }

    [Fact]
    public async Task A_group_export_has_the_member_patients_and_their_compartments_only()
    {
        var members = new[] { await CreateAsync(Fhir.Patient("卫", "甲")), await CreateAsync(Fhir.Patient("卫", "乙")) };
        var other = await CreateAsync(Fhir.Patient("卫", "丙"));
        var observations = new List<Observation>();
        foreach (var patient in members.Append(other))
        {
            observations.Add(await CreateAsync(ImportTests.Observation(patient.Id!)));
        }

        var group = await CreateAsync(new Group
        {
            Type = Group.GroupType.Person,
            Actual = true,
            Member =
            [
                .. members.Select((m, i) => new Group.MemberComponent
                {
                    Entity = new ResourceReference($"Patient/{m.Id}"),
                    Period = i == 0 ? new Period { Start = "2020-01-01" } : null,
                }),
                // A member until 2020 is a member no longer.
                new Group.MemberComponent { Entity = new ResourceReference($"Patient/{other.Id}"), Period = new Period { Start = "2019-01-01", End = "2020-12-31" } },
            ],
        });

        var exported = await ExportedIdsAsync($"/fhir/Group/{group.Id}/$export");

        // The Group itself is in its members' compartments (Group.member references them).
        Assert.Equal(
            members.Select(m => $"Patient/{m.Id}").Concat(observations.Take(2).Select(o => $"Observation/{o.Id}")).Append($"Group/{group.Id}").Order(),
            exported.Order());
    }

    [Fact]
    public async Task The_patient_parameter_narrows_a_patient_or_group_export_given_in_the_query_or_a_posted_Parameters()
    {
        var members = new[] { await CreateAsync(Fhir.Patient("蒋", "甲")), await CreateAsync(Fhir.Patient("蒋", "乙")) };
        var outsider = await CreateAsync(Fhir.Patient("蒋", "丙"));
        var observations = new List<Observation>();
        foreach (var patient in members.Append(outsider))
        {
            observations.Add(await CreateAsync(ImportTests.Observation(patient.Id!)));
        }

        var group = await CreateAsync(new Group
        {
            Type = Group.GroupType.Person,
            Actual = true,
            Member = members.Select(m => new Group.MemberComponent { Entity = new ResourceReference($"Patient/{m.Id}") }).ToList(),
        });
        var body = new Parameters();
        body.Add("_type", new FhirString("Patient"));
        body.Add("_type", new FhirString("Observation"));
        body.Add("_since", new Instant(DateTimeOffset.UtcNow.AddHours(-1)));
        body.Add("patient", new ResourceReference($"Patient/{members[1].Id}"));
        var post = new HttpRequestMessage(HttpMethod.Post, $"/fhir/Group/{group.Id}/$export") { Content = Fhir.Content(body) };

        var fromQuery = await ExportedIdsAsync($"/fhir/Patient/$export?_type=Patient,Observation&patient={_client.BaseAddress}fhir/Patient/{outsider.Id}");
        var posted = await ExportedIdsAsync(post);

        Assert.Equal([$"Observation/{observations[2].Id}", $"Patient/{outsider.Id}"], fromQuery.Order());
        Assert.Equal([$"Observation/{observations[1].Id}", $"Patient/{members[1].Id}"], posted.Order());
    }

    [Fact]
    public async Task A_patient_outside_the_group_unknown_or_at_system_level_is_400_and_lenient_handling_ignores_what_is_not_supported()
    {
        var member = await CreateAsync(Fhir.Patient("沈", "甲"));
        var outsider = await CreateAsync(Fhir.Patient("沈", "乙"));
        var group = await CreateAsync(new Group
        {
            Type = Group.GroupType.Person,
            Actual = true,
            Member = [new Group.MemberComponent { Entity = new ResourceReference($"Patient/{member.Id}") }],
        });
        async Task<HttpResponseMessage> KickOff(string url, string prefer = "respond-async")
        {
            var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.TryAddWithoutValidation("Prefer", prefer);
            return await _client.SendAsync(request);
        }

        var notMember = await KickOff($"/fhir/Group/{group.Id}/$export?patient=Patient/{outsider.Id}");
        var unknown = await KickOff($"/fhir/Patient/$export?patient=Patient/{Guid.NewGuid():N}");
        var system = await KickOff($"/fhir/$export?patient=Patient/{member.Id}");
        var empty = await KickOff("/fhir/Patient/$export?patient=");
        var byIdentifier = new Parameters();
        byIdentifier.Add("patient", new ResourceReference { Identifier = new Identifier("urn:oid:2.16.156.10011.1.3", "1") });
        var posted = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient/$export") { Content = Fhir.Content(byIdentifier) };
        posted.Headers.Add("Prefer", "respond-async");
        var identifier = await _client.SendAsync(posted);
        var strict = await KickOff("/fhir/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources");
        var lenient = await KickOff("/fhir/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources", "respond-async, handling=lenient");

        Assert.Contains("not a member", (await Fhir.Read<OperationOutcome>(notMember)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Contains("not known", (await Fhir.Read<OperationOutcome>(unknown)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Contains("system export", (await Fhir.Read<OperationOutcome>(system)).Issue[0].Diagnostics, StringComparison.Ordinal);
        // Given but naming no patient, patient must not widen the export to every patient.
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Contains("identifier", (await Fhir.Read<OperationOutcome>(identifier)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(
            (HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.BadRequest, HttpStatusCode.Accepted),
            (notMember.StatusCode, unknown.StatusCode, system.StatusCode, identifier.StatusCode, strict.StatusCode, lenient.StatusCode));
        await BulkJobStatus.WaitAsync(_client, lenient.Content.Headers.ContentLocation!.PathAndQuery, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Elements_keep_the_named_elements_of_the_types_they_name_tagged_subsetted()
    {
        var marker = Guid.NewGuid().ToString("N");
        var patient = Fhir.Patient("褚", "元");
        patient.Identifier.Add(new Identifier("urn:test:marker", marker));
        patient.Gender = AdministrativeGender.Female;
        patient.BirthDate = "1990-05-01";
        patient = await CreateAsync(patient);
        var observation = ImportTests.Observation(patient.Id!);
        observation.Identifier.Add(new Identifier("urn:test:marker", marker));
        observation = await CreateAsync(observation);
        var byPost = new Parameters();
        byPost.Add("_type", new FhirString("Patient,Observation"));
        byPost.Add("_elements", new FhirString("Patient.identifier,Patient.gender"));
        var posted = new HttpRequestMessage(HttpMethod.Post, "/fhir/$export") { Content = Fhir.Content(byPost) };
        posted.Headers.Add("Prefer", "respond-async");
        var kickOff = await _client.SendAsync(posted);
        Assert.Equal(HttpStatusCode.Accepted, kickOff.StatusCode);

        var manifest = await BulkJobStatus.WaitAsync(_client, kickOff.Content.Headers.ContentLocation!.PathAndQuery, TimeSpan.FromSeconds(30));
        var bare = await ExportAsync("/fhir/$export?_type=Observation&_elements=identifier,subject");

        var exported = await ResourcesAsync(manifest);
        var subsetPatient = (Patient)exported.Single(r => r is Patient p && p.Identifier.Any(i => i.Value == marker));
        Assert.Equal((AdministrativeGender?)AdministrativeGender.Female, subsetPatient.Gender);
        Assert.Empty(subsetPatient.Name);
        Assert.Null(subsetPatient.BirthDate);
        Assert.Equal(patient.Meta!.VersionId, subsetPatient.Meta!.VersionId);
        Assert.Single(subsetPatient.Meta.Tag, t => t.Code == "SUBSETTED");
        // A type _elements does not name is exported whole.
        var wholeObservation = (Observation)exported.Single(r => r is Observation o && o.Identifier.Any(i => i.Value == marker));
        Assert.NotNull(wholeObservation.Value);
        Assert.DoesNotContain(wholeObservation.Meta!.Tag, t => t.Code == "SUBSETTED");
        // A bare element applies to every type that has it; the mandatory elements (status, code) stay.
        var subsetObservation = (Observation)(await ResourcesAsync(bare)).Single(r => r is Observation o && o.Identifier.Any(i => i.Value == marker));
        Assert.Null(subsetObservation.Value);
        Assert.Equal($"Patient/{patient.Id}", subsetObservation.Subject!.Reference);
        Assert.Equal(observation.Code!.Coding[0].Code, subsetObservation.Code!.Coding[0].Code);
        Assert.Single(subsetObservation.Meta!.Tag, t => t.Code == "SUBSETTED");
    }

    private async Task<List<Resource>> ResourcesAsync(JsonElement manifest)
    {
        var resources = new List<Resource>();
        foreach (var file in manifest.GetProperty("output").EnumerateArray())
        {
            var text = await _client.GetStringAsync(new Uri(file.GetProperty("url").GetString()!).PathAndQuery);
            resources.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Json.DeserializeResource(l)));
        }

        return resources;
    }

    [Fact]
    public async Task A_group_export_of_an_unknown_group_is_404()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Group/{Guid.NewGuid():N}/$export");
        request.Headers.Add("Prefer", "respond-async");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    [Fact]
    public async Task A_group_export_of_a_deleted_group_is_410()
    {
        var group = await CreateAsync(new Group { Type = Group.GroupType.Person, Actual = true, Name = "term25 gone" });
        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/fhir/Group/{group.Id}")).StatusCode);
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Group/{group.Id}/$export");
        request.Headers.Add("Prefer", "respond-async");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.Contains("was deleted", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Type_filter_exports_only_what_matches_one_of_its_searches()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var male = Fhir.Patient(marker, "男");
        var female = Fhir.Patient(marker, "女");
        female.Gender = AdministrativeGender.Female;
        var unknown = Fhir.Patient(marker, "未");
        unknown.Gender = AdministrativeGender.Unknown;
        var ids = new[] { (await CreateAsync(male)).Id, (await CreateAsync(female)).Id, (await CreateAsync(unknown)).Id };
        var filter = (string value) => "&_typeFilter=" + Uri.EscapeDataString(value);

        var exported = await ExportedIdsAsync("/fhir/$export?_type=Patient" + filter($"Patient?family={marker}&gender=male")
            + filter($"Patient?family={marker}&gender=female"));

        Assert.Equal([$"Patient/{ids[0]}", $"Patient/{ids[1]}"], exported.Order());
    }

    private async Task<T> CreateAsync<T>(T resource) where T : Resource =>
        await Fhir.Read<T>(await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource)));

    /// <summary>Type/id of every exported resource that this test class created in its own database.</summary>
    private Task<List<string>> ExportedIdsAsync(string url) => ExportedIdsAsync(new HttpRequestMessage(HttpMethod.Get, url));

    private async Task<List<string>> ExportedIdsAsync(HttpRequestMessage kickOff)
    {
        var manifest = await BulkJobStatus.WaitAsync(_client, await KickOffAsync(_client, kickOff), TimeSpan.FromSeconds(30));
        var ids = new List<string>();
        foreach (var output in manifest.GetProperty("output").EnumerateArray())
        {
            var text = await _client.GetStringAsync(new Uri(output.GetProperty("url").GetString()!).PathAndQuery);
            ids.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Json.DeserializeResource(l)).Select(r => $"{r.TypeName}/{r.Id}"));
        }

        return ids;
    }

    [Theory]
    [InlineData("/fhir/$export", false)]
    [InlineData("/fhir/$export?_type=Patientt", true)]
    [InlineData("/fhir/$export?_typeFilter=Patient%3Fnosuchparam%3D1", true)]
    [InlineData("/fhir/$export?_typeFilter=Patient%3Fgender%3Dmale%26_sort%3Dbirthdate", true)]
    [InlineData("/fhir/$export?_type=Observation&_typeFilter=Patient%3Fgender%3Dmale", true)]
    [InlineData("/fhir/$export?_typeFilter=gender%3Dmale", true)]
    [InlineData("/fhir/$export?_since=11%2F26%2F2026", true)]
    [InlineData("/fhir/$export?_since=yesterday", true)]
    [InlineData("/fhir/$export?_type=Observation&_typeFilter=Observation%3Fcode%3Ain%3Dhttp%3A%2F%2Fnowhere.example%2Fvs", true)]
    [InlineData("/fhir/Patient/$export?_type=Organization", true)]
    [InlineData("/fhir/Patient/$export?_typeFilter=Organization%3Fname%3Dx", true)]
    [InlineData("/fhir/$export?_outputFormat=text/csv", true)]
    [InlineData("/fhir/$export?_elements=Patientt.name", true)]
    [InlineData("/fhir/$export?_elements=Patient.nickname", true)]
    [InlineData("/fhir/$export?_elements=Patient.name.family", true)]
    [InlineData("/fhir/$export?_type=Observation&_elements=gender", true)]
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

    private Task<string> KickOffAsync(string url) => KickOffAsync(_client, url);

    private Task<JsonElement> ExportAsync(string url) => ExportAsync(_client, url);

    internal static Task<string> KickOffAsync(HttpClient client, string url) => KickOffAsync(client, new HttpRequestMessage(HttpMethod.Get, url));

    private static async Task<string> KickOffAsync(HttpClient client, HttpRequestMessage request)
    {
        request.Headers.Add("Prefer", "respond-async");
        request.Headers.Add("Accept", "application/fhir+json");
        var response = await client.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return response.Content.Headers.ContentLocation!.PathAndQuery;
    }

    internal static async Task<JsonElement> ExportAsync(HttpClient client, string url)
    {
        return await BulkJobStatus.WaitAsync(client, await KickOffAsync(client, url), TimeSpan.FromSeconds(30));
    }
}

public sealed class ExportTestsOnSqlite(SqliteHub hub) : ExportTests(hub), IClassFixture<SqliteHub>;

public sealed class ExportTestsOnPostgres(PostgresHub hub) : ExportTests(hub), IClassFixture<PostgresHub>;
