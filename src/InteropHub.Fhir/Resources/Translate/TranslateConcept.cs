using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

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
/// and the map as <c>url|version</c>; <c>result</c> is true when one of them is not <c>unmatched</c> or <c>disjoint</c>.
/// A group none of whose elements has the code answers what its <c>unmapped</c> says. With <c>reverse</c>, targets are
/// looked up and their sources returned, with the equivalence read the other way.
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

            foreach (var coding in request.Codings)
            {
                await TranslateAsync(map, coding, request, matches, [], ct);
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

    /// <summary>
    /// Adds what <paramref name="map"/>'s groups from the coding's system say of it. <paramref name="visited"/> holds the
    /// maps an <c>other-map</c> chain has passed through: a map met again adds nothing (the chain is a cycle).
    /// </summary>
    private async Task TranslateAsync(ConceptMap map, Coding coding, TranslateRequest request, List<Parameters.ParameterComponent> matches,
        HashSet<string> visited, CancellationToken ct)
    {
        if (!visited.Add(Name(map) ?? ""))
        {
            return;
        }

        foreach (var group in map.Group)
        {
            var (from, to) = request.Reverse ? (group.Target, group.Source) : (group.Source, group.Target);
            if (coding.System != from || (request.TargetSystem is { } system && to != system))
            {
                continue;
            }

            var found = Targets(group, coding.Code!, request.Reverse).ToList();
            foreach (var (equivalence, code, display) in found)
            {
                matches.Add(Match(equivalence, code is null ? null : new Coding(to, code, display) { Version = request.Reverse ? group.SourceVersion : group.TargetVersion }, Name(map)));
            }

            // conceptmap-definitions.html#ConceptMap.group.unmapped: what to do when the group has no element for the code
            // (an element saying unmatched is one); read forward only, as it says nothing of what maps to its target.
            if (found.Count > 0 || request.Reverse || group.Element.Any(e => e.Code == coding.Code) || group.Unmapped is not { } unmapped)
            {
                continue;
            }

            switch (unmapped.Mode)
            {
                case ConceptMap.ConceptMapGroupUnmappedMode.Provided:
                    // The code itself, in the group's target system: the same concept.
                    matches.Add(Match(ConceptMapEquivalence.Equal, new Coding(to, coding.Code, coding.Display) { Version = group.TargetVersion }, Name(map)));
                    break;
                case ConceptMap.ConceptMapGroupUnmappedMode.Fixed when unmapped.Code is not null:
                    // One code for everything the group does not list: the map says nothing of how the meanings relate.
                    matches.Add(Match(ConceptMapEquivalence.Inexact, new Coding(to, unmapped.Code, unmapped.Display) { Version = group.TargetVersion }, Name(map)));
                    break;
                case ConceptMap.ConceptMapGroupUnmappedMode.OtherMap when unmapped.Url is { } other:
                    // The other map answers for itself: its equivalences, named as the match's source.
                    var (url, version) = SplitCanonical(other);
                    foreach (var next in await FindByUrlAsync(url, version, ct))
                    {
                        await TranslateAsync(next, coding, request, matches, visited, ct);
                    }

                    break;
            }
        }
    }

    /// <summary>
    /// The elements' targets for a code, or with <paramref name="reverse"/> the sources of the elements that target it,
    /// their equivalence read from the target's side (a source wider than its target is narrower than it).
    /// </summary>
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
                    yield return (target.Equivalence switch
                    {
                        ConceptMapEquivalence.Wider => ConceptMapEquivalence.Narrower,
                        ConceptMapEquivalence.Narrower => ConceptMapEquivalence.Wider,
                        ConceptMapEquivalence.Subsumes => ConceptMapEquivalence.Specializes,
                        ConceptMapEquivalence.Specializes => ConceptMapEquivalence.Subsumes,
                        var same => same,
                    }, element.Code, element.Display);
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

    /// <summary>The map as a canonical: <c>url|version</c> when it has a version, so the answers of two versions are told apart.</summary>
    private static string? Name(ConceptMap map) => map.Url is null || string.IsNullOrEmpty(map.Version) ? map.Url : $"{map.Url}|{map.Version}";

    /// <summary>A map's source or target value set (uri or canonical).</summary>
    private static string? Canonical(DataType? valueSet) => valueSet switch
    {
        FhirUri uri => uri.Value,
        Canonical canonical => canonical.Value,
        _ => null,
    };

    /// <summary>A canonical's url and version (references.html#canonical: <c>url|version</c>).</summary>
    private static (string Url, string? Version) SplitCanonical(string canonical) =>
        canonical.IndexOf('|', StringComparison.Ordinal) is var bar and >= 0 ? (canonical[..bar], canonical[(bar + 1)..]) : (canonical, null);

    private async Task<IReadOnlyList<ConceptMap>> MapsAsync(TranslateRequest request, CancellationToken ct)
    {
        if (request.Map is { } given)
        {
            return [given];
        }

        // url|version, or url and conceptMapVersion, name one version; both ways at once must agree.
        var (url, version) = request.Url is { } canonical ? SplitCanonical(canonical) : (null, null);
        if (version is not null && request.MapVersion is not null && version != request.MapVersion)
        {
            throw new InvalidInputException($"url '{request.Url}' and conceptMapVersion '{request.MapVersion}' name different versions.", "conceptMapVersion");
        }

        version ??= request.MapVersion;
        if (request.MapId is { } id)
        {
            var map = await store.ReadAsync("ConceptMap", id, ct) switch
            {
                null => throw new ResourceNotFoundException($"ConceptMap/{id} is not known."),
                { IsDeleted: true } => throw new ResourceGoneException($"ConceptMap/{id} was deleted."),
                var stored => (ConceptMap)serializers.ParseStored(stored.Json),
            };
            if ((url is not null && url != map.Url) || (version is not null && version != map.Version))
            {
                throw new InvalidInputException(
                    $"ConceptMap/{id} is {Name(map) ?? "a map without url"}, not the {(url is null ? $"version {version}" : request.Url)} asked for; name the map once (instance or url).",
                    url is null ? "conceptMapVersion" : "url");
            }

            return [map];
        }

        if (url is not null)
        {
            var maps = await FindByUrlAsync(url, version, ct);
            return maps.Count > 0 ? maps
                : throw new ResourceNotFoundException($"No ConceptMap with url {url}{(version is null ? "" : $" and version {version}")} is stored here.");
        }

        // Every map from (or, reversed, to) the codings' systems, every version of each.
        var query = new List<KeyValuePair<string, string>> { new(request.Reverse ? "target-system" : "source-system", string.Join(',', request.Codings.Select(c => c.System).Distinct())) };
        if (version is not null)
        {
            query.Add(new("version", version));
        }

        return await FindAsync(query, ct);
    }

    /// <summary>
    /// The map with that url and version; without a version its latest (references.html#canonical): the highest version
    /// when every version is numbers and dots (1.10 after 1.9), else the one stored last.
    /// </summary>
    private async Task<IReadOnlyList<ConceptMap>> FindByUrlAsync(string url, string? version, CancellationToken ct)
    {
        var query = new List<KeyValuePair<string, string>> { new("url", url) };
        if (version is not null)
        {
            query.Add(new("version", version));
        }

        var maps = await FindAsync(query, ct);
        if (version is not null || maps.Count < 2)
        {
            return maps;
        }

        var numbered = maps.Select(m => (Map: m, Numbers: VersionNumbers(m.Version))).ToList();
        return [numbered.All(m => m.Numbers is not null)
            ? numbered.Aggregate((a, b) => CompareNumbers(a.Numbers!, b.Numbers!) >= 0 ? a : b).Map
            : maps.MaxBy(m => m.Meta?.LastUpdated)!];
    }

    private async Task<IReadOnlyList<ConceptMap>> FindAsync(List<KeyValuePair<string, string>> query, CancellationToken ct)
    {
        var matches = await store.FindAsync("ConceptMap", parser.ParseCriteria("ConceptMap", query), null, MaxMaps, ct);
        var maps = await store.ReadManyAsync("ConceptMap", matches.Select(m => m.Id).ToList(), ct);
        return maps.Select(m => (ConceptMap)serializers.ParseStored(m.Json)).ToList();
    }

    /// <summary>A version's numbers ("1.10.2": 1, 10, 2), or null when it is not numbers separated by dots.</summary>
    private static long[]? VersionNumbers(string? version)
    {
        var parts = (version ?? "").Split('.');
        var numbers = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out numbers[i]))
            {
                return null;
            }
        }

        return numbers;
    }

    /// <summary>Compares version numbers part by part, a missing part as 0 (1.0 is 1).</summary>
    private static int CompareNumbers(long[] a, long[] b)
    {
        for (var i = 0; i < Math.Max(a.Length, b.Length); i++)
        {
            var order = (i < a.Length ? a[i] : 0).CompareTo(i < b.Length ? b[i] : 0);
            if (order != 0)
            {
                return order;
            }
        }

        return 0;
    }
}
