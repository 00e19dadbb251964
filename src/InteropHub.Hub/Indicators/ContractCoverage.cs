using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <param name="Start">First instant of the period.</param>
/// <param name="End">First instant after the period.</param>
/// <param name="Organization">Only the residents this township centre manages, <c>Organization/{id}</c>; null for every township.</param>
public sealed record ContractCoverageRequest(DateTimeOffset Start, DateTimeOffset End, string? Organization);

/// <summary>
/// Family-doctor contract coverage (家庭医生签约覆盖率, DOMAIN.md §3) per township as a summary <c>MeasureReport</c> of
/// <c>Measure/contract-coverage</c>:
/// <list type="bullet">
/// <item>denominator: the residents, i.e. the Patients whose records a township keeps (<c>managingOrganization</c>, as the
/// township health records set it: the township or community health centre, or a village clinic of it) who are active
/// (a record retired by a merge is not: no duplicates), born by the end of the period and not dead before its start;</item>
/// <item>numerator: those of them with a family-doctor contract (EpisodeOfCare of type <c>family-doctor-contract</c>, not
/// entered in error) in force on some day of the period;</item>
/// <item>stratified by township (the centre the resident's managing organisation is or belongs to), and the numerator by key population (the
/// contract's <c>key-population</c> flags: the plans' census figures for those groups are not in the hub's data).</item>
/// </list>
/// Days are China Standard Time.
/// </summary>
public sealed class ContractCoverage(IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/contract-coverage";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/contract-coverage";
    public const string ContractType = "family-doctor-contract";
    public const string KeyPopulationExtension = "urn:interophub:ext:key-population";

    /// <summary>The health-organisation classes of WS 218 (卫生机构分类代码) on Organization.type.</summary>
    public const string Ws218System = "urn:interophub:cs:ws218";
    private const string PopulationSystem = "http://terminology.hl7.org/CodeSystem/measure-population";
    private static readonly TimeSpan China = TimeSpan.FromHours(8);

    public async Task<MeasureReport> HandleAsync(ContractCoverageRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var firstDay = DateOnly.FromDateTime(request.Start.ToOffset(China).DateTime);
        var lastDay = DateOnly.FromDateTime(request.End.AddTicks(-1).ToOffset(China).DateTime);

        var townships = await TownshipCentresAsync(now, ct);

        // Resident → township.
        var residents = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Patient", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not Patient patient || patient.Active == false
                || patient.ManagingOrganization?.Reference is not { } manager || !townships.TryGetValue(manager, out var township)
                || request.Organization is { } organization && organization != township
                || Day(patient.BirthDate) > lastDay || DiedBefore(patient, firstDay))
            {
                continue;
            }

            residents[$"Patient/{stored.Id}"] = township;
        }

        // Covered resident → the key populations their contracts in force name.
        var covered = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("EpisodeOfCare", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not EpisodeOfCare contract || !IsContract(contract)
                || contract.Status == EpisodeOfCare.EpisodeOfCareStatus.EnteredInError
                || contract.Patient?.Reference is not { } patient || !residents.ContainsKey(patient)
                || Day(contract.Period?.Start) is not { } start || start > lastDay || Day(contract.Period?.End, last: true) < firstDay)
            {
                continue;
            }

            var groups = covered.TryGetValue(patient, out var had) ? had : covered[patient] = new HashSet<string>(StringComparer.Ordinal);
            groups.UnionWith(contract.Extension.Where(e => e.Url == KeyPopulationExtension).Select(e => (e.Value as Coding)?.Code).OfType<string>());
        }

        var report = new MeasureReport
        {
            Status = MeasureReport.MeasureReportStatus.Complete,
            Type = MeasureReport.MeasureReportType.Summary,
            Measure = MeasureUrl,
            DateElement = new FhirDateTime(now),
            Period = new Period(new FhirDateTime(request.Start), new FhirDateTime(request.End.AddTicks(-1))),
        };
        if (request.Organization is { } subject)
        {
            report.Subject = new ResourceReference(subject);
        }

        var group = new MeasureReport.GroupComponent
        {
            Code = new CodeableConcept(GroupSystem, "contract-coverage", "家庭医生签约覆盖率"),
            Population = Populations(residents.Count, covered.Count),
            MeasureScore = Score(covered.Count, residents.Count),
        };
        group.Stratifier.Add(new MeasureReport.StratifierComponent
        {
            Code = [new CodeableConcept(GroupSystem, "township", "乡镇")],
            Stratum = residents.GroupBy(r => r.Value, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(township =>
            {
                var count = township.Count();
                var signed = township.Count(r => covered.ContainsKey(r.Key));
                return new MeasureReport.StratifierGroupComponent
                {
                    Value = new CodeableConcept { Text = township.Key },
                    Population = [.. Populations(count, signed).Select(p => new MeasureReport.StratifierGroupPopulationComponent { Code = p.Code, Count = p.Count })],
                    MeasureScore = Score(signed, count),
                };
            }).ToList(),
        });
        group.Stratifier.Add(new MeasureReport.StratifierComponent
        {
            Code = [new CodeableConcept(GroupSystem, "key-population", "重点人群")],
            Stratum = covered.Values.SelectMany(g => g).GroupBy(g => g, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new MeasureReport.StratifierGroupComponent
                {
                    Value = new CodeableConcept("urn:interophub:cs:key-population", g.Key),
                    Population = [new MeasureReport.StratifierGroupPopulationComponent { Code = new CodeableConcept(PopulationSystem, "numerator"), Count = g.Count() }],
                })
                .ToList(),
        });
        report.Group.Add(group);
        return report;
    }

    /// <summary>
    /// Each organisation that keeps residents' records for a township, with its township centre: a community or township
    /// health centre (WS 218 class C) itself, a village clinic through <c>partOf</c>. A hospital manages no residents here.
    /// </summary>
    private async Task<Dictionary<string, string>> TownshipCentresAsync(DateTimeOffset now, CancellationToken ct)
    {
        var parents = new Dictionary<string, string?>(StringComparer.Ordinal);
        var centres = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Organization", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not Organization organization)
            {
                continue;
            }

            var reference = $"Organization/{stored.Id}";
            parents[reference] = organization.PartOf?.Reference;
            if (organization.Type.Any(t => t.Coding.Any(c => c.System == Ws218System && c.Code?.StartsWith('C') == true)))
            {
                centres.Add(reference);
            }
        }

        var townships = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var organization in parents.Keys)
        {
            // Up the partOf chain to the first centre (a few steps; a cycle ends it).
            var at = organization;
            for (var step = 0; at is not null && step < 8; step++)
            {
                if (centres.Contains(at))
                {
                    townships[organization] = at;
                    break;
                }

                at = parents.GetValueOrDefault(at);
            }
        }

        return townships;
    }

    private static bool IsContract(EpisodeOfCare episode) => episode.Type.Any(t => t.Coding.Any(c => c.Code == ContractType));

    private static List<MeasureReport.PopulationComponent> Populations(int residents, int covered) =>
    [
        new() { Code = new CodeableConcept(PopulationSystem, "initial-population"), Count = residents },
        new() { Code = new CodeableConcept(PopulationSystem, "denominator"), Count = residents },
        new() { Code = new CodeableConcept(PopulationSystem, "numerator"), Count = covered },
    ];

    private static Quantity? Score(int numerator, int denominator) =>
        denominator == 0 ? null : new Quantity(Math.Round((decimal)numerator / denominator, 4), "1");

    private static bool DiedBefore(Patient patient, DateOnly day) => patient.Deceased switch
    {
        FhirBoolean { Value: true } => true,
        FhirDateTime died => Day(died.Value) is not { } date || date < day,
        _ => false,
    };

    /// <summary>The day of a FHIR date or dateTime, in China Standard Time; null when absent or unreadable.</summary>
    /// <param name="last">A year or a month stands for its last day (an end), else for its first.</param>
    private static DateOnly? Day(string? value, bool last = false)
    {
        if (string.IsNullOrEmpty(value) || !FhirDateTime.IsValidValue(value))
        {
            return null;
        }

        if (value.Length <= 10)
        {
            var first = DateOnly.ParseExact(value.Length == 4 ? value + "-01-01" : value.Length == 7 ? value + "-01" : value, "yyyy-MM-dd", CultureInfo.InvariantCulture);
            return !last ? first : value.Length == 4 ? first.AddYears(1).AddDays(-1) : value.Length == 7 ? first.AddMonths(1).AddDays(-1) : first;
        }

        return DateOnly.FromDateTime(new FhirDateTime(value).ToDateTimeOffset(China).ToOffset(China).DateTime);
    }
}
