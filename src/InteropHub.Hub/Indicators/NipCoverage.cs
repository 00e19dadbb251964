using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Hub.Indicators;

/// <summary>
/// Coverage of each dose of the national immunization programme (国家免疫规划疫苗单苗分剂次接种率, DOMAIN.md §3) per
/// township, as a summary <c>MeasureReport</c> of <c>Measure/nip-coverage</c>. The schedule is the stored Measure's data,
/// so a county edits it over FHIR: one group per vaccine and dose, whose code lists the vaccine codes that count and whose
/// extensions give the dose number and the age at which it is due.
/// <list type="bullet">
/// <item>denominator: the residents the townships keep records of (<see cref="TownshipResidents"/>) who are under seven
/// on the period's last day (the programme's ages) and had reached the dose's due age by then;</item>
/// <item>numerator: those with an Immunization of one of the group's codes, completed and given by the period's last
/// day, numbered that dose or a later one (a later dose implies the earlier ones, given perhaps elsewhere), or with
/// that many doses (each dose number once, and the doses without a number);</item>
/// <item>stratified by township.</item>
/// </list>
/// </summary>
public sealed class NipCoverage(IResourceStore store, TownshipResidents townships, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    public const string MeasureId = "nip-coverage";
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/nip-coverage";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/nip-coverage";
    public const string DoseNumberExtension = "https://interophub.dev/fhir/StructureDefinition/nip-dose-number";
    public const string DueAgeExtension = "https://interophub.dev/fhir/StructureDefinition/nip-due-age";

    public async Task<MeasureReport> HandleAsync(IndicatorRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var schedule = await ScheduleAsync(ct);
        var residents = await townships.ReadAsync(request, now.AddTicks(1), ct);
        var children = TownshipResidents.People(residents).Where(r => r.Value.BirthDate is { } born && born > request.LastDay.AddYears(-7)).ToList();

        // Each child's doses given by the end of the period: the vaccine codings and the dose number when stated.
        var inChildren = children.Select(c => c.Key).ToHashSet(StringComparer.Ordinal);
        var doses = new Dictionary<string, List<(List<Coding> Codes, int? Number)>>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Immunization", null, now.AddTicks(1), ct))
        {
            // A subpotent dose (too small an amount, a broken cold chain) is no valid dose of the series (R4 Immunization.isSubpotent).
            if (serializers.ParseStored(stored.Json) is not Immunization dose || dose.Status != Immunization.ImmunizationStatusCodes.Completed || dose.IsSubpotent == true
                || dose.Patient?.Reference is not { } record || residents.GetValueOrDefault(record)?.Person is not { } patient || !inChildren.Contains(patient)
                || TownshipResidents.Day((dose.Occurrence as FhirDateTime)?.Value) is not { } given || given > request.LastDay)
            {
                continue;
            }

            var number = dose.ProtocolApplied.Select(p => (p.DoseNumber as PositiveInt)?.Value).FirstOrDefault(n => n is not null);
            (doses.TryGetValue(patient, out var had) ? had : doses[patient] = []).Add((dose.VaccineCode?.Coding ?? [], number));
        }

        var report = ProportionReport.Summary(MeasureUrl, request, now);
        foreach (var (code, number, dueMonths) in schedule)
        {
            var due = children.Where(c => c.Value.BirthDate!.Value.AddMonths(dueMonths) <= request.LastDay).ToList();
            bool Given(string child)
            {
                var ofVaccine = doses.GetValueOrDefault(child)?.Where(d => d.Codes.Any(c => code.Coding.Any(g => g.System == c.System && g.Code == c.Code))).ToList();
                // Two records of one numbered dose (two sources, two dates) are still one dose; unnumbered ones add up.
                return ofVaccine is { Count: > 0 } && Math.Max(ofVaccine.Max(d => d.Number ?? 0),
                    ofVaccine.Where(d => d.Number is not null).Select(d => d.Number).Distinct().Count() + ofVaccine.Count(d => d.Number is null)) >= number;
            }

            var given = due.Count(c => Given(c.Key));
            var group = ProportionReport.Group(code, due.Count, given);
            group.Stratifier.Add(ProportionReport.ByTownship(new CodeableConcept(GroupSystem, "township", "乡镇"), due, Given));
            report.Group.Add(group);
        }

        return report;
    }

    /// <summary>The stored Measure's groups as (the vaccine codes and the group's name, dose number, due age in months).</summary>
    private async Task<List<(CodeableConcept Code, int Number, int DueMonths)>> ScheduleAsync(CancellationToken ct)
    {
        if (await store.ReadAsync("Measure", MeasureId, ct) is not { IsDeleted: false } stored || serializers.ParseStored(stored.Json) is not Measure measure)
        {
            throw new ResourceNotFoundException($"Measure/{MeasureId} is not stored: it holds the immunization schedule (mappings/measure-nip-coverage.json is loaded at start).");
        }

        return Schedule(measure);
    }

    /// <summary>The schedule a Measure's groups give; a group the evaluation cannot read is a 422 naming it (also when the Measure is written).</summary>
    public static List<(CodeableConcept Code, int Number, int DueMonths)> Schedule(Measure measure)
    {
        var schedule = new List<(CodeableConcept, int, int)>();
        for (var i = 0; i < measure.Group.Count; i++)
        {
            var group = measure.Group[i];
            var age = group.GetExtensionValue<Quantity>(DueAgeExtension);
            var months = age is { System: "http://unitsofmeasure.org", Value: { } value } ? age.Code switch { "mo" => value, "a" => value * 12, _ => -1m } : -1m;
            if (group.Code is not { Coding.Count: > 0 } code
                || group.GetExtensionValue<Integer>(DoseNumberExtension)?.Value is not { } number || number < 1
                || months < 0 || months >= 84 || months != decimal.Truncate(months))
            {
                throw new BusinessRuleException(
                    $"Measure/{MeasureId} cannot be evaluated: group {i} needs a code with the vaccine codes, a dose number of 1 or more ({DoseNumberExtension}) " +
                    $"and a due age under seven years in whole months ({DueAgeExtension}, UCUM mo or a).",
                    $"Measure.group[{i}]");
            }

            schedule.Add((code, number, (int)months));
        }

        return schedule;
    }
}
