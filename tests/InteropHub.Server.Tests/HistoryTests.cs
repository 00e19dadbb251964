using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class HistoryTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Instance_history_lists_every_version_newest_first_including_the_delete()
    {
        var id = await CreateUpdateDeleteAsync();

        var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history"));

        Assert.Equal(Bundle.BundleType.History, bundle.Type);
        Assert.Equal(["3", "2", "1"], bundle.Entry.Select(e => e.Response!.Etag!.Trim('W', '/', '"')));
        Assert.Equal(Bundle.HTTPVerb.DELETE, bundle.Entry[0].Request!.Method);
        Assert.Null(bundle.Entry[0].Resource);
        Assert.Equal(Bundle.HTTPVerb.PUT, bundle.Entry[1].Request!.Method);
        Assert.Equal(Bundle.HTTPVerb.POST, bundle.Entry[2].Request!.Method);
        Assert.Equal("2", bundle.Entry[1].Resource!.Meta!.VersionId);
        Assert.All(bundle.Entry, e => Assert.EndsWith($"/fhir/Patient/{id}", e.FullUrl!));
    }

    [Fact]
    public async Task Type_and_system_history_include_new_versions()
    {
        var id = await CreateUpdateDeleteAsync();

        var type = await Fhir.Read<Bundle>(await _client.GetAsync("/fhir/Patient/_history?_count=100"));
        var system = await Fhir.Read<Bundle>(await _client.GetAsync("/fhir/_history?_count=100"));

        Assert.Equal(3, type.Entry.Count(e => e.FullUrl!.EndsWith(id, StringComparison.Ordinal)));
        Assert.All(type.Entry, e => Assert.Contains("/Patient/", e.FullUrl!, StringComparison.Ordinal));
        Assert.Equal(3, system.Entry.Count(e => e.FullUrl!.EndsWith(id, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Since_keeps_only_versions_written_at_or_after_the_instant()
    {
        var id = await CreateUpdateDeleteAsync();
        var all = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history"));
        var secondWritten = all.Entry[1].Response!.LastModified!.Value;

        var since = Uri.EscapeDataString(secondWritten.ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture));
        var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history?_since={since}"));

        Assert.Equal(["3", "2"], bundle.Entry.Select(e => e.Response!.Etag!.Trim('W', '/', '"')));
    }

    [Fact]
    public async Task Since_reads_an_unencoded_plus_of_an_offset_and_a_bare_date_as_export_and_everything_do()
    {
        var id = await CreateUpdateDeleteAsync();
        var all = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history"));
        var second = all.Entry[1].Response!.LastModified!.Value.ToOffset(TimeSpan.FromHours(8));

        // The '+' of +08:00 left unencoded arrives as a space.
        var plus = await Fhir.Read<Bundle>(await _client.GetAsync(
            $"/fhir/Patient/{id}/_history?_since={second.ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture)}"));
        var date = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history?_since=2000-01-01"));
        var everything = await _client.GetAsync($"/fhir/Patient/{id}/$everything?_since=2000-01-01");

        Assert.Equal(["3", "2"], plus.Entry.Select(e => e.Response!.Etag!.Trim('W', '/', '"')));
        Assert.Equal(3, date.Entry.Count);
        Assert.NotEqual(HttpStatusCode.BadRequest, everything.StatusCode);
    }

    [Fact]
    public async Task Paging_through_history_with_next_links_sees_each_version_once()
    {
        var id = (await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient())))).Id;
        for (var i = 0; i < 6; i++)
        {
            var patient = Fhir.Patient(given: $"第{i}");
            patient.Id = id;
            await _client.PutAsync($"/fhir/Patient/{id}", Fhir.Content(patient));
        }

        var versions = new List<string>();
        var url = $"/fhir/Patient/{id}/_history?_count=3";
        var pages = 0;
        while (url is not null)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            versions.AddRange(bundle.Entry.Select(e => e.Resource!.Meta!.VersionId!));
            Assert.Contains("_count=3", bundle.SelfLink!.ToString(), StringComparison.Ordinal);
            url = bundle.NextLink?.PathAndQuery;
            pages++;
        }

        Assert.Equal(3, pages);
        Assert.Equal(["7", "6", "5", "4", "3", "2", "1"], versions);
    }

    [Fact]
    public async Task At_keeps_the_versions_current_at_some_moment_of_its_interval()
    {
        var patient = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient())));
        var written = new List<DateTimeOffset> { patient.Meta!.LastUpdated!.Value };
        foreach (var gender in new[] { AdministrativeGender.Female, AdministrativeGender.Male })
        {
            await Task.Delay(40);
            patient.Gender = gender;
            patient = await Fhir.Read<Patient>(await _client.PutAsync($"/fhir/Patient/{patient.Id}", Fhir.Content(patient)));
            written.Add(patient.Meta!.LastUpdated!.Value);
        }

        async Task<string[]> VersionsAt(string at)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{patient.Id}/_history?_at={Uri.EscapeDataString(at)}"));
            Assert.Equal(bundle.Entry.Count, bundle.Total);
            return bundle.Entry.Select(e => e.Resource!.Meta!.VersionId!).ToArray();
        }

        string Between(int first) =>
            (written[first] + (written[first + 1] - written[first]) / 2).ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal(["1"], await VersionsAt(Between(0)));
        Assert.Equal(["2"], await VersionsAt("eq" + Between(1)));
        Assert.Equal(["3", "2"], await VersionsAt("ge" + Between(1)));
        Assert.Equal(["2", "1"], await VersionsAt("lt" + Between(1)));
        Assert.Equal(["3", "2", "1"], await VersionsAt(written[0].Year.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Empty(await VersionsAt("2020"));
        // Far-future bounds, beyond the last version key, do not wrap around into the past: every version was current
        // before 9999, and the current one still will be then.
        Assert.Equal(["3", "2", "1"], await VersionsAt("le9999"));
        Assert.Equal(["3"], await VersionsAt("ge9999"));
    }

    [Fact]
    public async Task Instance_history_states_its_total_on_every_page_and_type_history_does_not()
    {
        var id = await CreateUpdateDeleteAsync();

        var page = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient/{id}/_history?_count=1"));
        var type = await Fhir.Read<Bundle>(await _client.GetAsync("/fhir/Patient/_history?_count=1"));

        Assert.Single(page.Entry);
        Assert.Equal(3, page.Total);
        Assert.Null(type.Total);
    }

    [Fact]
    public async Task A_count_beyond_any_integer_asks_for_the_largest_page_as_a_large_one_does()
    {
        var response = await _client.GetAsync("/fhir/_history?_count=99999999999");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.InRange((await Fhir.Read<Bundle>(response)).Entry.Count, 1, 1000);
    }

    [Fact]
    public async Task History_of_an_unknown_resource_is_404()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/fhir/Patient/nobody/_history")).StatusCode);
    }

    [Theory]
    [InlineData("_since=yesterday")]
    [InlineData("_since=2024-01-01T00:00:00%2B25:00")]
    [InlineData("_count=1e3")]
    [InlineData("_count=-1")]
    [InlineData("_cursor=abc")]
    [InlineData("_at=yesterday")]
    [InlineData("_at=ap2020")]
    [InlineData("_elements=id")]
    public async Task Bad_history_parameters_are_400(string query)
    {
        var response = await _client.GetAsync($"/fhir/_history?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    private async Task<string> CreateUpdateDeleteAsync()
    {
        var patient = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient())));
        patient.Gender = AdministrativeGender.Female;
        await _client.PutAsync($"/fhir/Patient/{patient.Id}", Fhir.Content(patient));
        await _client.DeleteAsync($"/fhir/Patient/{patient.Id}");
        return patient.Id!;
    }
}

public sealed class HistoryTestsOnSqlite(SqliteHub hub) : HistoryTests(hub), IClassFixture<SqliteHub>;

public sealed class HistoryTestsOnPostgres(PostgresHub hub) : HistoryTests(hub), IClassFixture<PostgresHub>;
