using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;
using InteropHub.Hub.ResultRecognition;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/result-recognition/$evaluate-measure</c> over orders for catalogued items.</summary>
public abstract class ResultRecognitionRateTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Township => $"Organization/recog-township-{_suffix}";

    private string Hospital => $"Organization/recog-hospital-{_suffix}";

    [Fact]
    public async Task The_rate_is_the_orders_closed_on_a_prior_result_among_those_with_one_per_institution_and_reason()
    {
        foreach (var reference in new[] { Township, Hospital })
        {
            Assert.True((await _client.PutAsync($"/fhir/{reference}", Fhir.Content(new Organization { Id = reference.Split('/')[1], Name = reference }))).IsSuccessStatusCode);
        }

        var patient = await CreateAsync(new Patient { BirthDate = "1960-01-01" });
        var report = await CreateAsync(new DiagnosticReport
        {
            Status = DiagnosticReport.DiagnosticReportStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "14771-0"),
            Subject = new ResourceReference(patient),
        });
        var role = await CreateAsync(new PractitionerRole { Organization = new ResourceReference(Hospital) });

        // Recognised: the township closes two glucose orders on the hospital's report, the hospital one by its LIS code.
        await OrderAsync(patient, Township, "2025-03-01", "GLU", RecognizedResults.LisSystem, recognisedOn: report);
        await OrderAsync(patient, Township, "2025-04-01", "14771-0", "http://loinc.org", recognisedOn: report);
        await OrderAsync(patient, role, "2025-05-01", "GLU", RecognizedResults.LisSystem, recognisedOn: report);
        // Tested again, with a reason.
        await OrderAsync(patient, Township, "2025-05-02", "14771-0", "http://loinc.org", reason: "condition-changed");
        await OrderAsync(patient, role, "2025-06-01", "4548-4", "http://loinc.org", reason: "emergency");
        await OrderAsync(patient, Hospital, "2025-06-02", "4548-4", "http://loinc.org", reason: "emergency");
        // Not counted: no prior result to recognise (no reason, not closed on one), an item not in the catalogue, an order
        // of 2024, one entered in error.
        await OrderAsync(patient, Township, "2025-07-01", "14771-0", "http://loinc.org");
        await OrderAsync(patient, Township, "2025-07-02", "24331-1", "http://loinc.org", recognisedOn: report);
        await OrderAsync(patient, Township, "2024-12-31", "14771-0", "http://loinc.org", recognisedOn: report);
        await OrderAsync(patient, Township, "2025-07-03", "14771-0", "http://loinc.org", reason: "other", status: RequestStatus.EnteredInError);

        var township = await EvaluateAsync($"periodStart=2025&periodEnd=2025&subject={Township}");
        var all = await EvaluateAsync("periodStart=2025&periodEnd=2025");

        Assert.Equal(ResultRecognitionRate.MeasureUrl, township.Measure);
        var group = township.Group.Single();
        Assert.Equal((3, 2), (Count(group.Population, "denominator"), Count(group.Population, "numerator")));
        Assert.Equal(0.6667m, group.MeasureScore!.Value);
        var byInstitution = all.Group.Single().Stratifier[0].Stratum;
        var hospital = byInstitution.Single(s => s.Value!.Text == Hospital);
        Assert.Equal((3, 1), (Count(hospital.Population, "denominator"), Count(hospital.Population, "numerator")));
        var reasons = all.Group.Single().Stratifier[1].Stratum;
        Assert.True(Count(reasons.Single(s => s.Value!.Coding[0].Code == "emergency").Population, "denominator") >= 2);
        // The order entered in error is not counted, its reason neither.
        Assert.DoesNotContain(reasons, s => s.Value!.Coding[0].Code == "other");
    }

    private static int? Count(IEnumerable<MeasureReport.PopulationComponent> populations, string code) =>
        populations.Single(p => p.Code!.Coding[0].Code == code).Count;

    private static int? Count(IEnumerable<MeasureReport.StratifierGroupPopulationComponent> populations, string code) =>
        populations.Single(p => p.Code!.Coding[0].Code == code).Count;

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/result-recognition/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    private async Task<string> CreateAsync(Resource resource)
    {
        var response = await _client.PostAsync($"/fhir/{resource.TypeName}", Fhir.Content(resource));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"{resource.TypeName}/{response.Headers.Location!.AbsolutePath.Split('/')[3]}";
    }

    private async Task OrderAsync(string patient, string requester, string day, string code, string? system, string? recognisedOn = null,
        string? reason = null, RequestStatus status = RequestStatus.Active)
    {
        var order = new ServiceRequest
        {
            Status = recognisedOn is null ? status : RequestStatus.Completed,
            Intent = RequestIntent.Order,
            Code = new CodeableConcept(system, code),
            Subject = new ResourceReference(patient),
            Requester = new ResourceReference(requester),
            AuthoredOnElement = new FhirDateTime(day),
            SupportingInfo = recognisedOn is null ? [] : [new ResourceReference(recognisedOn)],
        };
        if (reason is not null)
        {
            order.Extension.Add(new Extension(NonRecognitionReasonRule.ReasonExtension, new Coding(NonRecognitionReasonRule.ReasonSystem, reason)));
        }

        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Fhir.Content(order) };
        request.Headers.Add("X-Organization", requester.StartsWith("Organization/", StringComparison.Ordinal) ? requester : Hospital);
        Assert.Equal(HttpStatusCode.Created, (await _client.SendAsync(request)).StatusCode);
    }
}

public sealed class ResultRecognitionRateTestsOnSqlite(SqliteHub hub) : ResultRecognitionRateTests(hub), IClassFixture<SqliteHub>;

public sealed class ResultRecognitionRateTestsOnPostgres(PostgresHub hub) : ResultRecognitionRateTests(hub), IClassFixture<PostgresHub>;
