using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Hub.ResultRecognition;

/// <summary>How far the recognition of an item reaches (互认范围).</summary>
public enum RecognitionScope
{
    /// <summary>Within the county health community (医共体): the same county.</summary>
    Community,

    /// <summary>Within the county (县域).</summary>
    County,

    /// <summary>Within the prefecture-level city (市域).</summary>
    City,
}

/// <summary>One catalogue entry: which results of an item are recognised, for how long, from whom.</summary>
public sealed record RecognitionItem(
    string Code,
    string? Loinc,
    string Display,
    int ValidityDays,
    int MinimumLevel,
    RecognitionScope Scope,
    DateTimeOffset? EffectiveFrom,
    DateTimeOffset? EffectiveTo);

/// <summary>
/// The recognition catalogue, read from the <c>CodeSystem</c> kept in <c>mappings/result-recognition.json</c>
/// (one concept per item, rule values as concept properties), so the county can change it as data.
/// </summary>
public sealed class RecognitionCatalogue
{
    public const string CodeSystemUrl = "https://interophub.dev/fhir/CodeSystem/result-recognition";
    private const string Loinc = "http://loinc.org";

    private readonly Dictionary<string, RecognitionItem> _byLocal;
    private readonly Dictionary<string, RecognitionItem> _byLoinc;

    private RecognitionCatalogue(IReadOnlyList<RecognitionItem> items)
    {
        Items = items;
        _byLocal = items.ToDictionary(i => i.Code, StringComparer.Ordinal);
        _byLoinc = items.Where(i => i.Loinc is not null).ToDictionary(i => i.Loinc!, StringComparer.Ordinal);
    }

    public IReadOnlyList<RecognitionItem> Items { get; }

    /// <summary>Reads the catalogue; a concept missing a rule value is refused with its code named.</summary>
    public static RecognitionCatalogue FromCodeSystem(CodeSystem codeSystem)
    {
        var items = new List<RecognitionItem>();
        foreach (var concept in codeSystem.Concept)
        {
            string where = $"CodeSystem.concept[code={concept.Code}]";
            var code = concept.Code ?? throw new InvalidInputException("A recognition item needs a code.", "CodeSystem.concept");
            items.Add(new RecognitionItem(
                code,
                Property<Code>(concept, "loinc")?.Value,
                concept.Display ?? code,
                Property<Integer>(concept, "validity-days")?.Value ?? throw new InvalidInputException("A recognition item needs validity-days.", where),
                Property<Integer>(concept, "minimum-level")?.Value ?? throw new InvalidInputException("A recognition item needs minimum-level.", where),
                Property<Code>(concept, "scope")?.Value switch
                {
                    "community" => RecognitionScope.Community,
                    "county" => RecognitionScope.County,
                    "city" => RecognitionScope.City,
                    var other => throw new InvalidInputException($"Scope '{other}' is not community, county or city.", where),
                },
                Instant(Property<FhirDateTime>(concept, "effective-from")),
                Instant(Property<FhirDateTime>(concept, "effective-to"))));
        }

        return new RecognitionCatalogue(items);
    }

    /// <summary>
    /// The item a result is coded with: by LOINC, or by the county LIS code the catalogue lists (<see cref="RecognizedResults.LisSystem"/>).
    /// As a FHIR token, a code without a system is either; a code of another system is neither.
    /// </summary>
    public RecognitionItem? Find(IEnumerable<Coding> codes)
    {
        foreach (var coding in codes)
        {
            if (coding.Code is null)
            {
                continue;
            }

            var anySystem = string.IsNullOrEmpty(coding.System);
            if ((anySystem || coding.System == Loinc) && _byLoinc.TryGetValue(coding.Code, out var byLoinc))
            {
                return byLoinc;
            }

            if ((anySystem || coding.System == RecognizedResults.LisSystem) && _byLocal.TryGetValue(coding.Code, out var byLocal))
            {
                return byLocal;
            }
        }

        return null;
    }

    private static T? Property<T>(CodeSystem.ConceptDefinitionComponent concept, string code) where T : DataType =>
        concept.Property.FirstOrDefault(p => p.Code == code)?.Value as T;

    private static DateTimeOffset? Instant(FhirDateTime? value) => value?.ToDateTimeOffset(TimeSpan.FromHours(8));
}
