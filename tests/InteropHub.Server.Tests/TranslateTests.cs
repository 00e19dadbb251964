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
        Assert.Equal("urn:interophub:conceptmap:qxvac-to-cvx|1.0.0", ((FhirUri)match.Part.Single(p => p.Name == "source").Value!).Value);
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

    [Fact]
    public async Task A_group_without_an_element_for_the_code_answers_what_its_unmapped_says()
    {
        await PutMapAsync("term25-fixed", "1", "urn:term25:a", "urn:term25:b", [("A1", "B1", "wider"), ("A7", null, "unmatched")],
            new ConceptMap.UnmappedComponent { Mode = ConceptMap.ConceptMapGroupUnmappedMode.Fixed, Code = "B9", Display = "other" });
        await PutMapAsync("term25-provided", "1", "urn:term25:p", "urn:term25:q", [("P1", "Q1", "equivalent")],
            new ConceptMap.UnmappedComponent { Mode = ConceptMap.ConceptMapGroupUnmappedMode.Provided });
        // Two maps whose unmapped each name the other: a code neither has ends the chain instead of going round it.
        await PutMapAsync("term25-o", "1", "urn:term25:o", "urn:term25:b", [("O1", "B1", "equivalent")],
            new ConceptMap.UnmappedComponent { Mode = ConceptMap.ConceptMapGroupUnmappedMode.OtherMap, Url = "http://example.org/cm/term25-o2" });
        await PutMapAsync("term25-o2", "1", "urn:term25:o", "urn:term25:c", [("O2", "C2", "narrower")],
            new ConceptMap.UnmappedComponent { Mode = ConceptMap.ConceptMapGroupUnmappedMode.OtherMap, Url = "http://example.org/cm/term25-o|1" });

        var fixedCode = Single(await GetAsync("/fhir/ConceptMap/$translate?url=http://example.org/cm/term25-fixed&system=urn:term25:a&code=ZZZ"));
        var listedUnmatched = await GetAsync("/fhir/ConceptMap/$translate?url=http://example.org/cm/term25-fixed&system=urn:term25:a&code=A7");
        var provided = Single(await GetAsync("/fhir/ConceptMap/$translate?system=urn:term25:p&code=P9"));
        var otherMap = Single(await GetAsync("/fhir/ConceptMap/$translate?url=http://example.org/cm/term25-o&system=urn:term25:o&code=O2"));
        var nowhere = await GetAsync("/fhir/ConceptMap/$translate?url=http://example.org/cm/term25-o&system=urn:term25:o&code=O9");

        Assert.Equal(("inexact", "urn:term25:b", "B9", "other", "http://example.org/cm/term25-fixed|1"), fixedCode);
        Assert.False(listedUnmatched.GetSingleValue<FhirBoolean>("result")!.Value);
        Assert.Equal("unmatched", ((Code)Assert.Single(listedUnmatched.Parameter, p => p.Name == "match").Part[0].Value!).Value);
        Assert.Equal(("equal", "urn:term25:q", "P9", (string?)null, "http://example.org/cm/term25-provided|1"), provided);
        Assert.Equal(("narrower", "urn:term25:c", "C2", (string?)null, "http://example.org/cm/term25-o2|1"), otherMap);
        Assert.False(nowhere.GetSingleValue<FhirBoolean>("result")!.Value);
        Assert.DoesNotContain(nowhere.Parameter, p => p.Name == "match");
    }

    [Fact]
    public async Task A_url_without_version_translates_with_the_latest_version_and_a_version_picks_one()
    {
        // 1.10 is stored first: the latest is the higher version, not the one written last.
        await PutMapAsync("term25-v110", "1.10", "urn:term25:v", "urn:term25:w", [("V1", "W1-new", "equivalent")]);
        await PutMapAsync("term25-v19", "1.9", "urn:term25:v", "urn:term25:w", [("V1", "W1-old", "equivalent")], url: "http://example.org/cm/term25-v110");
        const string Url = "http://example.org/cm/term25-v110";

        var latest = Single(await GetAsync($"/fhir/ConceptMap/$translate?url={Url}&system=urn:term25:v&code=V1"));
        var byCanonical = Single(await GetAsync($"/fhir/ConceptMap/$translate?url={Url}%7C1.9&system=urn:term25:v&code=V1"));
        var byVersion = Single(await GetAsync($"/fhir/ConceptMap/$translate?url={Url}&conceptMapVersion=1.9&system=urn:term25:v&code=V1"));
        var everyMap = await GetAsync("/fhir/ConceptMap/$translate?system=urn:term25:v&code=V1");

        Assert.Equal(("W1-new", $"{Url}|1.10"), (latest.Code, latest.Source));
        Assert.Equal(("W1-old", $"{Url}|1.9"), (byCanonical.Code, byCanonical.Source));
        Assert.Equal(("W1-old", $"{Url}|1.9"), (byVersion.Code, byVersion.Source));
        Assert.Equal([$"{Url}|1.10", $"{Url}|1.9"], everyMap.Parameter.Where(p => p.Name == "match")
            .Select(m => ((FhirUri)m.Part.Single(p => p.Name == "source").Value!).Value).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Reverse_gives_the_equivalence_as_seen_from_the_target()
    {
        await PutMapAsync("term25-rev", "1", "urn:term25:r", "urn:term25:s",
            [("R1", "S1", "wider"), ("R2", "S2", "narrower"), ("R3", "S3", "subsumes"), ("R4", "S4", "specializes"), ("R5", "S5", "equal"), ("R6", "S6", "inexact")]);

        var equivalences = new List<string?>();
        foreach (var code in new[] { "S1", "S2", "S3", "S4", "S5", "S6" })
        {
            equivalences.Add(Single(await GetAsync($"/fhir/ConceptMap/$translate?url=http://example.org/cm/term25-rev&system=urn:term25:s&code={code}&reverse=true")).Equivalence);
        }

        Assert.Equal(["narrower", "wider", "specializes", "subsumes", "equal", "inexact"], equivalences);
    }

    [Theory]
    [InlineData("""{"name":"reverse","valueString":"true"}""", "reverse")]
    [InlineData("""{"name":"code","valueString":"0101"},{"name":"system","valueUri":"urn:interophub:cs:qxvac"}""", "code")]
    [InlineData("""{"name":"code","valueCode":"0101"},{"name":"system","valueString":"urn:interophub:cs:qxvac"}""", "system")]
    [InlineData("""{"name":"coding","valueString":"urn:interophub:cs:qxvac|0101"}""", "coding")]
    [InlineData("""{"name":"code","valueCode":"0101"},{"name":"system","valueUri":"urn:interophub:cs:qxvac"},{"name":"conceptMapVersion","valueInteger":1}""", "conceptMapVersion")]
    [InlineData("""{"name":"code","valueCode":"0101"},{"name":"system","valueUri":"urn:interophub:cs:qxvac"},{"name":"dependency","part":[{"name":"element","valueUri":"urn:x"}]}""", "dependency")]
    public async Task A_posted_parameter_of_the_wrong_type_is_400_naming_it(string parameters, string name)
    {
        var response = await _client.PostAsync("/fhir/ConceptMap/$translate", Fhir.Raw($$"""{"resourceType":"Parameters","parameter":[{{parameters}}]}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var issue = Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue);
        Assert.Equal([name], issue.Expression);
        Assert.Contains($"'{name}'", issue.Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_post_with_parameters_in_the_query_too_and_an_instance_with_another_maps_url_are_400()
    {
        await PutMapAsync("term25-inst", "1", "urn:term25:i", "urn:term25:j", [("I1", "J1", "equivalent")]);
        var body = new Parameters();
        body.Add("code", new Code("I1"));
        body.Add("system", new FhirUri("urn:term25:i"));

        var both = await _client.PostAsync("/fhir/ConceptMap/$translate?code=I2", Fhir.Content(body));
        var otherUrl = await _client.GetAsync("/fhir/ConceptMap/term25-inst/$translate?url=urn:interophub:conceptmap:qxvac-to-cvx&system=urn:term25:i&code=I1");
        var otherVersion = await _client.GetAsync("/fhir/ConceptMap/term25-inst/$translate?conceptMapVersion=2&system=urn:term25:i&code=I1");
        var sameUrl = await GetAsync("/fhir/ConceptMap/term25-inst/$translate?url=http://example.org/cm/term25-inst&system=urn:term25:i&code=I1");

        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        Assert.Equal(["code"], Assert.Single((await Fhir.Read<OperationOutcome>(both)).Issue).Expression);
        Assert.Equal(HttpStatusCode.BadRequest, otherUrl.StatusCode);
        Assert.Equal(["url"], Assert.Single((await Fhir.Read<OperationOutcome>(otherUrl)).Issue).Expression);
        Assert.Equal(HttpStatusCode.BadRequest, otherVersion.StatusCode);
        Assert.Equal("J1", Single(sameUrl).Code);
    }

    private async Task PutMapAsync(string id, string version, string source, string target,
        (string Code, string? Target, string Equivalence)[] elements, ConceptMap.UnmappedComponent? unmapped = null, string? url = null)
    {
        var map = new ConceptMap
        {
            Id = id, Url = url ?? $"http://example.org/cm/{id}", Version = version, Status = PublicationStatus.Active,
            Group =
            [
                new ConceptMap.GroupComponent
                {
                    Source = source, Target = target, Unmapped = unmapped,
                    Element = [.. elements.Select(e => new ConceptMap.SourceElementComponent
                    {
                        Code = e.Code,
                        Target = [new ConceptMap.TargetElementComponent { Code = e.Target, Equivalence = Hl7.Fhir.Utility.EnumUtility.ParseLiteral<ConceptMapEquivalence>(e.Equivalence) }],
                    })],
                },
            ],
        };
        var response = await _client.PutAsync($"/fhir/ConceptMap/{id}", Fhir.Content(map));
        Assert.True(response.IsSuccessStatusCode, $"{id}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>The answer's one match: equivalence, concept and source map.</summary>
    private static (string? Equivalence, string? System, string? Code, string? Display, string? Source) Single(Parameters answer)
    {
        var match = Assert.Single(answer.Parameter, p => p.Name == "match");
        var concept = match.Part.SingleOrDefault(p => p.Name == "concept")?.Value as Coding;
        return (((Code)match.Part.Single(p => p.Name == "equivalence").Value!).Value, concept?.System, concept?.Code, concept?.Display,
            (match.Part.SingleOrDefault(p => p.Name == "source")?.Value as FhirUri)?.Value);
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
