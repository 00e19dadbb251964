using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/maternal-care/$evaluate-measure</c> over pregnancies with known visits and outcomes.</summary>
public abstract class MaternalCareTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Baisha => $"Organization/baisha-{_suffix}";

    [Fact]
    public async Task The_deliveries_of_the_period_are_counted_for_early_registration_five_antenatal_visits_the_42_day_check_and_hospital_delivery()
    {
        var township = new Organization { Id = Baisha.Split('/')[1], Type = [new CodeableConcept(TownshipResidents.Ws218System, "C220")] };
        Assert.True((await _client.PutAsync($"/fhir/{Baisha}", Fhir.Content(township))).IsSuccessStatusCode);
        // Registered at 8 weeks, four more antenatal visits, delivered in hospital, checked at 42 days: every numerator.
        var model = await PregnancyAsync("2025-03-15", "1", inHospital: true);
        await VisitAsync(model, "maternal_registrations", "2024-07-22", gestationalDays: 56);
        await VisitsAsync(model, "AN", "2024-10-14", "2024-12-09", "2025-01-20", "2025-02-24");
        await VisitAsync(model, "PP42", "2025-04-26");
        // Registered at 14 weeks with three antenatal visits in all, a home birth, no 42-day check.
        var late = await PregnancyAsync("2025-06-01", "1", inHospital: false);
        await VisitAsync(late, "maternal_registrations", "2024-12-01", gestationalDays: 98);
        await VisitsAsync(late, "AN", "2025-02-01", "2025-04-01");
        // Not deliveries of 2025: still pregnant, a miscarriage, a birth in 2024.
        await PregnancyAsync(null, null, inHospital: false);
        await PregnancyAsync("2025-02-01", "3", inHospital: true);
        await PregnancyAsync("2024-12-30", "1", inHospital: true);

        var report = await EvaluateAsync("periodStart=2025&periodEnd=2025");

        Assert.Equal(MaternalCare.MeasureUrl, report.Measure);
        Assert.Equal((2, 1), Mine(report, "early-registration"));
        Assert.Equal((2, 1), Mine(report, "antenatal-5"));
        Assert.Equal((2, 1), Mine(report, "postpartum-42"));
        Assert.Equal((2, 1), Mine(report, "hospital-delivery"));
        var first = await EvaluateAsync($"periodStart=2025-01&periodEnd=2025-03&subject={Baisha}");
        Assert.All(first.Group, g => Assert.Equal(1m, g.MeasureScore!.Value));
    }

    private (int, int) Mine(MeasureReport report, string code)
    {
        var stratum = report.Group.Single(g => g.Code!.Coding[0].Code == code).Stratifier.Single().Stratum.Single(s => s.Value!.Text == Baisha);
        return (stratum.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count ?? 0,
            stratum.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count ?? 0);
    }

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/maternal-care/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    /// <returns>The pregnancy's reference and its mother's.</returns>
    private async Task<(string Pregnancy, string Mother)> PregnancyAsync(string? delivered, string? outcome, bool inHospital)
    {
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(new Patient
        {
            Gender = AdministrativeGender.Female,
            BirthDate = "1995-01-01",
            ManagingOrganization = new ResourceReference(Baisha),
        }));
        var mother = $"Patient/{(await Fhir.Read<Patient>(response)).Id}";
        var pregnancy = new EpisodeOfCare
        {
            Status = delivered is null ? EpisodeOfCare.EpisodeOfCareStatus.Active : EpisodeOfCare.EpisodeOfCareStatus.Finished,
            Type = [new CodeableConcept("urn:interophub:cs:episode-type", MaternalCare.PregnancyType)],
            Patient = new ResourceReference(mother),
            Period = new Period { StartElement = new FhirDateTime("2024-07-22"), EndElement = delivered is null ? null : new FhirDateTime(delivered) },
        };
        if (outcome is not null)
        {
            pregnancy.Extension.Add(new Extension(MaternalCare.OutcomeExtension, new Coding("urn:interophub:cs:pregnancy-outcome", outcome)));
        }

        if (inHospital)
        {
            pregnancy.Extension.Add(new Extension(MaternalCare.DeliveryOrganizationExtension, new ResourceReference("Organization/QX2100012")));
        }

        var created = await _client.PostAsync("/fhir/EpisodeOfCare", Fhir.Content(pregnancy));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return ($"EpisodeOfCare/{(await Fhir.Read<EpisodeOfCare>(created)).Id}", mother);
    }

    private async Task VisitsAsync((string Pregnancy, string Mother) pregnancy, string type, params string[] days)
    {
        foreach (var day in days)
        {
            await VisitAsync(pregnancy, type, day);
        }
    }

    private async Task VisitAsync((string Pregnancy, string Mother) pregnancy, string type, string day, int? gestationalDays = null)
    {
        var visit = new Encounter
        {
            Status = Encounter.EncounterStatus.Finished,
            Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
            Type = [new CodeableConcept(TownshipResidents.PublicHealthVisitSystem, type)],
            Subject = new ResourceReference(pregnancy.Mother),
            EpisodeOfCare = [new ResourceReference(pregnancy.Pregnancy)],
            Period = new Period { StartElement = new FhirDateTime(day) },
        };
        var response = await _client.PostAsync("/fhir/Encounter", Fhir.Content(visit));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        if (gestationalDays is { } days)
        {
            var age = new Observation
            {
                Status = ObservationStatus.Final,
                Code = new CodeableConcept("http://loinc.org", "11884-4"),
                Subject = new ResourceReference(pregnancy.Mother),
                Encounter = new ResourceReference($"Encounter/{(await Fhir.Read<Encounter>(response)).Id}"),
                Value = new Quantity { Value = days, Unit = "d", System = "http://unitsofmeasure.org", Code = "d" },
            };
            Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Observation", Fhir.Content(age))).StatusCode);
        }
    }
}

public sealed class MaternalCareTestsOnSqlite(SqliteHub hub) : MaternalCareTests(hub), IClassFixture<SqliteHub>;

public sealed class MaternalCareTestsOnPostgres(PostgresHub hub) : MaternalCareTests(hub), IClassFixture<PostgresHub>;
