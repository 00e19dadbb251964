using Hl7.Fhir.Model;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Server.Tests;

/// <summary>
/// A first start loads the demo county: the organisations of <c>seeds/</c> and every legacy sample file through the
/// adapters. What the hub then holds is what "What a correct hub ends up with" of the samples README lists.
/// </summary>
public abstract class DemoCountyTests(HubFactory hub) : IDisposable
{
    private readonly HubFactory _county = hub.Restarted(loadSeeds: true);

    public void Dispose()
    {
        _county.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task<List<T>> AllAsync<T>(string query) where T : Resource
    {
        var client = _county.CreateClient();
        var found = new List<T>();
        string? next = $"/fhir/{query}{(query.Contains('?', StringComparison.Ordinal) ? "&" : "?")}_count=100";
        while (next is not null)
        {
            var page = await Fhir.Read<Bundle>(await client.GetAsync(next));
            found.AddRange(page.Entry.Select(e => e.Resource).OfType<T>());
            next = page.Link.FirstOrDefault(l => l.Relation == "next")?.Url;
        }

        return found;
    }

    [Fact]
    public async Task The_demo_county_holds_43_persons_with_the_merged_record_retired_into_its_survivor()
    {
        var patients = await AllAsync<Patient>("Patient");

        var retired = Assert.Single(patients, p => p.Active == false);
        Assert.Equal(43, patients.Count(p => p.Active != false));
        var survivor = retired.Link.Single(l => l.Type == Patient.LinkType.ReplacedBy).Other!.Reference;
        Assert.Contains(patients, p => $"Patient/{p.Id}" == survivor && p.Link.Any(l => l.Type == Patient.LinkType.Replaces));
    }

    [Fact]
    public async Task No_probable_match_pair_is_left_in_the_demo_county_once_the_A40_merged_the_second_MRN()
    {
        var response = await _county.CreateClient().GetAsync("/adapters/probable-matches");
        var list = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(43, list.GetProperty("scanned").GetInt32());
        Assert.Equal(0, list.GetProperty("pairs").GetArrayLength());
    }

    [Fact]
    public async Task The_demo_county_persons_are_found_by_the_ethnicity_the_adapters_recorded()
    {
        const string Gb3304 = "urn:oid:2.16.156.10011.2.3.3.3";
        var patients = await AllAsync<Patient>("Patient");
        var han = patients.Where(p => p.GetExtensionValue<Coding>("https://interophub.dev/fhir/StructureDefinition/ethnicity") is { System: Gb3304, Code: "01" })
            .Select(p => p.Id).Order().ToList();

        // The ethnicity parameter ships in profiles/ and re-indexes what the first start stored: until that finishes a
        // search by it is a 400 saying so.
        var client = _county.CreateClient();
        for (var attempt = 0; attempt < 300 && (await client.GetAsync($"/fhir/Patient?ethnicity={Gb3304}|01")).StatusCode != System.Net.HttpStatusCode.OK; attempt++)
        {
            await Task.Delay(100);
        }

        var found = await AllAsync<Patient>($"Patient?ethnicity={Gb3304}|01");

        Assert.True(han.Count > 10, $"{han.Count} Han persons in the demo county");
        Assert.Equal(han, found.Select(p => p.Id).Order());
    }

    [Fact]
    public async Task A_birth_dose_reported_by_the_HIS_and_then_the_certificate_keeps_what_only_the_HIS_said()
    {
        var client = _county.CreateClient();

        var dose = await Fhir.Read<Immunization>(await client.GetAsync("/fhir/Immunization/8016824ffbe2eb444fa7873bcf695364"));

        // Written again after the HIS (by the township export and the certificate), and still with what only the HIS said.
        Assert.True(int.Parse(dose.Meta!.VersionId!, System.Globalization.CultureInfo.InvariantCulture) >= 2, $"version {dose.Meta.VersionId}");
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
        Assert.NotNull(dose.Route);
        Assert.NotNull(dose.Site);
        // The hospital gave it (RXA-9 00); the township's and the certificate's transcriptions of it do not make it second hand.
        Assert.True(dose.PrimarySource);
        Assert.Null(dose.ReportOrigin);
    }

    [Fact]
    public async Task The_demo_county_reports_the_plans_indicators_per_township_from_the_adapters_records()
    {
        var client = _county.CreateClient();

        var report = await Fhir.Read<MeasureReport>(await client.GetAsync("/fhir/Measure/contract-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025"));

        // 白沙镇卫生院 and its village clinics keep 29 residents' records (a mother whose certificate the hospital reissued
        // among them); 15 have a contract in force in 2025 (township batches 001–002).
        var baisha = report.Group.Single().Stratifier.Single(s => s.Code[0].Coding[0].Code == "township").Stratum
            .Single(s => s.Value!.Text == "Organization/QX2110026");
        Assert.Equal([("initial-population", (int?)29), ("denominator", 29), ("numerator", 15)], baisha.Population.Select(p => (p.Code!.Coding[0].Code, p.Count)));
        Assert.Equal(15m / 29m, baisha.MeasureScore!.Value!.Value, 4);

        // Seven of 白沙's residents are under seven at the end of 2025; the four born in 2024–2025 have their first HepB dose
        // on record (the older ones' early doses predate the exported records). The newborns no township keeps yet are not counted.
        var nip = await Fhir.Read<MeasureReport>(await client.GetAsync("/fhir/Measure/nip-coverage/$evaluate-measure?periodStart=2025&periodEnd=2025"));
        var hepB = nip.Group.Single(g => g.Code!.Text!.StartsWith("HepB-1 ", StringComparison.Ordinal));
        Assert.Equal([("Organization/QX2110026", 7, 4)], hepB.Stratifier.Single().Stratum
            .Select(s => (s.Value!.Text, s.Population.Single(p => p.Code!.Coding[0].Code == "denominator").Count, s.Population.Single(p => p.Code!.Coding[0].Code == "numerator").Count)));

        // 白沙 follows up seven hypertension patients; one had four follow-ups in 2025 (township batches 001–002).
        var chronic = await Fhir.Read<MeasureReport>(await client.GetAsync("/fhir/Measure/chronic-disease-management/$evaluate-measure?periodStart=2025&periodEnd=2025&subject=Organization/QX2110026"));
        var hypertension = chronic.Group.Single(g => g.Code!.Coding[0].Code == "hypertension");
        Assert.Equal([("denominator", (int?)7), ("numerator", 1)], hypertension.Population.Skip(1).Select(p => (p.Code!.Coding[0].Code, p.Count)));

        // Three of 白沙's registered pregnancies ended in a hospital delivery in 2025, all registered early and seen five
        // times before; two have had their 42-day check.
        var maternal = await Fhir.Read<MeasureReport>(await client.GetAsync("/fhir/Measure/maternal-care/$evaluate-measure?periodStart=2025&periodEnd=2025&subject=Organization/QX2110026"));
        Assert.Equal([("early-registration", 1m), ("antenatal-5", 1m), ("postpartum-42", 0.6667m), ("hospital-delivery", 1m)],
            maternal.Group.Select(g => (g.Code!.Coding[0].Code, g.MeasureScore!.Value!.Value)));

        // The HIS samples' visits of 2025: twelve consultations, two of them at township centres.
        var share = await Fhir.Read<MeasureReport>(await client.GetAsync("/fhir/Measure/primary-care-share/$evaluate-measure?periodStart=2025&periodEnd=2025"));
        Assert.Equal([("denominator", (int?)12), ("numerator", 2)], share.Group.Single().Population.Skip(1).Select(p => (p.Code!.Coding[0].Code, p.Count)));
    }

    [Fact]
    public async Task The_demo_county_holds_the_three_referrals_in_their_final_states()
    {
        var tasks = await AllAsync<FhirTask>("Task");

        Assert.Equal(3, (await AllAsync<ServiceRequest>("ServiceRequest")).Count);
        Assert.Equal(
            new[] { FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.Cancelled, FhirTask.TaskStatus.Completed },
            tasks.Select(t => t.Status!.Value).Order());
    }

    [Fact]
    public async Task The_demo_county_holds_36_immunizations_8_certificates_and_one_mother_for_each_of_7_newborns()
    {
        var documents = await AllAsync<DocumentReference>("DocumentReference");
        var mothers = await AllAsync<RelatedPerson>("RelatedPerson?relationship=MTH");

        Assert.Equal(36, (await AllAsync<Immunization>("Immunization")).Count);
        Assert.Equal(8, documents.Count);
        Assert.Equal(7, documents.Count(d => d.Status == DocumentReferenceStatus.Current));
        // One mother per newborn, though the HIS (NK1) and the certificate both name her.
        Assert.Equal(7, mothers.Count);
        Assert.Equal(7, mothers.Select(m => m.Patient!.Reference).Distinct().Count());
        // The certificate, applied last, keeps the phone only the HIS gave and adds the address.
        var wang = Assert.Single(mothers, m => m.Name[0].Text == "王秀英");
        Assert.Equal("13900003344", Assert.Single(wang.Telecom).Value);
        Assert.Contains("新塘村5组8号", Assert.Single(wang.Address).Text, StringComparison.Ordinal);
    }
}

public sealed class DemoCountyTestsOnSqlite(SqliteHub hub) : DemoCountyTests(hub), IClassFixture<SqliteHub>;

public sealed class DemoCountyTestsOnPostgres(PostgresHub hub) : DemoCountyTests(hub), IClassFixture<PostgresHub>;
