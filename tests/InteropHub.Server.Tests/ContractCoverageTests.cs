using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/contract-coverage/$evaluate-measure</c> over residents and contracts with known dates.</summary>
public abstract class ContractCoverageTests(HubFactory hub)
{
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Baisha => $"Organization/baisha-{_suffix}";

    private string Longquan => $"Organization/longquan-{_suffix}";

    private string Shaping => $"Organization/shaping-{_suffix}";

    private string Hospital => $"Organization/hospital-{_suffix}";

    private string Community => $"Organization/community-{_suffix}";

    private string Station => $"Organization/station-{_suffix}";

    [Fact]
    public async Task Coverage_is_residents_with_a_contract_in_force_in_the_period_over_the_living_active_residents_per_township()
    {
        await TownshipsAsync();
        // 白沙: six residents counted, of whom three have a contract in force in 2025; three records not counted.
        var signed = await ResidentAsync(Baisha, "1950-03-01");
        await ContractAsync(signed, "2025-01-01", "2025-12-31", "1", "2");
        var signedLastYear = await ResidentAsync(Baisha, "1988-07-12");
        await ContractAsync(signedLastYear, "2024-03-01", "2025-02-28");
        var terminated = await ResidentAsync(Baisha, "1992-01-20");
        await ContractAsync(terminated, "2025-06-01", "2025-08-15", "2");
        var expired = await ResidentAsync(Baisha, "1970-05-05");
        await ContractAsync(expired, "2023-01-01", "2023-12-31");
        var unsigned = await ResidentAsync(Baisha, "2001-11-30");
        await ContractAsync(unsigned, "2025-01-01", "2025-12-31", status: EpisodeOfCare.EpisodeOfCareStatus.EnteredInError);
        // Cancelled before it started (R4 EpisodeOfCare.status): no contract in force.
        var cancelled = await ResidentAsync(Baisha, "1985-04-04");
        await ContractAsync(cancelled, "2025-01-01", "2025-12-31", status: EpisodeOfCare.EpisodeOfCareStatus.Cancelled);
        var diedBefore = await ResidentAsync(Baisha, "1930-01-01", died: "2024-11-02");
        await ContractAsync(diedBefore, "2024-01-01", "2024-12-31");
        var retired = await ResidentAsync(Baisha, "1960-02-02", active: false);
        await ContractAsync(retired, "2025-01-01", "2025-12-31");
        await ResidentAsync(Baisha, "2026-01-05");
        // 沙坪村卫生室 keeps records for 白沙: its resident is 白沙's, signed.
        await ContractAsync(await ResidentAsync(Shaping, "1949-10-01"), "2025-01-01", "2025-12-31", "1");
        // 龙泉: one resident, signed; a contract of someone no township keeps records of (none, or a hospital) is nobody's coverage.
        var longquan = await ResidentAsync(Longquan, "1955-09-09");
        await ContractAsync(longquan, "2025-03-01", "2026-02-28", "1");
        await ContractAsync(await ResidentAsync(null, "1980-01-01"), "2025-01-01", "2025-12-31");
        await ContractAsync(await ResidentAsync(Hospital, "1981-01-01"), "2025-01-01", "2025-12-31");
        // A community health service centre (B1) keeps its district's records as a township centre does, with its stations'.
        await ContractAsync(await ResidentAsync(Station, "1975-01-01"), "2025-01-01", "2025-12-31");
        await ResidentAsync(Community, "1976-01-01");

        var report = await EvaluateAsync($"periodStart=2025&periodEnd=2025");

        Assert.Equal(ContractCoverage.MeasureUrl, report.Measure);
        var strata = report.Group.Single().Stratifier.Single(s => s.Code[0].Coding[0].Code == "township").Stratum
            .ToDictionary(s => s.Value!.Text!, s => s);
        var baisha = strata[Baisha];
        Assert.Equal(7, Count(baisha.Population, "denominator"));
        Assert.Equal(4, Count(baisha.Population, "numerator"));
        Assert.Equal(0.5714m, baisha.MeasureScore!.Value);
        Assert.Equal(1, Count(strata[Longquan].Population, "numerator"));
        Assert.Equal(1m, strata[Longquan].MeasureScore!.Value);
        Assert.DoesNotContain(Shaping, strata.Keys);
        Assert.DoesNotContain(Hospital, strata.Keys);
        Assert.Equal(0.5m, strata[Community].MeasureScore!.Value);
    }

    [Fact]
    public async Task Two_records_of_one_resident_id_number_are_one_person_in_the_denominator_and_the_numerator()
    {
        await TownshipsAsync();
        var idNumber = InteropHub.Testing.LegacyData.IdNumber(873_131);
        // 龙泉: one person with two records not merged (each signed once), one with a record of its own, unsigned.
        var first = await ResidentAsync(Longquan, "1955-09-09", idNumber: idNumber);
        var second = await ResidentAsync(Longquan, "1955-09-09", idNumber: idNumber);
        await ContractAsync(first, "2025-01-01", "2025-12-31", "1");
        await ContractAsync(second, "2025-03-01", "2026-02-28", "2");
        await ResidentAsync(Longquan, "1960-01-01", idNumber: InteropHub.Testing.LegacyData.IdNumber(873_141));

        var report = await EvaluateAsync($"periodStart=2025&periodEnd=2025&subject={Longquan}");

        var group = report.Group.Single();
        Assert.Equal(2, Count(group.Population, "denominator"));
        Assert.Equal(1, Count(group.Population, "numerator"));
        Assert.Equal(0.5m, group.MeasureScore!.Value);
        var keyPopulations = group.Stratifier.Single(s => s.Code[0].Coding[0].Code == "key-population").Stratum;
        Assert.Equal([("1", 1), ("2", 1)], keyPopulations.Select(s => (s.Value!.Coding[0].Code, Count(s.Population, "numerator") ?? 0)));
    }

    [Fact]
    public async Task The_subject_narrows_the_report_to_one_township_and_the_numerator_is_counted_by_key_population_by_GET_or_POST()
    {
        await TownshipsAsync();
        await ContractAsync(await ResidentAsync(Baisha, "1950-03-01"), "2025-01-01", "2025-12-31", "1", "2");
        await ContractAsync(await ResidentAsync(Baisha, "1948-04-01"), "2025-01-01", "2025-12-31", "1");
        await ResidentAsync(Baisha, "1990-04-01");
        await ContractAsync(await ResidentAsync(Longquan, "1950-03-01"), "2025-01-01", "2025-12-31", "1");

        var report = await EvaluateAsync($"periodStart=2025-06&periodEnd=2025-06&subject={Baisha}");
        var posted = new Parameters();
        posted.Add("periodStart", new Date("2025-06"));
        posted.Add("periodEnd", new Date("2025-06"));
        posted.Add("subject", new FhirString(Baisha));
        var byPost = await _client.PostAsync("/fhir/Measure/contract-coverage/$evaluate-measure", Fhir.Content(posted));
        Assert.Equal(HttpStatusCode.OK, byPost.StatusCode);
        Assert.Equal(0.6667m, (await Fhir.Read<MeasureReport>(byPost)).Group.Single().MeasureScore!.Value);

        Assert.Equal(Baisha, report.Subject!.Reference);
        var group = report.Group.Single();
        Assert.Equal(3, Count(group.Population, "denominator"));
        Assert.Equal(2, Count(group.Population, "numerator"));
        Assert.Equal(0.6667m, group.MeasureScore!.Value);
        Assert.Equal([Baisha], group.Stratifier.Single(s => s.Code[0].Coding[0].Code == "township").Stratum.Select(s => s.Value!.Text));
        var groups = group.Stratifier.Single(s => s.Code[0].Coding[0].Code == "key-population").Stratum
            .Select(s => (s.Value!.Coding[0].Code, s.Population.Single().Count));
        Assert.Equal([("1", (int?)2), ("2", 1)], groups);
    }

    [Fact]
    public async Task A_measure_the_hub_does_not_compute_is_404_and_a_bad_period_or_a_subject_that_is_no_township_centre_is_400()
    {
        await TownshipsAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.GetAsync($"/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025&subject={Shaping}")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.GetAsync($"/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025&subject={Hospital}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync($"/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025&subject=Organization/nobody-{_suffix}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/fhir/Measure/hospital-delivery-rate/$evaluate-measure?periodStart=2025&periodEnd=2025")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.GetAsync("/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025-13&periodEnd=2025")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _client.GetAsync("/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025&periodEnd=2024")).StatusCode);
    }

    private static int? Count(IEnumerable<MeasureReport.PopulationComponent> populations, string code) =>
        populations.Single(p => p.Code!.Coding[0].Code == code).Count;

    private static int? Count(IEnumerable<MeasureReport.StratifierGroupPopulationComponent> populations, string code) =>
        populations.Single(p => p.Code!.Coding[0].Code == code).Count;

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/contract-coverage/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    private async Task TownshipsAsync()
    {
        // WS 218 classes: township health centres C220, a village clinic D600 of 白沙, a county hospital A100.
        foreach (var (reference, type, partOf) in new[]
        {
            (Baisha, "C220", (string?)null), (Longquan, "C220", null), (Shaping, "D600", Baisha), (Hospital, "A100", null), (Community, "B100", null),
            (Station, "B200", Community),
        })
        {
            var organization = new Organization
            {
                Id = reference.Split('/')[1],
                Name = reference,
                Type = [new CodeableConcept(TownshipResidents.Ws218System, type)],
                PartOf = partOf is null ? null : new ResourceReference(partOf),
            };
            Assert.True((await _client.PutAsync($"/fhir/{reference}", Fhir.Content(organization))).IsSuccessStatusCode);
        }
    }

    private async Task<string> ResidentAsync(string? township, string born, string? died = null, bool active = true, string? idNumber = null)
    {
        var patient = new Patient
        {
            Active = active,
            BirthDate = born,
            ManagingOrganization = township is null ? null : new ResourceReference(township),
            Deceased = died is null ? null : new FhirDateTime(died),
        };
        if (idNumber is not null)
        {
            patient.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", idNumber));
        }

        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"Patient/{(await Fhir.Read<Patient>(response)).Id}";
    }

    private async Task ContractAsync(string patient, string start, string end, params string[] keyPopulations) =>
        await ContractAsync(patient, start, end, EpisodeOfCare.EpisodeOfCareStatus.Active, keyPopulations);

    private async Task ContractAsync(string patient, string start, string end, EpisodeOfCare.EpisodeOfCareStatus status, params string[] keyPopulations)
    {
        var contract = new EpisodeOfCare
        {
            Status = status,
            Type = [new CodeableConcept("urn:interophub:cs:episode-type", ContractCoverage.ContractType)],
            Patient = new ResourceReference(patient),
            Period = new Period(new FhirDateTime(start), new FhirDateTime(end)),
            Extension = [.. keyPopulations.Select(k => new Extension(ContractCoverage.KeyPopulationExtension, new Coding("urn:interophub:cs:key-population", k)))],
        };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/EpisodeOfCare", Fhir.Content(contract))).StatusCode);
    }
}

public sealed class ContractCoverageTestsOnSqlite(SqliteHub hub) : ContractCoverageTests(hub), IClassFixture<SqliteHub>;

public sealed class ContractCoverageTestsOnPostgres(PostgresHub hub) : ContractCoverageTests(hub), IClassFixture<PostgresHub>;
