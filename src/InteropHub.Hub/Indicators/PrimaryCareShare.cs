using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// The share of visits at primary institutions (基层就诊率, DOMAIN.md §3) as a summary <c>MeasureReport</c> of
/// <c>Measure/primary-care-share</c>:
/// <list type="bullet">
/// <item>denominator: the visits of the period, i.e. Encounters begun on a day of it, not planned, cancelled or entered
/// in error, at an institution the hub knows (<c>serviceProvider</c>), leaving out the public-health service visits of
/// the township export (follow-ups, antenatal visits, check-ups: type <c>urn:interophub:cs:qx-phs-visit</c>), which are
/// not consultations;</item>
/// <item>numerator: those at a primary institution (township or community health centre, clinic, village clinic:
/// <see cref="TownshipResidents.InstitutionsAsync"/>);</item>
/// <item>stratified by the township whose records hold the patient (visits of other patients count in the whole only);
/// with a subject, only that township's residents' visits.</item>
/// </list>
/// </summary>
public sealed class PrimaryCareShare(TownshipResidents townships, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureId = "primary-care-share";
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/primary-care-share";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/primary-care-share";
    private static readonly byte[] ServiceProvider = "\"serviceProvider\""u8.ToArray();

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var institutions = await townships.InstitutionsAsync(now.AddTicks(1), ct);
        var residents = await townships.ReadAsync(request, institutions, now.AddTicks(1), ct);

        var visits = new List<(string Visit, string? Patient, bool Primary)>();
        await foreach (var stored in scanner.ScanAsync("Encounter", null, now.AddTicks(1), ct))
        {
            if (stored.Json.AsSpan().IndexOf(ServiceProvider) < 0 || serializers.ParseStored(stored.Json) is not Encounter visit
                || visit.Status is Encounter.EncounterStatus.Planned or Encounter.EncounterStatus.Cancelled or Encounter.EncounterStatus.EnteredInError
                    or Encounter.EncounterStatus.Unknown or null
                || visit.Type.Any(t => t.Coding.Any(c => c.System == TownshipResidents.PublicHealthVisitSystem))
                || visit.ServiceProvider?.Reference is not { } provider || !institutions.TryGetValue(provider, out var institution)
                || TownshipResidents.Day(visit.Period?.Start) is not { } day || day < request.FirstDay || day > request.LastDay)
            {
                continue;
            }

            var patient = visit.Subject?.Reference;
            if (request.Township is null || patient is not null && residents.ContainsKey(patient))
            {
                visits.Add(($"Encounter/{stored.Id}", patient, institution.Primary));
            }
        }

        var primary = visits.Where(v => v.Primary).Select(v => v.Visit).ToHashSet(StringComparer.Ordinal);
        var report = ProportionReport.Summary(MeasureUrl, request, now);
        var group = ProportionReport.Group(new CodeableConcept(GroupSystem, "primary-care-share", "基层就诊率"), visits.Count, primary.Count);
        var ofResidents = visits.Where(v => v.Patient is not null && residents.ContainsKey(v.Patient))
            .Select(v => KeyValuePair.Create(v.Visit, residents[v.Patient!])).ToList();
        group.Stratifier.Add(ProportionReport.ByTownship(new CodeableConcept(GroupSystem, "township", "乡镇"), ofResidents, primary.Contains));
        report.Group.Add(group);
        return report;
    }
}
