using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class VersioningTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task If_Match_with_the_current_version_updates()
    {
        var patient = await CreateAsync();
        patient.BirthDate = "1980-02-03";

        var response = await PutAsync(patient, "W/\"1\"");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("W/\"2\"", response.Headers.ETag?.ToString());
    }

    [Fact]
    public async Task If_Match_may_list_versions_and_holds_when_the_current_one_is_among_them()
    {
        // RFC 9110 §13.1.1: If-Match is "*" or a list of entity tags.
        var patient = await CreateAsync();
        patient.BirthDate = "1980-02-03";

        var stale = await PutAsync(patient, "W/\"13\", W/\"14\"");
        var listed = await PutAsync(patient, "W/\"7\", W/\"1\"");
        var deleteStale = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "W/\"1\", W/\"3\"" } } });
        var deleteListed = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "W/\"1\", W/\"2\"" } } });

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Contains("version 13 or 14", (await Fhir.Read<OperationOutcome>(stale)).Issue.Single().Diagnostics, StringComparison.Ordinal);
        Assert.Equal((HttpStatusCode.OK, "W/\"2\""), (listed.StatusCode, listed.Headers.ETag?.ToString()));
        Assert.Equal(HttpStatusCode.PreconditionFailed, deleteStale.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, deleteListed.StatusCode);
    }

    [Fact]
    public async Task If_None_Match_on_an_update_may_list_versions_and_refuses_when_the_current_one_is_among_them()
    {
        var patient = await CreateAsync();
        patient.BirthDate = "1980-02-03";
        var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{patient.Id}") { Content = Fhir.Content(patient) };
        request.Headers.TryAddWithoutValidation("If-None-Match", "W/\"5\", W/\"1\"");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
    }

    [Fact]
    public async Task An_update_or_patch_that_changes_nothing_answers_the_stored_version_and_adds_no_history()
    {
        var patient = await CreateAsync();
        patient.Meta!.LastUpdated = patient.Meta.LastUpdated!.Value.AddDays(-1);
        patient.Meta.VersionId = "9";
        var patch = new HttpRequestMessage(HttpMethod.Patch, $"/fhir/Patient/{patient.Id}")
        {
            Content = new StringContent($$"""[{"op":"replace","path":"/gender","value":"{{patient.Gender!.Value.ToString().ToLowerInvariant()}}"}]""",
                System.Text.Encoding.UTF8, "application/json-patch+json"),
        };

        var put = await PutAsync(patient, "W/\"1\"");
        var patched = await _client.SendAsync(patch);

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("W/\"1\"", put.Headers.ETag?.ToString());
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        Assert.Equal("W/\"1\"", patched.Headers.ETag?.ToString());
        var history = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient.Id}/_history"));
        Assert.Single(history.Entry);
    }

    [Fact]
    public async Task If_Match_with_a_stale_version_is_412_and_writes_nothing()
    {
        var patient = await CreateAsync();
        patient.BirthDate = "1980-02-03";
        await PutAsync(patient, null);

        var response = await PutAsync(patient, "W/\"1\"");

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Contains("version 2", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics);
        Assert.Equal("W/\"2\"", (await _client.GetAsync($"/fhir/Patient/{patient.Id}")).Headers.ETag?.ToString());
    }

    [Fact]
    public async Task If_None_Match_on_a_put_creates_only_or_refuses_the_version_it_names_with_412()
    {
        var id = $"inm-{Guid.NewGuid():N}";
        Task<HttpResponseMessage> Put(string gender, string noneMatch) => _client.SendAsync(new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{id}")
        {
            Content = Fhir.Content(new Patient { Id = id, Gender = Enum.Parse<AdministrativeGender>(gender) }),
            Headers = { { "If-None-Match", noneMatch } },
        });

        var created = await Put("Male", "*");
        var again = await Put("Female", "*");
        var current = await Put("Female", "W/\"1\"");
        var other = await Put("Female", "W/\"7\"");
        var inBatch = await Fhir.Read<Bundle>(await _client.PostAsync("/fhir", Fhir.Content(new Bundle
        {
            Type = Bundle.BundleType.Batch,
            Entry = [new() { Resource = new Patient { Id = id, Gender = AdministrativeGender.Other },
                Request = new() { Method = Bundle.HTTPVerb.PUT, Url = $"Patient/{id}", IfNoneMatch = "*" } }],
        })));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, again.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, current.StatusCode);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.StartsWith("412", inBatch.Entry[0].Response!.Status);
        var stored = await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{id}"));
        Assert.Equal(("2", AdministrativeGender.Female), (stored.Meta!.VersionId, stored.Gender));
    }

    [Fact]
    public async Task An_If_Match_that_is_not_a_version_is_400()
    {
        var patient = await CreateAsync();

        var response = await PutAsync(patient, "\"abc\"");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Concurrent_updates_with_the_same_If_Match_let_exactly_one_win()
    {
        var patient = await CreateAsync();

        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
        {
            var copy = (Patient)patient.DeepCopy();
            copy.Name[0].Given = [$"第{i}"];
            return PutAsync(copy, "W/\"1\"");
        }));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.Equal(7, responses.Count(r => r.StatusCode == HttpStatusCode.PreconditionFailed));
        Assert.Equal("W/\"2\"", (await _client.GetAsync($"/fhir/Patient/{patient.Id}")).Headers.ETag?.ToString());
    }

    [Fact]
    public async Task If_Match_on_delete_guards_the_delete()
    {
        var patient = await CreateAsync();
        var stale = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "W/\"7\"" } } };
        var current = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "W/\"1\"" } } };

        Assert.Equal(HttpStatusCode.PreconditionFailed, (await _client.SendAsync(stale)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _client.SendAsync(current)).StatusCode);
    }

    [Fact]
    public async Task If_Match_star_updates_or_deletes_whatever_version_exists_and_never_creates()
    {
        var patient = await CreateAsync();
        patient.BirthDate = "1980-02-03";
        var absent = Fhir.Patient();
        absent.Id = $"star-{Guid.NewGuid():N}"[..20];

        var updated = await PutAsync(patient, "*");
        var notCreated = await PutAsync(absent, "*");
        var deleted = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "*" } } });
        var again = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-Match", "*" } } });

        Assert.Equal((HttpStatusCode.OK, "W/\"2\""), (updated.StatusCode, updated.Headers.ETag?.ToString()));
        Assert.Equal(HttpStatusCode.PreconditionFailed, notCreated.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Patient/{absent.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, again.StatusCode);
    }

    [Fact]
    public async Task If_Match_on_a_conditional_delete_that_matches_nothing_is_412_and_without_it_204()
    {
        var criteria = $"/fhir/Patient?identifier=urn:test:none|{Guid.NewGuid():N}";

        var star = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, criteria) { Headers = { { "If-Match", "*" } } });
        var version = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, criteria) { Headers = { { "If-Match", "W/\"1\"" } } });
        var plain = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, criteria));

        Assert.Equal(HttpStatusCode.PreconditionFailed, star.StatusCode);
        Assert.Equal(HttpStatusCode.PreconditionFailed, version.StatusCode);
        Assert.Contains("matches nothing", (await Fhir.Read<OperationOutcome>(star)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, plain.StatusCode);
    }

    [Fact]
    public async Task If_None_Match_with_the_current_etag_is_304()
    {
        var patient = await CreateAsync();
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-None-Match", "W/\"1\"" } } };
        var older = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{patient.Id}") { Headers = { { "If-None-Match", "W/\"0\"" } } };

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.OK, (await _client.SendAsync(older)).StatusCode);
    }

    [Fact]
    public async Task If_Modified_Since_answers_304_unless_the_resource_changed_later()
    {
        var patient = await CreateAsync();
        var lastUpdated = patient.Meta!.LastUpdated!.Value;
        var notModified = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{patient.Id}");
        notModified.Headers.IfModifiedSince = lastUpdated.AddSeconds(1);
        var modified = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{patient.Id}");
        modified.Headers.IfModifiedSince = lastUpdated.AddMinutes(-5);

        Assert.Equal(HttpStatusCode.NotModified, (await _client.SendAsync(notModified)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.SendAsync(modified)).StatusCode);
    }

    [Theory]
    [InlineData("W/\"01\"")]
    [InlineData("\"0\"")]
    [InlineData("W/\"1.0\"")]
    public async Task An_if_match_etag_this_server_never_writes_is_400_and_changes_nothing(string ifMatch)
    {
        var patient = await CreateAsync();
        patient.Gender = AdministrativeGender.Other;

        var response = await PutAsync(patient, ifMatch);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("leading zeros", (await Fhir.Read<OperationOutcome>(response)).Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal("1", (await Fhir.Read<Patient>(await _client.GetAsync($"/fhir/Patient/{patient.Id}"))).Meta!.VersionId);
    }

    private async Task<Patient> CreateAsync()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient()));
        return await Fhir.Read<Patient>(response);
    }

    private Task<HttpResponseMessage> PutAsync(Patient patient, string? ifMatch)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{patient.Id}") { Content = Fhir.Content(patient) };
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return _client.SendAsync(request);
    }
}

public sealed class VersioningTestsOnSqlite(SqliteHub hub) : VersioningTests(hub), IClassFixture<SqliteHub>;

public sealed class VersioningTestsOnPostgres(PostgresHub hub) : VersioningTests(hub), IClassFixture<PostgresHub>;
