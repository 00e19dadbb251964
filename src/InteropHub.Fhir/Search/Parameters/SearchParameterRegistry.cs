using System.Collections.Concurrent;
using System.Collections.Frozen;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;

namespace InteropHub.Fhir.Search.Parameters;

/// <summary>
/// Every search parameter the hub indexes, per resource type: the R4 specification's parameters (the SDK's
/// <see cref="ModelInfo.SearchParameters"/>), the parameters every resource has (search.html#all: <c>_id</c>,
/// <c>_lastUpdated</c>, <c>_tag</c>, <c>_profile</c>, <c>_security</c>, <c>_source</c>) and custom SearchParameter
/// resources added at start-up. Parameters without an expression (<c>_text</c>, <c>_content</c>, …) are not
/// indexable, so they are not listed and a search naming them is refused rather than silently ignored.
/// </summary>
public sealed class SearchParameterRegistry
{
    /// <summary>The registry of the specification's parameters; custom parameters go into a registry of their own.</summary>
    public static readonly SearchParameterRegistry Default = new();

    private static readonly SearchParam[] Common =
    [
        new("_id", SearchParamType.Token, "http://hl7.org/fhir/SearchParameter/Resource-id", "Resource.id", [], []),
        new("_lastUpdated", SearchParamType.Date, "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", "Resource.meta.lastUpdated", [], []),
        new("_tag", SearchParamType.Token, "http://hl7.org/fhir/SearchParameter/Resource-tag", "Resource.meta.tag", [], []),
        new("_profile", SearchParamType.Uri, "http://hl7.org/fhir/SearchParameter/Resource-profile", "Resource.meta.profile", [], []),
        new("_security", SearchParamType.Token, "http://hl7.org/fhir/SearchParameter/Resource-security", "Resource.meta.security", [], []),
        new("_source", SearchParamType.Uri, "http://hl7.org/fhir/SearchParameter/Resource-source", "Resource.meta.source", [], []),
    ];

    private readonly ConcurrentDictionary<string, FrozenDictionary<string, SearchParam>> _byType = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, List<(string Base, SearchParam Param)>> _custom = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _pending = new(StringComparer.Ordinal);
    private int _version;

    /// <summary>Changes whenever a custom parameter is added, so caches of compiled parameters know to rebuild.</summary>
    public int Version => _version;

    /// <summary>The parameters of a resource type by name (empty for an unknown type).</summary>
    public IReadOnlyDictionary<string, SearchParam> For(string resourceType) => _byType.GetOrAdd(resourceType, Build);

    public SearchParam? Find(string resourceType, string name) => For(resourceType).GetValueOrDefault(name);

    /// <summary>The parameters every one of the given types has (a system search may only use these).</summary>
    public IReadOnlyList<SearchParam> Shared(IReadOnlyList<string> resourceTypes) =>
        resourceTypes.Count == 0
            ? Common
            : For(resourceTypes[0]).Values.Where(p => resourceTypes.All(t => Find(t, p.Name) is { } q && q.Type == p.Type)).ToList();

    /// <summary>Adds a custom parameter for the given base types (a SearchParameter resource's <c>base</c>).</summary>
    public void Add(IEnumerable<string> baseTypes, SearchParam param)
    {
        lock (_custom)
        {
            foreach (var type in baseTypes)
            {
                _custom.AddOrUpdate(type, _ => [(type, param)],
                    (_, list) => [.. list.Where(p => p.Param.Name != param.Name && p.Param.Url != param.Url), (type, param)]);
            }

            Interlocked.Increment(ref _version);
            _byType.Clear();
        }
    }

    /// <summary>Removes the custom parameter with this canonical URL from every type.</summary>
    public void Remove(string url)
    {
        lock (_custom)
        {
            foreach (var type in _custom.Keys)
            {
                _custom.AddOrUpdate(type, _ => [], (_, list) => [.. list.Where(p => p.Param.Url != url)]);
            }

            _pending.TryRemove(url, out _);
            Interlocked.Increment(ref _version);
            _byType.Clear();
        }
    }

    /// <summary>The custom parameters (canonical URL → parameter), whatever their base types.</summary>
    public IReadOnlyDictionary<string, SearchParam> Custom =>
        _custom.Values.SelectMany(list => list).GroupBy(p => p.Param.Url, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Param, StringComparer.Ordinal);

    /// <summary>
    /// Marks a parameter as not yet searchable: resources written from now on are indexed for it, but the ones
    /// written before are not until a re-index finishes, so searching by it would silently miss them.
    /// </summary>
    public void MarkPending(string url, string reason) => _pending[url] = reason;

    public void MarkSearchable(string url) => _pending.TryRemove(url, out _);

    /// <summary>Why the parameter cannot be searched yet, or null when it can.</summary>
    public string? Pending(SearchParam param) => _pending.GetValueOrDefault(param.Url);

    private FrozenDictionary<string, SearchParam> Build(string resourceType)
    {
        var result = new Dictionary<string, SearchParam>(StringComparer.Ordinal);
        if (!ResourceTypes.IsKnown(resourceType))
        {
            return result.ToFrozenDictionary(StringComparer.Ordinal);
        }

        foreach (var common in Common)
        {
            result[common.Name] = common;
        }

        foreach (var definition in ModelInfo.SearchParameters)
        {
            if (definition.Resource == resourceType && !string.IsNullOrEmpty(definition.Expression) && definition.Type != SearchParamType.Special)
            {
                result[definition.Name!] = FromDefinition(definition);
            }
        }

        if (_custom.TryGetValue(resourceType, out var custom))
        {
            foreach (var (_, param) in custom)
            {
                result[param.Name] = param;
            }
        }

        MarkUnions(result, resourceType, custom?.Select(c => c.Param.Name).ToHashSet(StringComparer.Ordinal) ?? []);
        return result.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>
    /// Finds the parameters whose rows would repeat others' (<see cref="SearchParam.UnionOf"/>), so that every value is
    /// written once:
    /// <list type="bullet">
    /// <item>a parameter with the same expression on this type as another of the same kind (Patient's <c>phonetic</c>
    /// and <c>name</c>) reads that one's rows;</item>
    /// <item>a parameter whose expression, on this type, is made of the same alternatives as two or more other
    /// parameters of the same kind together (Observation's <c>combo-code</c> is <c>code</c> plus
    /// <c>component-code</c>) reads theirs;</item>
    /// <item>a string parameter on an address or a name whose parts have parameters of their own (<c>address</c> and
    /// <c>address-city</c>, <c>name</c> and <c>family</c>) leaves those parts out of its own rows and reads theirs too
    /// (<see cref="SearchParam.PartsIndexedApart"/>).</item>
    /// </list>
    /// Smaller unions are settled first, so a union is never made of unions. Custom parameters keep rows of their own:
    /// resources written before one was added have none of its rows, nor would they have the rows it took over.
    /// </summary>
    private static void MarkUnions(Dictionary<string, SearchParam> parameters, string resourceType, HashSet<string> custom)
    {
        var alternatives = parameters.Values
            .Where(p => p.Type is not (SearchParamType.Reference or SearchParamType.Special) && !custom.Contains(p.Name))
            .Select(p => (Param: p, Parts: Alternatives(p.Expression, resourceType)))
            .Where(p => p.Parts.Count > 0)
            .OrderBy(p => p.Parts.Count)
            .ThenBy(p => p.Param.Name, StringComparer.Ordinal)
            .ToList();

        // The same expression: the parameter named after the element keeps the rows (CodeSystem's url, not system),
        // else the first by name; the others read them.
        var unions = new HashSet<string>(StringComparer.Ordinal);
        var sameAs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (param, parts) in alternatives)
        {
            var same = alternatives.Where(a => !unions.Contains(a.Param.Name) && SameShape(a.Param, param) && a.Parts.SetEquals(parts))
                .Select(a => a.Param.Name)
                .OrderBy(name => parts.All(part => !part.EndsWith("." + name, StringComparison.Ordinal)))
                .ThenBy(name => name, StringComparer.Ordinal)
                .ToList();
            foreach (var name in same.Skip(1))
            {
                unions.Add(name);
                sameAs[name] = same[0];
            }
        }

        foreach (var (param, parts) in alternatives.Where(a => a.Parts.Count > 1 && !unions.Contains(a.Param.Name)))
        {
            var covering = alternatives
                .Where(a => a.Param.Name != param.Name && !unions.Contains(a.Param.Name) && SameShape(a.Param, param) && a.Parts.IsSubsetOf(parts))
                .ToList();
            if (covering.Count > 1 && covering.SelectMany(a => a.Parts).ToHashSet(StringComparer.Ordinal).SetEquals(parts))
            {
                unions.Add(param.Name);
                parameters[param.Name] = param with { UnionOf = [.. covering.Select(a => a.Param.Name)] };
            }
        }

        foreach (var (param, parts) in alternatives.Where(a => a.Param.Type == SearchParamType.String && a.Parts.Count == 1 && !unions.Contains(a.Param.Name)))
        {
            var whole = parts.Single();
            var apart = alternatives
                .Where(a => a.Param.Type == SearchParamType.String && a.Parts.Count == 1 && !unions.Contains(a.Param.Name)
                    && a.Parts.Single() is var part && part.Length > whole.Length + 1 && part.StartsWith(whole + ".", StringComparison.Ordinal)
                    && StructuredParts.Contains(part[(whole.Length + 1)..]))
                .ToList();
            if (apart.Count > 0)
            {
                parameters[param.Name] = param with
                {
                    UnionOf = [param.Name, .. apart.Select(a => a.Param.Name)],
                    PartsIndexedApart = apart.Select(a => a.Parts.Single()[(whole.Length + 1)..]).ToFrozenSet(StringComparer.Ordinal),
                };
            }
        }

        foreach (var (name, kept) in sameAs)
        {
            parameters[name] = parameters[name] with { UnionOf = parameters[kept].UnionOf ?? [kept] };
        }

        MarkSubsets(parameters, resourceType, custom);
    }

    /// <summary>
    /// Finds the reference parameters that narrow another to one type (<see cref="SearchParam.SubsetOf"/>): the only
    /// alternative on this type is <c>E.where(resolve() is T)</c> and another parameter's is <c>E</c>.
    /// </summary>
    private static void MarkSubsets(Dictionary<string, SearchParam> parameters, string resourceType, HashSet<string> custom)
    {
        const string resolve = ".where(resolve() is ";
        var references = parameters.Values
            .Where(p => p.Type == SearchParamType.Reference && !custom.Contains(p.Name))
            .Select(p => (Param: p, Parts: Alternatives(p.Expression, resourceType)))
            .Where(p => p.Parts.Count == 1)
            .Select(p => (p.Param, Path: p.Parts.Single()))
            .ToList();
        foreach (var (param, path) in references)
        {
            var at = path.IndexOf(resolve, StringComparison.Ordinal);
            if (at <= 0 || !path.EndsWith(')') || path[(at + resolve.Length)..^1] is not { Length: > 0 } type || !type.All(char.IsAsciiLetter))
            {
                continue;
            }

            var wider = path[..at];
            if (references.FirstOrDefault(r => r.Path == wider && r.Param.Name != param.Name) is { Param: { } whole }
                && (whole.Targets.Count == 0 || whole.Targets.Contains(type)))
            {
                parameters[param.Name] = param with { SubsetOf = new ReferenceSubset(whole.Name, type) };
            }
        }
    }

    /// <summary>The parts of an address and of a name that the indexer writes as values of the whole (SearchIndexer.AddStrings).</summary>
    private static readonly FrozenSet<string> StructuredParts =
        new[] { "text", "line", "city", "district", "state", "postalCode", "country", "family", "given", "prefix", "suffix" }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>The alternatives (<c>a | b</c>) of an expression that apply to the resource type, as written.</summary>
    private static HashSet<string> Alternatives(string expression, string resourceType)
    {
        var parts = new HashSet<string>(StringComparer.Ordinal);
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= expression.Length; i++)
        {
            if (i < expression.Length)
            {
                depth += expression[i] switch { '(' => 1, ')' => -1, _ => 0 };
                if (expression[i] != '|' || depth != 0)
                {
                    continue;
                }
            }

            var part = expression[start..i].Trim();
            var head = part.TrimStart('(');
            if (head == resourceType || head.StartsWith(resourceType + ".", StringComparison.Ordinal) || head.StartsWith(resourceType + " ", StringComparison.Ordinal))
            {
                parts.Add(part);
            }

            start = i + 1;
        }

        return parts;
    }

    private static bool SameShape(SearchParam a, SearchParam b) =>
        a.Type == b.Type && a.Components.Count == b.Components.Count
        && a.Components.Zip(b.Components).All(c => c.First.Param.Type == c.Second.Param.Type && c.First.Expression == c.Second.Expression);

    private static readonly FrozenDictionary<string, SearchParamDefinition> ByUrl = ModelInfo.SearchParameters
        .Where(d => d.Url is not null)
        .GroupBy(d => d.Url!, StringComparer.Ordinal)
        .ToFrozenDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

    private static SearchParam FromDefinition(SearchParamDefinition definition)
    {
        var components = new List<CompositeComponent>();
        foreach (var component in definition.Component ?? [])
        {
            if (component.Definition is { } url && ByUrl.TryGetValue(url, out var part))
            {
                components.Add(new CompositeComponent(
                    new SearchParam(part.Name!, part.Type, url, part.Expression ?? "", Targets(part), []), component.Expression));
            }
        }

        return new SearchParam(definition.Name!, definition.Type, definition.Url ?? "", definition.Expression!, Targets(definition), components);
    }

    private static string[] Targets(SearchParamDefinition definition) =>
        (definition.Target ?? []).Select(t => Hl7.Fhir.Utility.EnumUtility.GetLiteral(t) ?? t.ToString()).ToArray();
}
