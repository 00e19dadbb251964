using System.Net;
using System.Text.Json;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary><c>Patient/$match</c> and the review list of records that may be one person (<c>/adapters/probable-matches</c>).</summary>
public abstract class PatientMatchTests(HubFactory hub) : AdapterTestBase(hub)
{
    private const string GradeUrl = "http://hl7.org/fhir/StructureDefinition/match-grade";
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Name => "测试" + _suffix;

    private Patient Person(AdministrativeGender? gender = AdministrativeGender.Female, string? identifier = null) => new()
    {
        Name = [new HumanName { Text = Name }],
        Gender = gender,
        BirthDate = "1977-07-07",
        Identifier = identifier is null ? [] : [new Identifier($"urn:interophub:sid:mrn:T{_suffix}", identifier)],
    };

    private async Task<string> CreateAsync(Patient patient) =>
        (await Fhir.Read<Patient>(await Client.PostAsync("/fhir/Patient", Fhir.Content(patient)))).Id!;

    private async Task<HttpResponseMessage> MatchAsync(Resource body, string query = "") =>
        await Client.PostAsync($"/fhir/Patient/$match{query}", Fhir.Content(body));

    private static Parameters Ask(Patient patient, bool? onlyCertain = null, int? count = null)
    {
        var parameters = new Parameters();
        parameters.Add("resource", patient);
        if (onlyCertain is { } flag)
        {
            parameters.Add("onlyCertainMatches", new FhirBoolean(flag));
        }

        if (count is { } n)
        {
            parameters.Add("count", new Integer(n));
        }

        return parameters;
    }

    private static string Grade(Bundle.EntryComponent entry) => Assert.IsType<Code>(entry.Search!.GetExtension(GradeUrl)!.Value).Value!;

    /// <summary>The listed pairs that involve one of <paramref name="ids"/>, each as its two ids in order.</summary>
    private async Task<(List<(string Grade, string First, string Second)> Pairs, JsonElement List)> PairsOfAsync(params string[] ids)
    {
        var list = await GetJsonAsync("/adapters/probable-matches");
        var pairs = list.GetProperty("pairs").EnumerateArray()
            .Select(p => (p.GetProperty("grade").GetString()!, p.GetProperty("patients").EnumerateArray().Select(x => x.GetProperty("reference").GetString()!["Patient/".Length..]).Order(StringComparer.Ordinal).ToList()))
            .Where(p => p.Item2.Any(ids.Contains))
            .Select(p => (p.Item1, p.Item2[0], p.Item2[1]))
            .ToList();
        return (pairs, list);
    }

    [Fact]
    public async Task Matches_are_graded_certain_by_identifier_probable_by_name_sex_and_birth_date_and_possible_with_sex_unknown_most_likely_first()
    {
        var certain = await CreateAsync(Person(identifier: "1"));
        var probable = await CreateAsync(Person());
        var possible = await CreateAsync(Person(gender: null));
        await CreateAsync(Person(gender: AdministrativeGender.Male)); // another sex: no match

        var response = await MatchAsync(Ask(Person(identifier: "1")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await Fhir.Read<Bundle>(response);
        Assert.Equal(Bundle.BundleType.Searchset, bundle.Type);
        Assert.Equal([certain, probable, possible], bundle.Entry.Select(e => e.Resource!.Id));
        Assert.Equal(["certain", "probable", "possible"], bundle.Entry.Select(Grade));
        Assert.Equal([1m, 0.8m, 0.5m], bundle.Entry.Select(e => e.Search!.Score!.Value));
        Assert.All(bundle.Entry, e => Assert.Equal(Bundle.SearchEntryMode.Match, e.Search!.Mode));
        Assert.EndsWith($"/fhir/Patient/{certain}", bundle.Entry[0].FullUrl, StringComparison.Ordinal);
        Assert.Equal(3, bundle.Total);
    }

    [Fact]
    public async Task The_Patient_itself_may_be_the_body_with_count_in_the_query()
    {
        await CreateAsync(Person());
        await CreateAsync(Person());

        var bundle = await Fhir.Read<Bundle>(await MatchAsync(Person(), "?count=1"));

        Assert.Equal("probable", Grade(Assert.Single(bundle.Entry)));
    }

    [Fact]
    public async Task OnlyCertainMatches_returns_the_one_certain_record_and_none_but_an_outcome_when_two_records_are_certain()
    {
        var single = await CreateAsync(Person(identifier: "one"));
        await CreateAsync(Person(identifier: "twice"));
        await CreateAsync(Person(identifier: "twice"));

        var one = await Fhir.Read<Bundle>(await MatchAsync(Ask(Person(identifier: "one"), onlyCertain: true)));
        var two = await Fhir.Read<Bundle>(await MatchAsync(Ask(Person(identifier: "twice"), onlyCertain: true)));
        var twoWithout = await Fhir.Read<Bundle>(await MatchAsync(Ask(Person(identifier: "twice"))));

        Assert.Equal(single, Assert.Single(one.Entry).Resource!.Id);
        var outcome = Assert.IsType<OperationOutcome>(Assert.Single(two.Entry).Resource);
        Assert.Equal(OperationOutcome.IssueType.MultipleMatches, outcome.Issue.Single().Code);
        Assert.Equal(0, two.Total);
        Assert.Equal(2, twoWithout.Entry.Count(e => Grade(e) == "certain"));
    }

    [Theory]
    [InlineData("unknown")]
    [InlineData("observation")]
    [InlineData("count")]
    [InlineData("empty")]
    [InlineData("query")]
    public async Task A_request_the_operation_cannot_run_is_a_400_naming_what_is_wrong(string fault)
    {
        var parameters = Ask(Person(), count: fault == "count" ? 0 : null);
        if (fault == "unknown")
        {
            parameters.Add("onlySingleMatch", new FhirBoolean(true));
        }

        Resource body = fault switch
        {
            "observation" => new Parameters { Parameter = [new Parameters.ParameterComponent { Name = "resource", Resource = new Observation { Status = ObservationStatus.Final, Code = new CodeableConcept(null, null, "x") } }] },
            "empty" => new Patient(),
            _ => parameters,
        };

        var response = await MatchAsync(body, fault == "query" ? "?count=2" : "");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var outcome = await Fhir.Read<OperationOutcome>(response);
        Assert.Equal(fault switch
        {
            "unknown" => "onlySingleMatch",
            "count" or "query" => "count",
            _ => "resource",
        }, outcome.Issue.Single().Expression.Single());
    }

    [Fact]
    public async Task A_GET_of_match_is_a_400_since_the_Patient_cannot_be_given_in_a_query()
    {
        var response = await Client.GetAsync("/fhir/Patient/$match");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task The_HIS_samples_second_MRN_is_a_probable_match_until_the_A40_merges_it_and_then_match_finds_the_survivor_by_the_old_MRN()
    {
        await SeedOrganizationsAsync();
        foreach (var file in new[] { "01_ADT_A04_county_zhaojianhua_dupmrn.hl7", "02_ADT_A31_county_zhaojianhua_repeatedPV1.hl7" })
        {
            Assert.Equal("AA", Msa((await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", file)))).Ack));
        }

        var zhao = await SearchAsync<Patient>("Patient?name=赵建华");
        Assert.Equal(2, zhao.Count);
        var ids = zhao.Select(p => p.Id!).Order(StringComparer.Ordinal).ToList();
        var (before, _) = await PairsOfAsync([.. ids]);
        Assert.Equal(("probable", ids[0], ids[1]), Assert.Single(before));

        Assert.Equal("AA", Msa((await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "03_ADT_A40_county_zhaojianhua_merge.hl7")))).Ack));

        var (after, _) = await PairsOfAsync([.. ids]);
        Assert.Empty(after);
        var survivor = (await SearchAsync<Patient>("Patient?identifier=urn:interophub:sid:mrn:QX2100012|0000390412")).Single().Id;
        var byOldMrn = await Fhir.Read<Bundle>(await MatchAsync(new Patient { Identifier = [new Identifier("urn:interophub:sid:mrn:QX2100012", "0000517733")] }));
        var entry = Assert.Single(byOldMrn.Entry);
        Assert.Equal(survivor, entry.Resource!.Id);
        Assert.Equal("certain", Grade(entry));
    }

    [Fact]
    public async Task A_pair_a_reviewer_dismissed_is_no_longer_listed_and_records_with_different_ID_numbers_never_are()
    {
        var first = await CreateAsync(Person());
        var second = await CreateAsync(Person());
        var withId = Person();
        withId.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", "369902195804121372"));
        var otherId = Person();
        otherId.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", "369902196009251666"));
        var third = await CreateAsync(withId);
        var fourth = await CreateAsync(otherId);

        var (listed, _) = await PairsOfAsync(first, second, third, fourth);
        // Every pair but third–fourth, whose ID numbers differ.
        Assert.Equal(5, listed.Count);
        Assert.DoesNotContain(listed, p => new[] { p.First, p.Second }.Order(StringComparer.Ordinal).SequenceEqual(new[] { third, fourth }.Order(StringComparer.Ordinal)));

        var dismiss = await Client.PostAsync($"/adapters/probable-matches/dismiss?patient=Patient/{second}&patient=Patient/{first}", null);
        Assert.Equal(HttpStatusCode.OK, dismiss.StatusCode);
        var (afterDismissal, list) = await PairsOfAsync(first, second, third, fourth);
        Assert.Equal(4, afterDismissal.Count);
        Assert.DoesNotContain(afterDismissal, p => new[] { p.First, p.Second }.Order(StringComparer.Ordinal).SequenceEqual(new[] { first, second }.Order(StringComparer.Ordinal)));
        Assert.True(list.GetProperty("dismissed").GetInt32() >= 1);

        var undo = await Client.PostAsync($"/adapters/probable-matches/undismiss?patient=Patient/{first}&patient=Patient/{second}", null);
        Assert.Equal(HttpStatusCode.OK, undo.StatusCode);
        Assert.Equal(5, (await PairsOfAsync(first, second, third, fourth)).Pairs.Count);

        Assert.Equal(HttpStatusCode.NotFound, (await Client.PostAsync($"/adapters/probable-matches/dismiss?patient=Patient/{first}&patient=Patient/nobody{_suffix}", null)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.PostAsync($"/adapters/probable-matches/dismiss?patient=Patient/{first}", null)).StatusCode);
    }
}

public sealed class PatientMatchTestsOnSqlite(SqliteHub hub) : PatientMatchTests(hub), IClassFixture<SqliteHub>;

public sealed class PatientMatchTestsOnPostgres(PostgresHub hub) : PatientMatchTests(hub), IClassFixture<PostgresHub>;
