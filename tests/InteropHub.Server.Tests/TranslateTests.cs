using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary><c>ConceptMap/$translate</c> (conceptmap-operation-translate.html) over the maps the hub loads from <c>mappings/</c>.</summary>
public abstract class TranslateTests(HubFactory hub)
{
    private const string Vaccines = "urn:interophub:cs:qxvac";
    private const string Cvx = "http://hl7.org/fhir/sid/cvx";
    private readonly HttpClient _client = hub.CreateClient();

    [Fact]
    public async Task A_county_vaccine_code_translates_to_its_CVX_code_with_the_map_that_says_so()
    {
        var answer = await GetAsync($"/fhir/ConceptMap/$translate?system={Vaccines}&code=0101");

        Assert.True(answer.GetSingleValue<FhirBoolean>("result")!.Value);
        var match = Assert.Single(answer.Parameter, p => p.Name == "match");
        Assert.Equal("equivalent", ((Code)match.Part.Single(p => p.Name == "equivalence").Value!).Value);
        var concept = (Coding)match.Part.Single(p => p.Name == "concept").Value!;
        Assert.Equal((Cvx, "08"), (concept.System, concept.Code));
        Assert.Equal("urn:interophub:conceptmap:qxvac-to-cvx", ((FhirUri)match.Part.Single(p => p.Name == "source").Value!).Value);
    }

    [Theory]
    [InlineData("urn:oid:2.16.156.10011.2.3.3.3", "04", "urn:interophub:cs:gb3304-letter-code", "ZA", "equivalent")]
    [InlineData("urn:interophub:cs:qxhis-department", "0307", "urn:interophub:cs:diagnosis-treatment-subject", "03.07", "equivalent")]
    [InlineData("urn:interophub:cs:qxhis-department", "0304C", "urn:interophub:cs:diagnosis-treatment-subject", "03.04", "wider")]
    public async Task Ethnicity_and_department_codes_translate_through_their_maps(string system, string code, string target, string expected, string equivalence)
    {
        var answer = await GetAsync($"/fhir/ConceptMap/$translate?system={system}&code={code}");

        Assert.True(answer.GetSingleValue<FhirBoolean>("result")!.Value);
        var match = Assert.Single(answer.Parameter, p => p.Name == "match");
        Assert.Equal(equivalence, ((Code)match.Part.Single(p => p.Name == "equivalence").Value!).Value);
        var concept = (Coding)match.Part.Single(p => p.Name == "concept").Value!;
        Assert.Equal((target, expected), (concept.System, concept.Code));
    }

    [Fact]
    public async Task A_code_the_map_lists_as_unmatched_is_a_false_result_with_an_unmatched_match_and_a_message()
    {
        var answer = await GetAsync($"/fhir/ConceptMap/qxvac-to-cvx/$translate?coding={Vaccines}|0701");

        Assert.False(answer.GetSingleValue<FhirBoolean>("result")!.Value);
        Assert.Contains("no equivalent", answer.GetSingleValue<FhirString>("message")!.Value, StringComparison.Ordinal);
        var match = Assert.Single(answer.Parameter, p => p.Name == "match");
        Assert.Equal("unmatched", ((Code)match.Part.Single(p => p.Name == "equivalence").Value!).Value);
        Assert.DoesNotContain(match.Part, p => p.Name == "concept");
    }

    [Fact]
    public async Task A_code_no_map_knows_is_a_false_result_saying_so()
    {
        var answer = await GetAsync($"/fhir/ConceptMap/$translate?system={Vaccines}&code=9999");

        Assert.False(answer.GetSingleValue<FhirBoolean>("result")!.Value);
        Assert.Contains("No ConceptMap", answer.GetSingleValue<FhirString>("message")!.Value, StringComparison.Ordinal);
        Assert.DoesNotContain(answer.Parameter, p => p.Name == "match");
    }

    [Fact]
    public async Task A_posted_codeable_concept_translates_each_coding_and_reverse_goes_from_target_to_source()
    {
        var request = new Parameters();
        request.Add("codeableConcept", new CodeableConcept { Coding = [new Coding("urn:oid:2.16.156.10011.2.3.3.4", "1"), new Coding(Vaccines, "0201")] });
        request.Add("url", new FhirUri("urn:interophub:conceptmap:qxvac-to-cvx"));
        var forward = await Fhir.Read<Parameters>(await _client.PostAsync("/fhir/ConceptMap/$translate", Fhir.Content(request)));
        var reverse = await GetAsync($"/fhir/ConceptMap/$translate?system={Cvx}&code=19&reverse=true&targetsystem={Vaccines}");

        Assert.Equal("19", ((Coding)Assert.Single(forward.Parameter, p => p.Name == "match").Part.Single(p => p.Name == "concept").Value!).Code);
        var back = (Coding)Assert.Single(reverse.Parameter, p => p.Name == "match").Part.Single(p => p.Name == "concept").Value!;
        Assert.Equal((Vaccines, "0201"), (back.System, back.Code));
    }

    [Theory]
    [InlineData("/fhir/ConceptMap/$translate?code=0101", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/ConceptMap/$translate", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/ConceptMap/$translate?system=urn:interophub:cs:qxvac&code=0101&colour=red", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/ConceptMap/$translate?system=urn:interophub:cs:qxvac&code=0101&reverse=maybe", HttpStatusCode.BadRequest)]
    [InlineData("/fhir/ConceptMap/$translate?system=urn:interophub:cs:qxvac&code=0101&url=urn:nowhere", HttpStatusCode.NotFound)]
    [InlineData("/fhir/ConceptMap/no-such-map/$translate?system=urn:interophub:cs:qxvac&code=0101", HttpStatusCode.NotFound)]
    public async Task Translate_refuses_what_it_cannot_answer_with_an_outcome(string url, HttpStatusCode status)
    {
        var response = await _client.GetAsync(url);

        Assert.Equal(status, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    private async Task<Parameters> GetAsync(string url)
    {
        var response = await _client.GetAsync(url);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return await Fhir.Read<Parameters>(response);
    }
}

public sealed class TranslateTestsOnSqlite(SqliteHub hub) : TranslateTests(hub), IClassFixture<SqliteHub>;

public sealed class TranslateTestsOnPostgres(PostgresHub hub) : TranslateTests(hub), IClassFixture<PostgresHub>;
