using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Hub.Indicators;

namespace InteropHub.Server.Tests;

/// <summary><c>Measure/nip-coverage/$evaluate-measure</c> over children with known birth dates and doses.</summary>
public abstract class NipCoverageTests(HubFactory hub)
{
    private const string Qxvac = "urn:interophub:cs:qxvac";
    private readonly HttpClient _client = hub.CreateClient();
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    private string Baisha => $"Organization/baisha-{_suffix}";

    private string Longquan => $"Organization/longquan-{_suffix}";

    [Fact]
    public async Task Each_dose_counts_the_children_who_reached_its_due_age_and_those_of_them_given_it_or_a_later_dose()
    {
        await TownshipsAsync();
        // Born this year, HepB 1 and 2 given: due for 1, 2 and 3 (6 months) by the end of 2025.
        var twoDoses = await ChildAsync(Baisha, "2025-01-10");
        await DoseAsync(twoDoses, "0101", "2025-01-10", 1);
        await DoseAsync(twoDoses, "0101", "2025-02-15", 2);
        // Born in October, one dose without its number: due for 1 and 2.
        var unnumbered = await ChildAsync(Baisha, "2025-10-01");
        await DoseAsync(unnumbered, "0102", "2025-10-01", null);
        // Born on 20 December: due for dose 1 only, which was not given (not done) and is given in January.
        var late = await ChildAsync(Baisha, "2025-12-20");
        await DoseAsync(late, "0101", "2025-12-20", 1, Immunization.ImmunizationStatusCodes.NotDone);
        await DoseAsync(late, "0101", "2026-01-05", 1);
        // A third dose recorded here implies the first two, given elsewhere; 龙泉's child.
        var third = await ChildAsync(Longquan, "2024-06-01");
        await DoseAsync(third, "0101", "2024-12-01", 3);
        // Dose 1 recorded twice (two sources, two dates) is one dose: due for 1 and 2 (June), given 1.
        var twice = await ChildAsync(Baisha, "2025-05-01");
        await DoseAsync(twice, "0101", "2025-05-01", 1);
        await DoseAsync(twice, "0101", "2025-05-03", 1);
        // Born in March, its one dose subpotent (a half dose): due for 1, 2 and 3, given none.
        var subpotent = await ChildAsync(Baisha, "2025-03-01");
        await DoseAsync(subpotent, "0101", "2025-03-01", 1, subpotent: true);
        // Eight years old: past the programme's ages.
        await DoseAsync(await ChildAsync(Baisha, "2017-05-01"), "0101", "2017-05-01", 1);

        var report = await EvaluateAsync("periodStart=2025&periodEnd=2025");

        Assert.Equal(NipCoverage.MeasureUrl, report.Measure);
        Assert.Equal((6, 4), Mine(report, "HepB-1"));
        Assert.Equal((5, 2), Mine(report, "HepB-2"));
        Assert.Equal((4, 1), Mine(report, "HepB-3"));
        Assert.Equal((6, 0), Mine(report, "BCG-1"));
        var longquan = Stratum(report, "HepB-3", Longquan);
        Assert.Equal(1m, longquan.MeasureScore!.Value);
    }

    [Fact]
    public async Task The_subject_narrows_the_report_to_one_township()
    {
        await TownshipsAsync();
        await DoseAsync(await ChildAsync(Baisha, "2025-03-01"), "0201", "2025-03-02", 1);
        await ChildAsync(Longquan, "2025-03-01");

        var report = await EvaluateAsync($"periodStart=2025&periodEnd=2025&subject={Longquan}");

        var bcg = report.Group.Single(g => g.Code!.Text!.StartsWith("BCG-1 ", StringComparison.Ordinal));
        Assert.Equal([Longquan], bcg.Stratifier.Single().Stratum.Select(s => s.Value!.Text));
        Assert.Equal(0, bcg.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count);
    }

    [Fact]
    public async Task The_schedule_is_the_stored_Measure_so_an_edit_over_FHIR_changes_what_is_counted()
    {
        await TownshipsAsync();
        var child = await ChildAsync(Baisha, "2024-12-01");
        await DoseAsync(child, "0901", "2025-12-05", 1);
        var original = await Fhir.Read<Measure>(await _client.GetAsync("/fhir/Measure/nip-coverage"));
        try
        {
            // A county adds varicella (0901) at 12 months to its schedule.
            var edited = (Measure)original.DeepCopy();
            var varicella = (Measure.GroupComponent)edited.Group[0].DeepCopy();
            varicella.Code = new CodeableConcept(Qxvac, "0901") { Text = "VarV-1 水痘疫苗第1剂" };
            varicella.SetExtension(NipCoverage.DoseNumberExtension, new Integer(1));
            varicella.SetExtension(NipCoverage.DueAgeExtension, new Age { Value = 12, Unit = "月", System = "http://unitsofmeasure.org", Code = "mo" });
            edited.Group.Add(varicella);
            Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync("/fhir/Measure/nip-coverage", Fhir.Content(edited))).StatusCode);

            Assert.Equal((1, 1), Mine(await EvaluateAsync("periodStart=2025&periodEnd=2025"), "VarV-1"));

            // A group without its due age, with one past the programme's ages or in weeks, cannot be evaluated: the edit is
            // refused (422 naming the group), and the schedule stays the one that can.
            foreach (var age in new Age?[] { null, new() { Value = 100_000, System = "http://unitsofmeasure.org", Code = "a" },
                new() { Value = 52, System = "http://unitsofmeasure.org", Code = "wk" } })
            {
                varicella.RemoveExtension(NipCoverage.DueAgeExtension);
                if (age is not null)
                {
                    varicella.SetExtension(NipCoverage.DueAgeExtension, age);
                }

                var refused = await _client.PutAsync("/fhir/Measure/nip-coverage", Fhir.Content(edited));
                Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
                Assert.Contains($"Measure.group[{edited.Group.Count - 1}]", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                Assert.Equal((1, 1), Mine(await EvaluateAsync("periodStart=2025&periodEnd=2025"), "VarV-1"));
            }
        }
        finally
        {
            original.Meta = null;
            Assert.Equal(HttpStatusCode.OK, (await _client.PutAsync("/fhir/Measure/nip-coverage", Fhir.Content(original))).StatusCode);
        }
    }

    /// <summary>A group's denominator and numerator among this test's townships.</summary>
    private (int, int) Mine(MeasureReport report, string dose)
    {
        var strata = report.Group.Single(g => g.Code!.Text!.StartsWith(dose + " ", StringComparison.Ordinal)).Stratifier.Single().Stratum
            .Where(s => s.Value!.Text == Baisha || s.Value.Text == Longquan).ToList();
        return (strata.Sum(s => s.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count ?? 0),
            strata.Sum(s => s.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count ?? 0));
    }

    private static MeasureReport.StratifierGroupComponent Stratum(MeasureReport report, string dose, string township) =>
        report.Group.Single(g => g.Code!.Text!.StartsWith(dose + " ", StringComparison.Ordinal)).Stratifier.Single().Stratum.Single(s => s.Value!.Text == township);

    private async Task<MeasureReport> EvaluateAsync(string query)
    {
        var response = await _client.GetAsync($"/fhir/Measure/nip-coverage/$evaluate-measure?{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await Fhir.Read<MeasureReport>(response);
    }

    private async Task TownshipsAsync()
    {
        foreach (var township in new[] { Baisha, Longquan })
        {
            var organization = new Organization { Id = township.Split('/')[1], Name = township, Type = [new CodeableConcept(TownshipResidents.Ws218System, "C220")] };
            Assert.True((await _client.PutAsync($"/fhir/{township}", Fhir.Content(organization))).IsSuccessStatusCode);
        }
    }

    private async Task<string> ChildAsync(string township, string born)
    {
        var patient = new Patient { BirthDate = born, ManagingOrganization = new ResourceReference(township) };
        var response = await _client.PostAsync("/fhir/Patient", Fhir.Content(patient));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return $"Patient/{(await Fhir.Read<Patient>(response)).Id}";
    }

    private async Task DoseAsync(string child, string vaccine, string given, int? number,
        Immunization.ImmunizationStatusCodes status = Immunization.ImmunizationStatusCodes.Completed, bool subpotent = false)
    {
        var dose = new Immunization
        {
            Status = status,
            IsSubpotent = subpotent ? true : null,
            VaccineCode = new CodeableConcept(Qxvac, vaccine),
            Patient = new ResourceReference(child),
            Occurrence = new FhirDateTime(given),
        };
        if (number is { } n)
        {
            dose.ProtocolApplied.Add(new Immunization.ProtocolAppliedComponent { DoseNumber = new PositiveInt(n) });
        }

        Assert.Equal(HttpStatusCode.Created, (await _client.PostAsync("/fhir/Immunization", Fhir.Content(dose))).StatusCode);
    }
}

public sealed class NipCoverageTestsOnSqlite(SqliteHub hub) : NipCoverageTests(hub), IClassFixture<SqliteHub>;

public sealed class NipCoverageTestsOnPostgres(PostgresHub hub) : NipCoverageTests(hub), IClassFixture<PostgresHub>;
