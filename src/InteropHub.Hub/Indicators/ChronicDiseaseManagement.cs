using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// The standardised management rate of hypertension and type 2 diabetes patients (高血压/2型糖尿病患者规范管理率,
/// DOMAIN.md §3) per township, as a summary <c>MeasureReport</c> of <c>Measure/chronic-disease-management</c> with one
/// group per disease:
/// <list type="bullet">
/// <item>denominator: the residents the townships keep records of (<see cref="TownshipResidents"/>) managed for the
/// disease in the period (年内已管理): a CarePlan of its category (not entered in error) and a follow-up visit in the
/// period;</item>
/// <item>numerator: those of them followed up on at least four days of the period (the national basic public health
/// service's quarterly follow-up), which is meant to be a year;</item>
/// <item>stratified by township.</item>
/// </list>
/// The plan and the visits are the township export's (township-export.md §3.4–3.5): CarePlan category
/// <c>urn:interophub:cs:care-plan</c> hypertension or diabetes, finished Encounters of type
/// <c>urn:interophub:cs:qx-phs-visit</c> followups_hypertension or followups_diabetes.
/// </summary>
public sealed class ChronicDiseaseManagement(TownshipResidents townships, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureId = "chronic-disease-management";
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/chronic-disease-management";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/chronic-disease-management";
    public const string CarePlanCategorySystem = "urn:interophub:cs:care-plan";
    private static readonly byte[] VisitTypeMarker = "qx-phs-visit"u8.ToArray();

    /// <summary>Follow-ups a year that make a patient's management standard.</summary>
    public const int FollowUps = 4;

    private static readonly (string Disease, string Visit, string Display)[] Diseases =
    [
        ("hypertension", "followups_hypertension", "高血压患者规范管理率"),
        ("diabetes", "followups_diabetes", "2型糖尿病患者规范管理率"),
    ];

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var residents = await townships.ReadAsync(request, now.AddTicks(1), ct);

        // Per disease: who has a plan, and the dates of each resident's follow-ups up to the period's end.
        var planned = Diseases.ToDictionary(d => d.Disease, _ => new HashSet<string>(StringComparer.Ordinal), StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("CarePlan", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is CarePlan { Status: not RequestStatus.EnteredInError } plan
                && plan.Subject?.Reference is { } record && residents.GetValueOrDefault(record)?.Person is { } patient)
            {
                foreach (var coding in plan.Category.SelectMany(c => c.Coding).Where(c => c.System == CarePlanCategorySystem && c.Code is not null))
                {
                    planned.GetValueOrDefault(coding.Code!)?.Add(patient);
                }
            }
        }

        // The days each resident was followed up in the period (two visits on one day are one follow-up).
        var visits = Diseases.ToDictionary(d => d.Visit, _ => new Dictionary<string, HashSet<DateOnly>>(StringComparer.Ordinal), StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Encounter", null, now.AddTicks(1), ct))
        {
            // Only the public-health service's visits are parsed (a county holds millions of hospital visits).
            if (stored.Json.AsSpan().IndexOf(VisitTypeMarker) < 0
                || serializers.ParseStored(stored.Json) is not Encounter { Status: Encounter.EncounterStatus.Finished } visit
                || visit.Subject?.Reference is not { } record || residents.GetValueOrDefault(record)?.Person is not { } patient
                || TownshipResidents.Day(visit.Period?.Start) is not { } day || day < request.FirstDay || day > request.LastDay)
            {
                continue;
            }

            foreach (var coding in visit.Type.SelectMany(t => t.Coding).Where(c => c.System == TownshipResidents.PublicHealthVisitSystem && c.Code is not null))
            {
                if (visits.GetValueOrDefault(coding.Code!) is { } byPatient)
                {
                    (byPatient.TryGetValue(patient, out var days) ? days : byPatient[patient] = []).Add(day);
                }
            }
        }

        var report = ProportionReport.Summary(MeasureUrl, request, now);
        foreach (var (disease, visit, display) in Diseases)
        {
            var managed = TownshipResidents.People(residents).Where(r => planned[disease].Contains(r.Key) && visits[visit].ContainsKey(r.Key)).ToList();
            bool Standard(string patient) => visits[visit][patient].Count >= FollowUps;
            var group = ProportionReport.Group(new CodeableConcept(GroupSystem, disease, display), managed.Count, managed.Count(m => Standard(m.Key)));
            group.Stratifier.Add(ProportionReport.ByTownship(new CodeableConcept(GroupSystem, "township", "乡镇"), managed, Standard));
            report.Group.Add(group);
        }

        return report;
    }
}
