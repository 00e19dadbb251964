using System.Net;
using Hl7.Fhir.Model;

namespace InteropHub.Server.Tests;

/// <summary><c>$recognized-results</c> over the catalogue shipped in mappings/ (loaded at start-up).</summary>
public abstract class RecognizedResultsTests(HubFactory hub)
{
    private const string Ext = "https://interophub.dev/fhir/StructureDefinition/";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_result_from_a_qualified_performer_inside_its_window_is_returned_with_its_expiry()
    {
        var (patient, county, township, _) = await ScenarioAsync();

        var bundle = await AskAsync(patient, "http://loinc.org|4548-4", "2025-03-10T10:00:00%2B08:00", township);

        var entry = Assert.Single(bundle.Entry);
        Assert.Equal(county, ((Observation)entry.Resource!).Performer.Single().Reference);
        var expiry = Assert.IsType<FhirDateTime>(entry.Search!.GetExtension($"{Ext}recognized-until")!.Value);
        Assert.Equal(new DateTimeOffset(2025, 5, 30, 9, 0, 0, TimeSpan.FromHours(8)), expiry.ToDateTimeOffset(TimeSpan.FromHours(8)));
    }

    [Fact]
    public async Task The_window_runs_from_when_the_result_was_issued_not_from_when_the_specimen_was_taken()
    {
        var (_, county, township, _) = await ScenarioAsync();
        var patient = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("马", "强"))));
        var observation = new Observation
        {
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "4548-4", "糖化血红蛋白"),
            Subject = new ResourceReference($"Patient/{patient.Id}"),
            Effective = new FhirDateTime(new DateTimeOffset(2025, 3, 1, 9, 0, 0, TimeSpan.FromHours(8))),
            Issued = new DateTimeOffset(2025, 3, 2, 15, 0, 0, TimeSpan.FromHours(8)),
            Performer = [new ResourceReference(county)],
            Value = new Quantity(6.1m, "%"),
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Observation", Fhir.Content(observation))).StatusCode);

        var beforeIssue = await AskAsync(patient.Id!, "http://loinc.org|4548-4", "2025-03-02T10:00:00%2B08:00", township);
        var lastDay = await AskAsync(patient.Id!, "http://loinc.org|4548-4", "2025-05-31T10:00:00%2B08:00", township);
        var after = await AskAsync(patient.Id!, "http://loinc.org|4548-4", "2025-05-31T15:30:00%2B08:00", township);

        Assert.Empty(beforeIssue.Entry);
        var expiry = Assert.IsType<FhirDateTime>(Assert.Single(lastDay.Entry).Search!.GetExtension($"{Ext}recognized-until")!.Value);
        Assert.Equal(new DateTimeOffset(2025, 5, 31, 15, 0, 0, TimeSpan.FromHours(8)), expiry.ToDateTimeOffset(TimeSpan.FromHours(8)));
        Assert.Empty(after.Entry);
    }

    [Fact]
    public async Task The_local_lab_code_finds_the_same_item()
    {
        var (patient, _, township, _) = await ScenarioAsync();

        var bundle = await AskAsync(patient, "urn:interophub:cs:qxlis|HBA1C", "2025-03-10T10:00:00%2B08:00", township);

        Assert.Single(bundle.Entry);
    }

    [Fact]
    public async Task The_code_is_a_token_without_a_system_it_matches_any_and_with_one_only_that_one()
    {
        var (patient, _, township, _) = await ScenarioAsync();

        var loincAlone = await AskAsync(patient, "4548-4", "2025-03-10T10:00:00%2B08:00", township);
        var localAlone = await AskAsync(patient, "HBA1C", "2025-03-10T10:00:00%2B08:00", township);
        var wrongSystem = await AskAsync(patient, "http://snomed.info/sct|HBA1C", "2025-03-10T10:00:00%2B08:00", township);

        Assert.Single(loincAlone.Entry);
        Assert.Single(localAlone.Entry);
        Assert.Empty(wrongSystem.Entry);
    }

    [Fact]
    public async Task Nothing_is_recognised_after_the_window_or_outside_the_scope()
    {
        var (patient, _, township, elsewhere) = await ScenarioAsync();

        var late = await AskAsync(patient, "http://loinc.org|4548-4", "2025-06-01T10:00:00%2B08:00", township);
        var otherCounty = await AskAsync(patient, "http://loinc.org|4548-4", "2025-03-10T10:00:00%2B08:00", elsewhere);

        Assert.Empty(late.Entry);
        Assert.Empty(otherCounty.Entry);
    }

    [Fact]
    public async Task An_unknown_patient_is_404_not_an_empty_list()
    {
        var (_, _, township, _) = await ScenarioAsync();

        var response = await _client.GetAsync($"/fhir/Patient/nobody-{_suffix}/$recognized-results?code=http://loinc.org%7C4548-4&requester={township}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("?code=http://loinc.org%7C4548-4")]
    [InlineData("?requester=Organization/x")]
    [InlineData("?code=http://loinc.org%7C4548-4&requester=Organization/nobody")]
    [InlineData("?code=http://loinc.org%7C4548-4&requester=Organization/x&at=soon")]
    [InlineData("?code=http://loinc.org%7C4548-4,http://loinc.org%7C2345-7&requester=Organization/x")]
    [InlineData("?code=http://loinc.org%7C4548-4&requester=Organization/x&date=2025-05-08")]
    public async Task Incomplete_questions_are_400(string query)
    {
        var response = await _client.GetAsync($"/fhir/Patient/p1/$recognized-results{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        await Fhir.Read<OperationOutcome>(response);
    }

    private async Task<Bundle> AskAsync(string patient, string code, string at, string requester)
    {
        var response = await _client.GetAsync($"/fhir/Patient/{patient}/$recognized-results?code={Uri.EscapeDataString(code)}&at={at}&requester={requester}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<Bundle>(response);
    }

    /// <summary>A patient with HbA1c results from the county hospital (grade 3) and a township centre (grade 1).</summary>
    private async Task<(string Patient, string County, string Township, string Elsewhere)> ScenarioAsync()
    {
        var county = await OrganizationAsync($"county-{_suffix}", "3B", "369921100");
        var township = await OrganizationAsync($"township-{_suffix}", "1", "369921101");
        var elsewhere = await OrganizationAsync($"far-{_suffix}", "3A", "439923100");
        var patient = await Fhir.Read<Patient>(await _client.PostAsync("/fhir/Patient", Fhir.Content(Fhir.Patient("马", "丽"))));
        foreach (var performer in new[] { county, township })
        {
            var observation = new Observation
            {
                Status = ObservationStatus.Final,
                Code = new CodeableConcept("http://loinc.org", "4548-4", "糖化血红蛋白"),
                Subject = new ResourceReference($"Patient/{patient.Id}"),
                Effective = new FhirDateTime(new DateTimeOffset(2025, 3, 1, 9, 0, 0, TimeSpan.FromHours(8))),
                Performer = [new ResourceReference(performer)],
                Value = new Quantity(6.1m, "%"),
            };
            Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Observation", Fhir.Content(observation))).StatusCode);
        }

        return (patient.Id!, county, township, elsewhere);
    }

    private async Task<string> OrganizationAsync(string id, string level, string division)
    {
        var organization = new Organization
        {
            Id = id,
            Name = id,
            Extension =
            [
                new Extension($"{Ext}institution-level", new Coding("urn:interophub:cs:institution-level", level)),
                new Extension($"{Ext}division-code", new Code(division)),
            ],
        };
        Assert.True((await _client.PutAsync($"/fhir/Organization/{id}", Fhir.Content(organization))).IsSuccessStatusCode);
        return $"Organization/{id}";
    }
}

public sealed class RecognizedResultsTestsOnSqlite(SqliteHub hub) : RecognizedResultsTests(hub), IClassFixture<SqliteHub>;

public sealed class RecognizedResultsTestsOnPostgres(PostgresHub hub) : RecognizedResultsTests(hub), IClassFixture<PostgresHub>;
