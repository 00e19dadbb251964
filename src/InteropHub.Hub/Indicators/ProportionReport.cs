using Hl7.Fhir.Model;

namespace InteropHub.Hub.Indicators;

/// <summary>The parts of a summary MeasureReport of a proportion per township (the plans' coverage indicators).</summary>
public static class ProportionReport
{
    private const string PopulationSystem = "http://terminology.hl7.org/CodeSystem/measure-population";

    public static MeasureReport Summary(string measureUrl, IndicatorRequest request, DateTimeOffset now) => new()
    {
        Status = MeasureReport.MeasureReportStatus.Complete,
        Type = MeasureReport.MeasureReportType.Summary,
        Measure = measureUrl,
        DateElement = new FhirDateTime(now),
        Period = new Period(new FhirDateTime(request.Start), new FhirDateTime(request.End.AddTicks(-1))),
        Subject = request.Township is { } township ? new ResourceReference(township) : null,
    };

    /// <summary>A group's initial population and denominator (the same people) and its numerator, with the score.</summary>
    public static MeasureReport.GroupComponent Group(CodeableConcept code, int denominator, int numerator) => new()
    {
        Code = code,
        Population =
        [
            new() { Code = Population("initial-population"), Count = denominator },
            new() { Code = Population("denominator"), Count = denominator },
            new() { Code = Population("numerator"), Count = numerator },
        ],
        MeasureScore = Score(numerator, denominator),
    };

    /// <summary>The group's proportion per township: <paramref name="denominator"/> by their township, <paramref name="inNumerator"/> of each.</summary>
    public static MeasureReport.StratifierComponent ByTownship(CodeableConcept code, IEnumerable<KeyValuePair<string, Resident>> denominator,
        Func<string, bool> inNumerator) => By(code, denominator.Select(r => (r.Key, r.Value.Township)), inNumerator);

    /// <summary>The group's proportion per stratum (a reference, as the stratum's text): <paramref name="inNumerator"/> of each item.</summary>
    public static MeasureReport.StratifierComponent By(CodeableConcept code, IEnumerable<(string Item, string Stratum)> denominator,
        Func<string, bool> inNumerator) => new()
    {
        Code = [code],
        Stratum = denominator.GroupBy(r => r.Stratum, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(stratum =>
        {
            var count = stratum.Count();
            var met = stratum.Count(r => inNumerator(r.Item));
            return new MeasureReport.StratifierGroupComponent
            {
                Value = new CodeableConcept { Text = stratum.Key },
                Population =
                [
                    new() { Code = Population("initial-population"), Count = count },
                    new() { Code = Population("denominator"), Count = count },
                    new() { Code = Population("numerator"), Count = met },
                ],
                MeasureScore = Score(met, count),
            };
        }).ToList(),
    };

    public static CodeableConcept Population(string code) => new(PopulationSystem, code);

    private static Quantity? Score(int numerator, int denominator) =>
        denominator == 0 ? null : new Quantity(Math.Round((decimal)numerator / denominator, 4), "1");
}
