using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/primary-care-share/$evaluate-measure</c> over visits at institutions of known classes.</summary>
public abstract class PrimaryCareShareTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Baisha => $"Organization/baisha-{_suffix}";

    private string Shaping => $"Organization/shaping-{_suffix}";

    private string Hospital => $"Organization/hospital-{_suffix}";

    [Fact]
    public async Task The_share_is_the_visits_at_township_centres_and_village_clinics_among_the_consultations_of_the_period()
    {
        foreach (var (reference, type, partOf) in new[] { (Baisha, "C220", (string?)null), (Shaping, "D600", Baisha), (Hospital, "A100", null) })
        {
            var organization = new Organization
            {
                Id = reference.Split('/')[1],
                Type = [new CodeableConcept(TownshipResidents.Ws218System, type)],
                PartOf = partOf is null ? null : new ResourceReference(partOf),
            };
            Assert.True((await _client.PutAsync($"/fhir/{reference}", Fhir.Content(organization))).IsSuccessStatusCode);
        }

        var resident = await PatientAsync(Baisha);
        await VisitAsync(resident, Baisha, "2025-03-01");
        await VisitAsync(resident, Shaping, "2025-04-01");
        await VisitAsync(resident, Hospital, "2025-05-01");
        await VisitAsync(resident, Hospital, "2025-06-01");
        // Not consultations of 2025: a follow-up of the township's public-health service, a cancelled visit, one of 2024.
        await VisitAsync(resident, Baisha, "2025-07-01", publicHealth: true);
        await VisitAsync(resident, Baisha, "2025-08-01", status: Encounter.EncounterStatus.Cancelled);
        await VisitAsync(resident, Baisha, "2024-12-31");
        // Someone no township keeps records of: counted in the whole, not in a township's share.
        await VisitAsync(await PatientAsync(Hospital), Hospital, "2025-03-01");

        var report = await EvaluateAsync($"periodStart=2025&periodEnd=2025&subject={Baisha}");
        var all = await EvaluateAsync("periodStart=2025&periodEnd=2025");

        Assert.Equal(PrimaryCareShare.MeasureUrl, report.Measure);
        var group = report.Group.Single();
        Assert.Equal(4, group.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count);
        Assert.Equal(2, group.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count);
        Assert.Equal(0.5m, group.MeasureScore!.Value);
        var baisha = all.Group.Single().Stratifier.Single().Stratum.Single(s => s.Value!.Text == Baisha);
        Assert.Equal(4, baisha.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count);
        Assert.True(all.Group.Single().Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count >= 5);
    }

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/primary-care-share/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    private async Task<string> PatientAsync(string manager)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(new Patient { BirthDate = "1960-01-01", ManagingOrganization = new ResourceReference(manager) }));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"Patient/{(await Fhir.Read<Patient>(response)).Id}";
    }

    private async Task VisitAsync(string patient, string provider, string day, bool publicHealth = false,
        Encounter.EncounterStatus status = Encounter.EncounterStatus.Finished)
    {
        var visit = new Encounter
        {
            Status = status,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            Type = publicHealth ? [new CodeableConcept(TownshipResidents.PublicHealthVisitSystem, "followups_hypertension")] : [],
            Subject = new ResourceReference(patient),
            ServiceProvider = new ResourceReference(provider),
            Period = new Period { StartElement = new FhirDateTime(day) },
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Encounter", Fhir.Content(visit))).StatusCode);
    }
}

public sealed class PrimaryCareShareTestsOnSqlite(SqliteHub hub) : PrimaryCareShareTests(hub), IClassFixture<SqliteHub>;

public sealed class PrimaryCareShareTestsOnPostgres(PostgresHub hub) : PrimaryCareShareTests(hub), IClassFixture<PostgresHub>;
