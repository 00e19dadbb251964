using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// The maternal-care indicators of DOMAIN.md §3 per township, as a summary <c>MeasureReport</c> of
/// <c>Measure/maternal-care</c>. The denominator of every group is the deliveries of the period: the pregnancies
/// (EpisodeOfCare of type pregnancy, not entered in error) of the residents the townships keep records of
/// (<see cref="TownshipResidents"/>) that ended in a birth (outcome 1 live birth or 2 stillbirth) on a day of the period.
/// The numerators:
/// <list type="bullet">
/// <item><c>early-registration</c> (早孕建册率): registered before 13 weeks, by the gestational age (LOINC 11884-4)
/// recorded at the registration visit;</item>
/// <item><c>antenatal-5</c> (产前检查≥5次率): at least five antenatal visits, the registration visit included;</item>
/// <item><c>postpartum-42</c> (产后42天健康检查率): a 42-day postpartum check;</item>
/// <item><c>hospital-delivery</c> (住院分娩率): delivered in an institution (a delivery organisation recorded).</item>
/// </list>
/// Stratified by township. The pregnancy, its visits and outcome are the township export's (township-export.md §3.6–3.7):
/// visits are finished Encounters of the episode whose type (<c>urn:interophub:cs:qx-phs-visit</c>) is
/// maternal_registrations, AN or PP42.
/// </summary>
public sealed class MaternalCare(TownshipResidents townships, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureId = "maternal-care";
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/maternal-care";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/maternal-care";
    public const string PregnancyType = "pregnancy";
    public const string OutcomeExtension = "urn:interophub:ext:pregnancy-outcome";
    public const string DeliveryOrganizationExtension = "urn:interophub:ext:delivery-organization";
    private const string GestationalAge = "11884-4";
    private static readonly byte[] EpisodeMarker = "\"episodeOfCare\""u8.ToArray();

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var residents = await townships.ReadAsync(request, now.AddTicks(1), ct);

        // The deliveries of the period: pregnancy → the mother (as a resident) and whether she delivered in an institution.
        var deliveries = new Dictionary<string, (Resident Mother, bool InInstitution)>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("EpisodeOfCare", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not EpisodeOfCare pregnancy || pregnancy.Status == EpisodeOfCare.EpisodeOfCareStatus.EnteredInError
                || !pregnancy.Type.Any(t => t.Coding.Any(c => c.Code == PregnancyType))
                || pregnancy.Patient?.Reference is not { } mother || !residents.TryGetValue(mother, out var resident)
                || pregnancy.GetExtensionValue<Coding>(OutcomeExtension)?.Code is not ("1" or "2")
                || TownshipResidents.Day(pregnancy.Period?.End) is not { } delivered || delivered < request.FirstDay || delivered > request.LastDay)
            {
                continue;
            }

            deliveries[$"EpisodeOfCare/{stored.Id}"] = (resident, pregnancy.GetExtensionValue<ResourceReference>(DeliveryOrganizationExtension) is not null);
        }

        // Their visits: antenatal ones counted, the 42-day checks, and the registration visits (where the gestational age is).
        var antenatal = new Dictionary<string, int>(StringComparer.Ordinal);
        var checkedAt42Days = new HashSet<string>(StringComparer.Ordinal);
        var registrationVisits = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Encounter", null, now.AddTicks(1), ct))
        {
            // Only visits that belong to an episode of care are parsed (a county holds millions of hospital visits).
            if (stored.Json.AsSpan().IndexOf(EpisodeMarker) < 0
                || serializers.ParseStored(stored.Json) is not Encounter { Status: Encounter.EncounterStatus.Finished } visit
                || visit.EpisodeOfCare.Select(e => e.Reference).OfType<string>().FirstOrDefault(deliveries.ContainsKey) is not { } pregnancy)
            {
                continue;
            }

            switch (visit.Type.SelectMany(t => t.Coding).FirstOrDefault(c => c.System == TownshipResidents.PublicHealthVisitSystem)?.Code)
            {
                case "maternal_registrations":
                    registrationVisits[$"Encounter/{stored.Id}"] = pregnancy;
                    antenatal[pregnancy] = antenatal.GetValueOrDefault(pregnancy) + 1;
                    break;
                case "AN":
                    antenatal[pregnancy] = antenatal.GetValueOrDefault(pregnancy) + 1;
                    break;
                case "PP42":
                    checkedAt42Days.Add(pregnancy);
                    break;
            }
        }

        var early = new HashSet<string>(StringComparer.Ordinal);
        var marker = Encoding.UTF8.GetBytes(GestationalAge);
        await foreach (var stored in scanner.ScanAsync("Observation", null, now.AddTicks(1), ct))
        {
            // Only the gestational ages are parsed (a county holds millions of other observations).
            if (stored.Json.AsSpan().IndexOf(marker) < 0 || serializers.ParseStored(stored.Json) is not Observation observation
                || observation.Status is ObservationStatus.EnteredInError or ObservationStatus.Cancelled
                || !observation.Code.Coding.Any(c => c.System == "http://loinc.org" && c.Code == GestationalAge)
                || observation.Encounter?.Reference is not { } encounter || !registrationVisits.TryGetValue(encounter, out var pregnancy)
                || observation.Value is not Quantity { Value: { } age } quantity)
            {
                continue;
            }

            var days = quantity.Code switch { "wk" => age * 7, "d" => age, _ => (decimal?)null };
            if (days < 13 * 7)
            {
                early.Add(pregnancy);
            }
        }

        var report = ProportionReport.Summary(MeasureUrl, request, now);
        var denominator = deliveries.Select(d => KeyValuePair.Create(d.Key, d.Value.Mother)).ToList();
        foreach (var (code, display, met) in new (string, string, Func<string, bool>)[]
        {
            ("early-registration", "早孕建册率", early.Contains),
            ("antenatal-5", "产前检查≥5次率", p => antenatal.GetValueOrDefault(p) >= 5),
            ("postpartum-42", "产后42天健康检查率", checkedAt42Days.Contains),
            ("hospital-delivery", "住院分娩率", p => deliveries[p].InInstitution),
        })
        {
            var group = ProportionReport.Group(new CodeableConcept(GroupSystem, code, display), denominator.Count, denominator.Count(d => met(d.Key)));
            group.Stratifier.Add(ProportionReport.ByTownship(new CodeableConcept(GroupSystem, "township", "乡镇"), denominator, met));
            report.Group.Add(group);
        }

        return report;
    }
}
