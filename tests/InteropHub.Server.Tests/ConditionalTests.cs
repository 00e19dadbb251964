using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

public abstract class ConditionalTests(HubFactory hub)
{
    private const string IdSystem = "urn:oid:2.16.156.10011.1.3";
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task Conditional_create_without_a_match_creates()
    {
        var number = NewNumber();

        var response = await CreateIfNoneExistAsync(number);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task Conditional_create_with_one_match_returns_it_with_200_and_writes_nothing()
    {
        var number = NewNumber();
        var first = await Fhir.Read<Patient>(await CreateIfNoneExistAsync(number));

        var second = await CreateIfNoneExistAsync(number);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var existing = await Fhir.Read<Patient>(second);
        Assert.Equal(first.Id, existing.Id);
        Assert.Equal("1", existing.Meta!.VersionId);
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task Conditional_create_with_several_matches_is_412()
    {
        var number = NewNumber();
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));

        var response = await CreateIfNoneExistAsync(number);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
    }

    [Fact]
    public async Task Parallel_identical_conditional_creates_produce_exactly_one_resource()
    {
        var number = NewNumber();

        var responses = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 12).Select(_ => CreateIfNoneExistAsync(number)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.Equal(11, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(1, await CountAsync(number));
    }

    [Fact]
    public async Task Conditional_create_on_a_parameter_the_server_does_not_know_is_400_naming_it()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        request.Headers.Add("If-None-Exist", "shoe-size=42");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = (await Fhir.Read<OperationOutcome>(response)).Issue[0];
        Assert.Contains("shoe-size", issue.Diagnostics);
    }

    [Fact]
    public async Task Conditional_update_creates_when_nothing_matches_and_updates_the_single_match()
    {
        var number = NewNumber();
        var url = $"/fhir/Patient?identifier={IdSystem}|{number}";

        var created = await _client.PutAsync(url, Fhir.Content(Fhir.Patient("王", "秀英", number)));
        var updated = await _client.PutAsync(url, Fhir.Content(Fhir.Patient("王", "秀瑛", number)));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        var patient = await Fhir.Read<Patient>(updated);
        Assert.Equal((await Fhir.Read<Patient>(created)).Id, patient.Id);
        Assert.Equal("2", patient.Meta!.VersionId);
        Assert.Equal("秀瑛", patient.Name[0].Given.Single());
    }

    [Fact]
    public async Task Conditional_update_with_several_matches_is_412()
    {
        var number = NewNumber();
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));

        var response = await _client.PutAsync($"/fhir/Patient?identifier={number}", Fhir.Content(Fhir.Patient(identifier: number)));

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
    }

    [Fact]
    public async Task Conditional_update_whose_body_id_differs_from_the_match_is_400()
    {
        var number = NewNumber();
        await CreateIfNoneExistAsync(number);
        var patient = Fhir.Patient(identifier: number);
        patient.Id = "someone-else";

        var response = await _client.PutAsync($"/fhir/Patient?identifier={IdSystem}|{number}", Fhir.Content(patient));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Conditional_delete_removes_the_single_match()
    {
        var number = NewNumber();
        var id = (await Fhir.Read<Patient>(await CreateIfNoneExistAsync(number))).Id;

        var response = await _client.DeleteAsync($"/fhir/Patient?identifier={IdSystem}|{number}");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await _client.GetAsync($"/fhir/Patient/{id}")).StatusCode);
        Assert.Equal(0, await CountAsync(number));
        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"/fhir/Patient?identifier={IdSystem}|{number}")).StatusCode);
    }

    [Fact]
    public async Task Conditional_delete_with_several_matches_is_412_and_deletes_nothing()
    {
        var number = NewNumber();
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));
        await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number)));

        var response = await _client.DeleteAsync($"/fhir/Patient?identifier={number}");

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Equal(2, await CountAsync(number));
    }

    [Fact]
    public async Task Conditional_criteria_by_id_match_that_resource()
    {
        var id = (await Fhir.Read<Patient>(await CreateIfNoneExistAsync(NewNumber()))).Id;
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient()) };
        request.Headers.Add("If-None-Exist", $"_id={id}");

        var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(id, (await Fhir.Read<Patient>(response)).Id);
    }

    [Fact]
    public async Task Search_by_identifier_pages_with_next_links_until_every_match_is_seen()
    {
        var number = NewNumber();
        var ids = new HashSet<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient(identifier: number))))).Id!);
        }

        var seen = new List<string>();
        var url = $"/fhir/Patient?identifier={IdSystem}|{number}&_count=2";
        while (url is not null)
        {
            var bundle = await Fhir.Read<Bundle>(await _client.GetAsync(url));
            Assert.Equal(Bundle.BundleType.Searchset, bundle.Type);
            seen.AddRange(bundle.Entry.Select(e => e.Resource!.Id!));
            url = bundle.NextLink?.PathAndQuery;
        }

        Assert.Equal(ids.Order(), seen.Order());
    }

    private async Task<HttpResponseMessage> CreateIfNoneExistAsync(string number)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = Fhir.Content(Fhir.Patient(identifier: number)) };
        request.Headers.Add("If-None-Exist", $"identifier={IdSystem}|{number}");
        return await _client.SendAsync(request);
    }

    private async Task<int> CountAsync(string number)
    {
        var bundle = await Fhir.Read<Bundle>(await _client.GetAsync($"/fhir/Patient?identifier={IdSystem}|{number}&_count=100"));
        return bundle.Entry.Count;
    }

    private static string NewNumber() => "369921" + Random.Shared.NextInt64(100000000000, 999999999999).ToString(System.Globalization.CultureInfo.InvariantCulture);
}

public sealed class ConditionalTestsOnSqlite(SqliteHub hub) : ConditionalTests(hub), IClassFixture<SqliteHub>;

public sealed class ConditionalTestsOnPostgres(PostgresHub hub) : ConditionalTests(hub), IClassFixture<PostgresHub>;
