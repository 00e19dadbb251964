using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Translate;

/// <summary>
/// What <c>ConceptMap/$translate</c> was asked (conceptmap-operation-translate.html): the codings to translate (from
/// <c>code</c> + <c>system</c>, <c>coding</c> or <c>codeableConcept</c>), which maps (one by id, one given in the
/// request, one by <c>url</c>, or every stored map of the codings' system), and the filters.
/// </summary>
public sealed record TranslateRequest(
    IReadOnlyList<Coding> Codings,
    string? MapId = null,
    ConceptMap? Map = null,
    string? Url = null,
    string? MapVersion = null,
    string? Source = null,
    string? Target = null,
    string? TargetSystem = null,
    bool Reverse = false);

/// <summary>
/// Translates codes with the ConceptMaps stored in the hub (the county's local codes to standard ones, loaded from
/// <c>mappings/</c>). Every target of a matching element is a <c>match</c> with its equivalence, the target as a Coding
/// and the map's url; <c>result</c> is true when one of them is not <c>unmatched</c> or <c>disjoint</c>. With
/// <c>reverse</c>, targets are looked up and their sources returned.
/// </summary>
public sealed class TranslateConcept(IResourceStore store, FhirSerializers serializers, SearchParser parser)
{
    /// <summary>The most ConceptMaps one translation reads when no map is named.</summary>
    private const int MaxMaps = 100;

    public async Task<Parameters> HandleAsync(TranslateRequest request, CancellationToken ct)
    {
        if (request.Codings.Count == 0)
        {
            throw new InvalidInputException("$translate needs the concept to translate: code with system, coding or codeableConcept.", "code");
        }

        foreach (var coding in request.Codings.Where(c => string.IsNullOrEmpty(c.Code) || string.IsNullOrEmpty(c.System)))
        {
            throw new InvalidInputException($"$translate needs each concept's code and system; '{coding.System}|{coding.Code}' lacks one.", "system");
        }

        var matches = new List<Parameters.ParameterComponent>();
        foreach (var map in await MapsAsync(request, ct))
        {
            if ((request.Source is { } source && Canonical(map.Source) != source) || (request.Target is { } target && Canonical(map.Target) != target))
            {
                continue;
            }

            foreach (var group in map.Group)
            {
                var (from, to) = request.Reverse ? (group.Target, group.Source) : (group.Source, group.Target);
                if (request.TargetSystem is { } system && to != system)
                {
                    continue;
                }

                foreach (var coding in request.Codings.Where(c => c.System == from))
                {
                    foreach (var (equivalence, code, display) in Targets(group, coding.Code!, request.Reverse))
                    {
                        var concept = code is null ? null : new Coding(to, code, display) { Version = request.Reverse ? group.SourceVersion : group.TargetVersion };
                        matches.Add(Match(equivalence, concept, map.Url));
                    }
                }
            }
        }

        var result = matches.Any(m => m.Part[0].Value is Code { Value: not ("unmatched" or "disjoint") });
        var answer = new Parameters();
        answer.Add("result", new FhirBoolean(result));
        if (!result)
        {
            answer.Add("message", new FhirString(matches.Count == 0
                ? $"No ConceptMap stored here maps {string.Join(", ", request.Codings.Select(c => $"{c.System}|{c.Code}"))}."
                : $"The ConceptMaps stored here say {string.Join(", ", request.Codings.Select(c => $"{c.System}|{c.Code}"))} has no equivalent."));
        }

        answer.Parameter.AddRange(matches);
        return answer;
    }

    /// <summary>The elements' targets for a code, or with <paramref name="reverse"/> the sources of the elements that target it.</summary>
    private static IEnumerable<(ConceptMapEquivalence? Equivalence, string? Code, string? Display)> Targets(ConceptMap.GroupComponent group, string code, bool reverse)
    {
        foreach (var element in group.Element)
        {
            foreach (var target in element.Target)
            {
                if (!reverse && element.Code == code)
                {
                    yield return (target.Equivalence, target.Code, target.Display);
                }
                else if (reverse && target.Code == code && target.Equivalence is not (ConceptMapEquivalence.Unmatched or ConceptMapEquivalence.Disjoint))
                {
                    yield return (target.Equivalence, element.Code, element.Display);
                }
            }
        }
    }

    /// <summary>A match; an <c>unmatched</c> target has no code, and then no concept.</summary>
    private static Parameters.ParameterComponent Match(ConceptMapEquivalence? equivalence, Coding? concept, string? source)
    {
        var match = new Parameters.ParameterComponent { Name = "match" };
        match.Part.Add(new Parameters.ParameterComponent { Name = "equivalence", Value = new Code(Hl7.Fhir.Utility.EnumUtility.GetLiteral(equivalence ?? ConceptMapEquivalence.Equivalent)) });
        if (concept is not null)
        {
            match.Part.Add(new Parameters.ParameterComponent { Name = "concept", Value = concept });
        }

        if (source is not null)
        {
            match.Part.Add(new Parameters.ParameterComponent { Name = "source", Value = new FhirUri(source) });
        }

        return match;
    }

    /// <summary>A map's source or target value set (uri or canonical).</summary>
    private static string? Canonical(DataType? valueSet) => valueSet switch
    {
        FhirUri uri => uri.Value,
        Canonical canonical => canonical.Value,
        _ => null,
    };

    private async Task<IReadOnlyList<ConceptMap>> MapsAsync(TranslateRequest request, CancellationToken ct)
    {
        if (request.Map is { } given)
        {
            return [given];
        }

        if (request.MapId is { } id)
        {
            var stored = await store.ReadAsync("ConceptMap", id, ct);
            return stored switch
            {
                null => throw new ResourceNotFoundException($"ConceptMap/{id} is not known."),
                { IsDeleted: true } => throw new ResourceGoneException($"ConceptMap/{id} was deleted."),
                _ => [(ConceptMap)serializers.ParseStored(stored.Json)],
            };
        }

        // By url, or every map from (or, reversed, to) the codings' systems.
        var query = request.Url is { } url
            ? new List<KeyValuePair<string, string>> { new("url", url) }
            : [new(request.Reverse ? "target-system" : "source-system", string.Join(',', request.Codings.Select(c => c.System).Distinct()))];
        if (request.MapVersion is { } version)
        {
            query.Add(new("version", version));
        }

        var matches = await store.FindAsync("ConceptMap", parser.ParseCriteria("ConceptMap", query), null, MaxMaps, ct);
        var maps = await store.ReadManyAsync("ConceptMap", matches.Select(m => m.Id).ToList(), ct);
        if (request.Url is not null && maps.Count == 0)
        {
            throw new ResourceNotFoundException($"No ConceptMap with url {request.Url}{(request.MapVersion is null ? "" : $" and version {request.MapVersion}")} is stored here.");
        }

        return maps.Select(m => (ConceptMap)serializers.ParseStored(m.Json)).ToList();
    }
}
