using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/chronic-disease-management/$evaluate-measure</c> over patients with known plans and follow-ups.</summary>
public abstract class ChronicDiseaseManagementTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Baisha => $"Organization/baisha-{_suffix}";

    [Fact]
    public async Task Standard_management_is_follow_ups_on_four_days_of_the_year_among_the_patients_followed_up_in_it()
    {
        var township = new Organization { Id = Baisha.Split('/')[1], Type = [new CodeableConcept(TownshipResidents.Ws218System, "C220")] };
        Assert.True((await _client.PutAsync($"/fhir/{Baisha}", Fhir.Content(township))).IsSuccessStatusCode);
        // Quarterly follow-ups all year: standard.
        var quarterly = await PatientAsync();
        await PlanAsync(quarterly, "hypertension");
        await VisitsAsync(quarterly, "followups_hypertension", "2025-01-10", "2025-04-10", "2025-07-10", "2025-10-10");
        // Three this year (and one last year): managed, not standard.
        var three = await PatientAsync();
        await PlanAsync(three, "hypertension");
        await VisitsAsync(three, "followups_hypertension", "2024-12-20", "2025-03-20", "2025-06-20", "2025-09-20");
        // Four visits, two of them on one day: three follow-ups, managed, not standard.
        var sameDay = await PatientAsync();
        await PlanAsync(sameDay, "hypertension");
        await VisitsAsync(sameDay, "followups_hypertension", "2025-02-10", "2025-05-10", "2025-05-10", "2025-08-10");
        // Followed up in 2024, not in 2025: not managed in 2025.
        var lapsed = await PatientAsync();
        await PlanAsync(lapsed, "hypertension");
        await VisitsAsync(lapsed, "followups_hypertension", "2024-05-01");
        // First followed up in 2026: not yet managed in 2025. A plan without any visit: not counted either.
        var later = await PatientAsync();
        await PlanAsync(later, "hypertension");
        await VisitsAsync(later, "followups_hypertension", "2026-01-15");
        await PlanAsync(await PatientAsync(), "hypertension");
        // Diabetes: four follow-ups, one of them not finished.
        var diabetic = await PatientAsync();
        await PlanAsync(diabetic, "diabetes");
        await VisitsAsync(diabetic, "followups_diabetes", "2025-02-01", "2025-05-01", "2025-08-01");
        await VisitsAsync(diabetic, "followups_diabetes", Encounter.EncounterStatus.Cancelled, "2025-11-01");

        var report = await EvaluateAsync("periodStart=2025&periodEnd=2025");

        Assert.Equal(ChronicDiseaseManagement.MeasureUrl, report.Measure);
        Assert.Equal((3, 1), Mine(report, "hypertension"));  // quarterly, three, same day
        Assert.Equal((1, 0), Mine(report, "diabetes"));
        var subject = await EvaluateAsync($"periodStart=2025&periodEnd=2025&subject={Baisha}");
        Assert.Equal(0.3333m, subject.Group.Single(g => g.Code!.Coding[0].Code == "hypertension").MeasureScore!.Value);
    }

    private (int, int) Mine(MeasureReport report, string disease)
    {
        var stratum = report.Group.Single(g => g.Code!.Coding[0].Code == disease).Stratifier.Single().Stratum.Single(s => s.Value!.Text == Baisha);
        return (stratum.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count ?? 0,
            stratum.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count ?? 0);
    }

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/chronic-disease-management/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    private async Task<string> PatientAsync()
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(new Patient { BirthDate = "1955-01-01", ManagingOrganization = new ResourceReference(Baisha) }));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"Patient/{(await Fhir.Read<Patient>(response)).Id}";
    }

    private async Task PlanAsync(string patient, string disease)
    {
        var plan = new CarePlan
        {
            Status = RequestStatus.Active,
            Intent = CarePlan.CarePlanIntent.Plan,
            Category = [new CodeableConcept(ChronicDiseaseManagement.CarePlanCategorySystem, disease)],
            Subject = new ResourceReference(patient),
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/CarePlan", Fhir.Content(plan))).StatusCode);
    }

    private Task VisitsAsync(string patient, string type, params string[] days) => VisitsAsync(patient, type, Encounter.EncounterStatus.Finished, days);

    private async Task VisitsAsync(string patient, string type, Encounter.EncounterStatus status, params string[] days)
    {
        foreach (var day in days)
        {
            var visit = new Encounter
            {
                Status = status,
                Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
                Type = [new CodeableConcept(TownshipResidents.PublicHealthVisitSystem, type)],
                Subject = new ResourceReference(patient),
                Period = new Period { StartElement = new FhirDateTime(day) },
            };
            Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Encounter", Fhir.Content(visit))).StatusCode);
        }
    }
}

public sealed class ChronicDiseaseManagementTestsOnSqlite(SqliteHub hub) : ChronicDiseaseManagementTests(hub), IClassFixture<SqliteHub>;

public sealed class ChronicDiseaseManagementTestsOnPostgres(PostgresHub hub) : ChronicDiseaseManagementTests(hub), IClassFixture<PostgresHub>;
