using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// Family-doctor contract coverage (家庭医生签约覆盖率, DOMAIN.md §3) per township as a summary <c>MeasureReport</c> of
/// <c>Measure/contract-coverage</c>:
/// <list type="bullet">
/// <item>denominator: the residents the townships keep records of (<see cref="TownshipResidents"/>);</item>
/// <item>numerator: those of them with a family-doctor contract (EpisodeOfCare of type <c>family-doctor-contract</c>, not
/// entered in error) in force on some day of the period;</item>
/// <item>stratified by township, and the numerator by key population (the contract's <c>key-population</c> flags: the
/// plans' census figures for those groups are not in the hub's data).</item>
/// </list>
/// Days are China Standard Time.
/// </summary>
public sealed class ContractCoverage(TownshipResidents townships, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/contract-coverage";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/contract-coverage";
    public const string ContractType = "family-doctor-contract";
    public const string KeyPopulationExtension = "urn:interophub:ext:key-population";

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var residents = await townships.ReadAsync(request, now.AddTicks(1), ct);

        // Covered resident → the key populations their contracts in force name.
        var covered = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("EpisodeOfCare", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not EpisodeOfCare contract || !IsContract(contract)
                // Entered in error, or cancelled before it started (R4 EpisodeOfCare.status): no contract in force.
                || contract.Status is EpisodeOfCare.EpisodeOfCareStatus.EnteredInError or EpisodeOfCare.EpisodeOfCareStatus.Cancelled
                || contract.Patient?.Reference is not { } record || !residents.TryGetValue(record, out var resident)
                || TownshipResidents.Day(contract.Period?.Start) is not { } start || start > request.LastDay
                || TownshipResidents.Day(contract.Period?.End, last: true) < request.FirstDay)
            {
                continue;
            }

            var patient = resident.Person;
            var groups = covered.TryGetValue(patient, out var had) ? had : covered[patient] = new HashSet<string>(StringComparer.Ordinal);
            groups.UnionWith(contract.Extension.Where(e => e.Url == KeyPopulationExtension).Select(e => (e.Value as Coding)?.Code).OfType<string>());
        }

        var report = ProportionReport.Summary(MeasureUrl, request, now);
        var people = TownshipResidents.People(residents);
        var group = ProportionReport.Group(new CodeableConcept(GroupSystem, "contract-coverage", "家庭医生签约覆盖率"), people.Count, covered.Count);
        group.Stratifier.Add(ProportionReport.ByTownship(new CodeableConcept(GroupSystem, "township", "乡镇"), people, covered.ContainsKey));
        group.Stratifier.Add(new MeasureReport.StratifierComponent
        {
            Code = [new CodeableConcept(GroupSystem, "key-population", "重点人群")],
            Stratum = covered.Values.SelectMany(g => g).GroupBy(g => g, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new MeasureReport.StratifierGroupComponent
                {
                    Value = new CodeableConcept("urn:interophub:cs:key-population", g.Key),
                    Population = [new MeasureReport.StratifierGroupPopulationComponent { Code = ProportionReport.Population("numerator"), Count = g.Count() }],
                })
                .ToList(),
        });
        report.Group.Add(group);
        return report;
    }

    private static bool IsContract(EpisodeOfCare episode) => episode.Type.Any(t => t.Coding.Any(c => c.Code == ContractType));
}
