using System.Globalization;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Search;

/// <summary>
/// Turns search parameters (search.html) into <see cref="SearchCriteria"/> and <see cref="SearchQuery"/>: every
/// parameter type, the modifiers and prefixes the hub implements, OR by comma, AND by repetition, escaping,
/// chains, <c>_has</c>, and the result parameters. A parameter, modifier or prefix the hub does not know is a 400
/// naming it, or, with <c>Prefer: handling=lenient</c>, ignored and reported as a warning (search.html#errors).
/// </summary>
public sealed partial class SearchParser(SearchParameterRegistry registry, HubOptions options)
{
    public static readonly SearchParser Default = new(SearchParameterRegistry.Default, new HubOptions());

    private const int MaxDepth = 4;

    /// <summary>Result parameters (search.html#return) and the server's paging key; never criteria.</summary>
    private static readonly HashSet<string> ResultNames = new(StringComparer.Ordinal)
    {
        "_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude", "_include:iterate", "_revinclude:iterate",
        // STU3's name of :iterate, which clients still send.
        "_include:recurse", "_revinclude:recurse",
        "_format", "_pretty", Resources.Paging.CursorParameter, "_type",
    };

    private static readonly Dictionary<string, SearchPrefix> Prefixes = new(StringComparer.Ordinal)
    {
        ["eq"] = SearchPrefix.Eq, ["ne"] = SearchPrefix.Ne, ["gt"] = SearchPrefix.Gt, ["lt"] = SearchPrefix.Lt, ["ge"] = SearchPrefix.Ge,
        ["le"] = SearchPrefix.Le, ["sa"] = SearchPrefix.Sa, ["eb"] = SearchPrefix.Eb, ["ap"] = SearchPrefix.Ap,
    };

    private readonly string? _localBase = options.PublicBaseUrl?.TrimEnd('/');

    public SearchParameterRegistry Registry => registry;

    /// <summary>Parameters the specification defines for every resource that this server does not implement.</summary>
    private static readonly HashSet<string> UnsupportedStandard = new(StringComparer.Ordinal)
    {
        "_text", "_content", "_list", "_filter", "_query", "_contained", "_containedType", "_graph", "_language",
    };

    /// <summary>Criteria only (conditional interactions): result parameters are not allowed to change what matches, so they are skipped.</summary>
    public SearchCriteria ParseCriteria(string resourceType, IEnumerable<KeyValuePair<string, string>> query) =>
        Criteria([resourceType], query.Where(p => !ResultNames.Contains(p.Key)), lenient: false);

    /// <summary>
    /// The most values a search (or conditional criteria) may list in all, comma-separated values counted one by one:
    /// enough for a batch of identifiers, and within what either store binds in one statement.
    /// </summary>
    public const int MaxValues = 1000;

    /// <summary>The most search parameters (AND-ed) a search may give, result parameters aside.</summary>
    public const int MaxParameters = 100;

    /// <summary>A whole search over <paramref name="resourceTypes"/> (one type, or for a system search several or none = all).</summary>
    public SearchQuery ParseQuery(IReadOnlyList<string> resourceTypes, IReadOnlyList<KeyValuePair<string, string>> query, bool lenient)
    {
        // "Empty parameters are not an error - they are just ignored by the server" (search.html#errors): a form's blank
        // field, however the client prefers handling, is left out of the search and its self link, with a warning so
        // the client sees it was not applied. Conditional criteria (ParseCriteria) still refuse one: ignoring it there
        // would widen what a conditional update or delete acts on.
        var ignored = query.Where(p => p.Value.Length == 0)
            .Select(p => Warning(p.Key, "it has no value, and an empty parameter is ignored (search.html#errors).", OperationOutcome.IssueType.Informational)).ToList();
        query = [.. query.Where(p => p.Value.Length > 0)];
        var criteria = Criteria(resourceTypes, query.Where(p => !ResultNames.Contains(p.Key)), lenient);
        var result = new List<KeyValuePair<string, string>>();
        var sort = new List<SortClause>();
        var includes = new List<IncludeSpec>();
        var revIncludes = new List<IncludeSpec>();
        var count = options.DefaultPageSize;
        string? cursor = null;
        var total = TotalMode.None;
        var summary = SummaryMode.False;
        IReadOnlyList<string>? elements = null;

        var given = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, value) in query.Where(p => ResultNames.Contains(p.Key)))
        {
            // One value each: a second _sort or _count would otherwise silently replace the first (keys of a sort are
            // listed in one _sort, comma-separated).
            if (name is "_sort" or "_count" or "_total" or "_summary" or "_elements" && !given.Add(name))
            {
                throw new InvalidInputException($"{name} is given more than once; give it once"
                    + (name is "_sort" or "_elements" ? $", with its values separated by commas ({name}=a,b)." : "."), name);
            }

            try
            {
                switch (name)
                {
                    case "_count":
                        count = Resources.Paging.Count(value, options);
                        break;
                    case Resources.Paging.CursorParameter:
                        cursor = value;
                        break;
                    case "_sort":
                        // All keys or none: under lenient handling an unknown key drops the whole _sort, not its tail.
                        var clauses = ParseSort(resourceTypes, value).ToList();
                        sort.Clear();
                        sort.AddRange(clauses);
                        break;
                    case "_total":
                        total = value switch
                        {
                            "none" => TotalMode.None,
                            "estimate" => TotalMode.Estimate,
                            "accurate" => TotalMode.Accurate,
                            _ => throw new InvalidInputException($"_total must be none, estimate or accurate, not '{value}'.", name),
                        };
                        break;
                    case "_summary":
                        summary = value switch
                        {
                            "true" => SummaryMode.True,
                            "text" => SummaryMode.Text,
                            "data" => SummaryMode.Data,
                            "count" => SummaryMode.Count,
                            "false" => SummaryMode.False,
                            _ => throw new InvalidInputException($"_summary must be true, text, data, count or false, not '{value}'.", name),
                        };
                        break;
                    case "_elements":
                        elements = ParseElements(value, resourceTypes);
                        break;
                    case "_include" or "_include:iterate" or "_include:recurse":
                        includes.Add(ParseInclude(resourceTypes, value, name, reverse: false));
                        break;
                    case "_revinclude" or "_revinclude:iterate" or "_revinclude:recurse":
                        revIncludes.Add(ParseInclude(resourceTypes, value, name, reverse: true));
                        break;
                }

                if (name != Resources.Paging.CursorParameter)
                {
                    // The links say what was applied: a _count above the server's maximum reads as the maximum.
                    result.Add(new(name, name == "_count" ? count.ToString(System.Globalization.CultureInfo.InvariantCulture) : value));
                }
            }
            catch (UnsupportedSearchException e) when (lenient)
            {
                ignored.Add(Warning(name, e.Message));
            }
        }

        if (summary != SummaryMode.False && elements is not null)
        {
            throw new InvalidInputException("_summary and _elements cannot be used together.", "_elements");
        }

        var all = ignored.Count == 0 ? criteria : new SearchCriteria(criteria.ResourceTypes, criteria.Criteria, criteria.Applied, [.. criteria.Ignored, .. ignored]);
        return new SearchQuery(all, sort, count, cursor, total, summary, elements, includes, revIncludes, result);
    }

    /// <summary>
    /// <c>_elements</c> (search.html#elements): element names, each also as <c>Type.name</c> (as clients often write
    /// them), which then applies to that type only; a name that is no element of the types searched is a 400 rather
    /// than an empty resource. <see cref="ElementsFor"/> gives a type's names.
    /// </summary>
    public static string[] ParseElements(string value, IReadOnlyList<string> resourceTypes)
    {
        var types = resourceTypes.Count > 0 ? resourceTypes : ResourceTypes.All;
        var names = new List<string>();
        foreach (var given in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dot = given.IndexOf('.', StringComparison.Ordinal);
            var owners = dot < 0 ? types : types.Where(t => t == given[..dot]).ToList();
            var name = dot < 0 ? given : given[(dot + 1)..];
            if (!owners.Any(t => Hl7.Fhir.Model.ModelInfo.ModelInspector.FindClassMapping(t)?.FindMappedElementByName(name) is not null))
            {
                throw new InvalidInputException(dot >= 0 && owners.Count == 0
                    ? $"_elements '{given}' names the type {given[..dot]}, which is not searched here."
                    : $"_elements '{given}': {(resourceTypes.Count == 1 ? resourceTypes[0] + " has" : "none of the types searched has")} no element '{name}'.", "_elements");
            }

            names.Add(dot < 0 ? name : given);
        }

        return [.. names.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>The element names of <see cref="ParseElements"/> that apply to <paramref name="resourceType"/>, without their type.</summary>
    public static string[] ElementsFor(IReadOnlyList<string> elements, string resourceType) =>
        [.. elements.Where(e => !e.Contains('.', StringComparison.Ordinal) || e.StartsWith(resourceType + ".", StringComparison.Ordinal))
            .Select(e => e.Contains('.', StringComparison.Ordinal) ? e[(resourceType.Length + 1)..] : e).Distinct(StringComparer.Ordinal)];

    /// <summary>Splits <c>Type?a=1&amp;b=2</c> (or just the query) into decoded pairs.</summary>
    public static List<KeyValuePair<string, string>> SplitQueryString(string resourceType, string queryString)
    {
        var q = queryString;
        var mark = q.IndexOf('?', StringComparison.Ordinal);
        if (mark >= 0)
        {
            var type = q[..mark];
            if (type.Length > 0 && type != resourceType)
            {
                throw new InvalidInputException($"The conditional criteria name type '{type}' but the request is for {resourceType}.");
            }

            q = q[(mark + 1)..];
        }

        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var part in q.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((eq < 0 ? part : part[..eq]).Replace('+', ' '));
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            pairs.Add(new(name, value));
        }

        return pairs;
    }

    private SearchCriteria Criteria(IReadOnlyList<string> resourceTypes, IEnumerable<KeyValuePair<string, string>> query, bool lenient)
    {
        var criteria = new List<Criterion>();
        var applied = new List<KeyValuePair<string, string>>();
        var ignored = new List<OperationOutcome.IssueComponent>();
        var (parameters, values) = (0, 0);
        foreach (var (name, value) in query)
        {
            if (++parameters > MaxParameters)
            {
                throw new InvalidInputException($"The search gives more than {MaxParameters} search parameters (past it at '{name}').", name);
            }

            if ((values += SearchValueText.Split(value, ',').Count) > MaxValues)
            {
                throw new InvalidInputException($"The search lists more than {MaxValues} values in all (past it at '{name}'); look up more in several searches.", name);
            }

            try
            {
                criteria.Add(ParseParameter(resourceTypes, name, value));
                applied.Add(new(name, value));
            }
            catch (UnsupportedSearchException e) when (lenient)
            {
                ignored.Add(Warning(name, e.Message));
            }
        }

        return new SearchCriteria(resourceTypes, criteria, applied, ignored);
    }

    private Criterion ParseParameter(IReadOnlyList<string> resourceTypes, string name, string value)
    {
        if (ResultNames.Contains(HeadName(name)))
        {
            // _sort:desc, _count:x…: a result parameter with a modifier it does not take (descending order is -param).
            throw new UnsupportedSearchException($"'{name}': {HeadName(name)} takes no modifier '{name[HeadName(name).Length..]}'"
                + (HeadName(name) == "_sort" ? "; sort descending with a minus sign, _sort=-date." : "."), name);
        }

        if (resourceTypes.Count == 1)
        {
            return Parse(resourceTypes[0], name, value, 0);
        }

        // A system search may use a parameter only when every type searched defines it alike (search.html#all).
        var head = HeadName(name);
        if (registry.Shared(resourceTypes).All(p => p.Name != head))
        {
            throw new UnsupportedSearchException(resourceTypes.Count == 0
                ? $"Search parameter '{name}' cannot be used in a search across all types; use _type to name the types, or one of _id, _lastUpdated, _tag, _profile, _security, _source."
                : $"Search parameter '{name}' is not defined for every one of the types {string.Join(", ", resourceTypes)}.", name);
        }

        if (resourceTypes.Count > 1 && resourceTypes.Select(t => registry.Find(t, head)).DistinctBy(ReadFrom).Skip(1).Any())
        {
            // The types keep the parameter's values in different rows (Encounter's patient in subject's, Immunization's
            // in its own): each type's resources are searched as that type defines it.
            return new AnyCriterion(resourceTypes.Select(t => (Criterion)new OfTypeCriterion([t], Parse(t, name, value, 0))).ToList());
        }

        return Parse(resourceTypes.Count == 0 ? "Patient" : resourceTypes[0], name, value, 0);
    }

    /// <summary>Where a parameter's values are read from: its own rows, or others' too.</summary>
    private static string ReadFrom(SearchParam? param) =>
        $"{string.Join(",", param?.UnionOf ?? [])}|{string.Join(",", (param?.PartsIndexedApart ?? new HashSet<string>()).Order(StringComparer.Ordinal))}|{param?.SubsetOf}";

    private static string HeadName(string name)
    {
        var end = name.IndexOfAny([':', '.']);
        return end < 0 ? name : name[..end];
    }

    private Criterion Parse(string resourceType, string name, string value, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new InvalidInputException($"'{name}' chains more than {MaxDepth} levels.", name);
        }

        if (name.StartsWith("_has:", StringComparison.Ordinal))
        {
            return ParseHas(resourceType, name, value, depth);
        }

        var dot = name.IndexOf('.', StringComparison.Ordinal);
        var head = dot < 0 ? name : name[..dot];
        var colon = head.IndexOf(':', StringComparison.Ordinal);
        var code = colon < 0 ? head : head[..colon];
        var modifier = colon < 0 ? null : head[(colon + 1)..];
        var param = Searchable(registry.Find(resourceType, code), name)
            ?? throw new UnsupportedSearchException(UnsupportedStandard.Contains(code)
                ? $"Search parameter '{code}' (search.html) is not supported by this server."
                : $"Search parameter '{code}' is not defined for resource type {resourceType}.", name);

        if (dot < 0 && param.UnionOf is { } parts)
        {
            // The parameters it unites, each with the same modifier and value: one of them matching is a match; for a
            // negative criterion (:not, :missing=true, :not-in), none of them may match.
            var each = parts.Select(part => ParseValue(resourceType, registry.Find(resourceType, part)!, modifier, name, value)).ToList();
            return each.All(IsNegative) ? new AllCriterion(each) : new AnyCriterion(each);
        }

        var criterion = dot < 0 ? ParseValue(resourceType, param, modifier, name, value) : ParseChain(resourceType, param, modifier, name, name[(dot + 1)..], value, depth);
        return param.SubsetOf is { } subset ? subset.Widen(criterion) : criterion;
    }

    private static bool IsNegative(Criterion criterion) =>
        criterion is IndexCriterion { Negated: true } or MissingCriterion { Missing: true } or ValueSetCriterion { Negated: true }
        || criterion is AllCriterion all && all.All.All(IsNegative);

    private ChainCriterion ParseChain(string resourceType, SearchParam param, string? modifier, string name, string rest, string value, int depth)
    {
        if (param.Type != SearchParamType.Reference)
        {
            throw new InvalidInputException($"'{name}' chains through '{param.Name}', which is a {Lower(param.Type)} parameter, not a reference.", name);
        }

        IEnumerable<string> candidates;
        if (modifier is not null)
        {
            if (!ResourceTypes.IsKnown(modifier) || (param.Targets.Count > 0 && !param.Targets.Contains(modifier)))
            {
                throw new InvalidInputException($"'{modifier}' is not a resource type that {resourceType}.{param.Name} can refer to.", name);
            }

            candidates = [modifier];
        }
        else if (param.Targets.Count > 0)
        {
            candidates = param.Targets;
        }
        else
        {
            throw new InvalidInputException($"{resourceType}.{param.Name} can refer to any type: name the type, e.g. '{param.Name}:Patient.{rest}'.", name);
        }

        var targets = new List<ChainTarget>();
        InvalidInputException? last = null;
        foreach (var type in candidates.Where(ResourceTypes.IsKnown))
        {
            if (registry.Find(type, HeadName(rest)) is null && !rest.StartsWith("_has:", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                targets.Add(new ChainTarget(type, Parse(type, rest, value, depth + 1), registry.Find(type, "url") is { Type: SearchParamType.Uri }));
            }
            catch (InvalidInputException e)
            {
                last = e;
            }
        }

        if (targets.Count == 0)
        {
            throw (last is null ? null : NamedAs(last, name)) ?? new UnsupportedSearchException(
                $"Search parameter '{HeadName(rest)}' is not defined for {string.Join(" or ", candidates)}, the types {resourceType}.{param.Name} refers to.", name);
        }

        return new ChainCriterion(param.Name, targets);
    }

    /// <summary>A refusal of the parameter inside a chain or <c>_has</c>, naming the parameter the client sent.</summary>
    private static InvalidInputException NamedAs(InvalidInputException refusal, string name)
    {
        foreach (var issue in refusal.Outcome.Issue)
        {
            issue.Expression = [name];
        }

        return refusal;
    }

    /// <summary><c>_has:Type:reference:parameter=value</c>, where parameter may itself be a <c>_has</c>.</summary>
    private Criterion ParseHas(string resourceType, string name, string value, int depth)
    {
        var parts = name.Split(':', 4);
        if (parts.Length < 4 || parts[1].Length == 0 || parts[2].Length == 0 || parts[3].Length == 0)
        {
            throw new InvalidInputException($"'{name}' is not of the form _has:Type:reference:parameter.", name);
        }

        var (source, reference, rest) = (parts[1], parts[2], parts[3]);
        if (!ResourceTypes.IsKnown(source))
        {
            throw new InvalidInputException($"'{source}' in '{name}' is not a resource type.", name);
        }

        var param = Searchable(registry.Find(source, reference), name);
        if (param is null || param.Type != SearchParamType.Reference)
        {
            throw new InvalidInputException($"'{reference}' in '{name}' is not a reference search parameter of {source}.", name);
        }

        if (param.Targets.Count > 0 && !param.Targets.Contains(resourceType))
        {
            throw new InvalidInputException($"{source}.{reference} cannot refer to a {resourceType}.", name);
        }

        Criterion inner;
        try
        {
            inner = Parse(source, rest, value, depth + 1);
        }
        catch (InvalidInputException e)
        {
            throw NamedAs(e, name);
        }

        var has = new HasCriterion(source, reference, inner, registry.Find(resourceType, "url") is { Type: SearchParamType.Uri });
        return param.SubsetOf is { } subset && subset.TargetType == resourceType ? new AnyCriterion([has, has with { Param = subset.Param }]) : has;
    }

    private Criterion ParseValue(string resourceType, SearchParam param, string? modifier, string name, string value)
    {
        if (modifier == "missing")
        {
            var missing = value switch
            {
                "true" => true,
                "false" => false,
                _ => throw new InvalidInputException($"'{name}' takes true or false, not '{value}'.", name),
            };
            return param.Type switch
            {
                SearchParamType.Composite => new MissingCriterion(SearchParam.ComponentKey(param.Name, 0), param.Components[0].Param.Table, missing),
                // A reference that carries only an identifier (no literal reference) is there all the same: its rows are
                // the identifier's, under param:identifier.
                SearchParamType.Reference => missing
                    ? new AllCriterion([new MissingCriterion(param.Name, IndexTable.References, true), new MissingCriterion(SearchParam.IdentifierKey(param.Name), IndexTable.Tokens, true)])
                    : new AnyCriterion([new MissingCriterion(param.Name, IndexTable.References, false), new MissingCriterion(SearchParam.IdentifierKey(param.Name), IndexTable.Tokens, false)]),
                _ when param.Name == "_id" => new IdCriterion([], Negated: !missing),
                _ => new MissingCriterion(param.Name, param.Table, missing),
            };
        }

        var values = SearchValueText.Split(value, ',');
        if (values.Any(v => v.Length == 0))
        {
            throw new InvalidInputException($"Search parameter '{name}' has an empty value.", name);
        }

        if (param.Name == "_id")
        {
            return modifier switch
            {
                null => new IdCriterion(values.Select(SearchValueText.Unescape).ToList()),
                "not" => new IdCriterion(values.Select(SearchValueText.Unescape).ToList(), Negated: true),
                _ => throw UnknownModifier(param, modifier, name),
            };
        }

        switch (param.Type)
        {
            case SearchParamType.Token:
                if (modifier is null or "not" && IsBoolean(resourceType, param)
                    && values.FirstOrDefault(v => v is not ("true" or "false")) is { } notBoolean)
                {
                    // A boolean element's tokens are true and false: anything else would silently match nothing.
                    throw new InvalidInputException($"'{name}' takes true or false, not '{notBoolean}'.", name);
                }

                return modifier switch
                {
                    null => new IndexCriterion(param.Name, IndexTable.Tokens, values.Select(ParseToken).ToList()),
                    "not" => new IndexCriterion(param.Name, IndexTable.Tokens, values.Select(ParseToken).ToList(), Negated: true),
                    "text" => new IndexCriterion(param.Name, IndexTable.Tokens,
                        values.Select(v => (IndexCondition)new TokenTextCondition(TextNormalizer.Normalize(SearchValueText.Unescape(v)))).ToList()),
                    // :of-type is for Identifier elements (search.html#token); their expressions name an identifier.
                    "of-type" when param.Expression.Contains("identifier", StringComparison.OrdinalIgnoreCase) =>
                        new IndexCriterion(SearchParam.OfTypeKey(param.Name), IndexTable.Tokens, values.Select(v => ParseOfType(v, name)).ToList()),
                    "in" or "not-in" => new ValueSetCriterion(param.Name, name, values.Select(v => SearchValueText.Unescape(v)).ToList(), Negated: modifier == "not-in"),
                    "above" or "below" => new SubsumptionCriterion(param.Name, name, values.Select(v => ParseCode(v, name)).ToList(), Above: modifier == "above"),
                    _ => throw UnknownModifier(param, modifier, name),
                };
            case SearchParamType.String:
                var match = modifier switch
                {
                    null => StringMatch.Prefix,
                    "exact" => StringMatch.Exact,
                    "contains" => StringMatch.Contains,
                    _ => throw UnknownModifier(param, modifier, name),
                };
                return new IndexCriterion(param.Name, IndexTable.Strings, values
                    .Select(v => SearchValueText.Unescape(v))
                    .Select(v => (IndexCondition)new StringCondition(match, match == StringMatch.Exact ? v : TextNormalizer.Normalize(v)))
                    .ToList());
            case SearchParamType.Uri:
                var uriMatch = modifier switch
                {
                    null => UriMatch.Exact,
                    "below" => UriMatch.Below,
                    "above" => UriMatch.Above,
                    _ => throw UnknownModifier(param, modifier, name),
                };
                if (param.Name == "url" && uriMatch == UriMatch.Exact && values.Any(v => v.Contains('|', StringComparison.Ordinal))
                    && registry.Find(resourceType, "version") is { Type: SearchParamType.Token })
                {
                    // A canonical url|version names one version of a conformance resource (Measure?url=…|1.0).
                    return new AnyCriterion(values.Select(SearchValueText.Unescape).Select(v => v.IndexOf('|', StringComparison.Ordinal) is var bar and > 0
                        ? new AllCriterion([
                            new IndexCriterion(param.Name, IndexTable.Uris, [new UriCondition(UriMatch.Exact, v[..bar])]),
                            new IndexCriterion("version", IndexTable.Tokens, [new TokenCondition(null, v[(bar + 1)..])]),
                        ])
                        : (Criterion)new IndexCriterion(param.Name, IndexTable.Uris, [new UriCondition(UriMatch.Exact, v)])).ToList());
                }

                return new IndexCriterion(param.Name, IndexTable.Uris, values.Select(v => (IndexCondition)new UriCondition(uriMatch, SearchValueText.Unescape(v))).ToList());
            case SearchParamType.Date or SearchParamType.Number or SearchParamType.Quantity:
                if (modifier is not null)
                {
                    throw UnknownModifier(param, modifier, name);
                }

                return new IndexCriterion(param.Name, param.Table, values.Select(v => ParseOrdered(param.Type, v, name)).ToList());
            case SearchParamType.Reference:
                return ParseReference(param, modifier, name, values);
            case SearchParamType.Composite:
                if (modifier is not null)
                {
                    throw UnknownModifier(param, modifier, name);
                }

                return ParseComposite(param, name, values);
            default:
                throw new UnsupportedSearchException($"Search parameter '{param.Name}' of {resourceType} is not supported.", name);
        }
    }

    private IndexCriterion ParseReference(SearchParam param, string? modifier, string name, List<string> values)
    {
        if (modifier == "identifier")
        {
            return new IndexCriterion(SearchParam.IdentifierKey(param.Name), IndexTable.Tokens, values.Select(ParseToken).ToList());
        }

        string? type = null;
        if (modifier is not null)
        {
            if (!ResourceTypes.IsKnown(modifier) || (param.Targets.Count > 0 && !param.Targets.Contains(modifier)))
            {
                throw UnknownModifier(param, modifier, name);
            }

            type = modifier;
        }

        var conditions = new List<IndexCondition>();
        foreach (var raw in values.Select(SearchValueText.Unescape))
        {
            if (ReferenceText.Parse(raw, _localBase) is { Type.Length: > 0 } local)
            {
                if (type is not null && local.Type != type)
                {
                    throw new InvalidInputException($"'{raw}' is not a {type} reference, as '{name}' asks.", name);
                }

                conditions.Add(new ReferenceCondition(local.Type, local.Id, null));
            }
            else if (raw.Contains(':', StringComparison.Ordinal))
            {
                // A canonical url|version finds the references to that version (SearchIndexer indexes both forms).
                var bar = raw.IndexOf('|', StringComparison.Ordinal);
                conditions.Add(new ReferenceCondition(null, null, bar > 0 && bar == raw.Length - 1 ? raw[..bar] : raw));
            }
            else if (raw.Contains('/', StringComparison.Ordinal))
            {
                throw new InvalidInputException($"'{raw}' is neither an id, Type/id nor an absolute URL.", name);
            }
            else
            {
                conditions.Add(new ReferenceCondition(type, raw, null));
            }
        }

        return new IndexCriterion(param.Name, IndexTable.References, conditions);
    }

    private CompositeCriterion ParseComposite(SearchParam param, string name, List<string> values)
    {
        var anyOf = new List<IReadOnlyList<CompositePart>>();
        foreach (var value in values)
        {
            var parts = SearchValueText.Split(value, '$');
            if (parts.Count != param.Components.Count || parts.Any(p => p.Length == 0))
            {
                throw new InvalidInputException(
                    $"'{name}' takes {param.Components.Count} values separated by '$' ({string.Join("$", param.Components.Select(c => c.Param.Name))}).", name);
            }

            var components = new List<CompositePart>();
            for (var i = 0; i < parts.Count; i++)
            {
                var component = param.Components[i].Param;
                IndexCondition condition = component.Type switch
                {
                    SearchParamType.Token => ParseToken(parts[i]),
                    SearchParamType.String => new StringCondition(StringMatch.Prefix, TextNormalizer.Normalize(SearchValueText.Unescape(parts[i]))),
                    SearchParamType.Uri => new UriCondition(UriMatch.Exact, SearchValueText.Unescape(parts[i])),
                    SearchParamType.Reference => ParseReference(component, null, name, [parts[i]]).AnyOf[0],
                    SearchParamType.Date or SearchParamType.Number or SearchParamType.Quantity => ParseOrdered(component.Type, parts[i], name),
                    _ => throw new InvalidInputException($"Component '{component.Name}' of '{param.Name}' cannot be searched.", name),
                };
                components.Add(new CompositePart(SearchParam.ComponentKey(param.Name, i), component.Table, condition));
            }

            anyOf.Add(components);
        }

        return new CompositeCriterion(param.Name, anyOf);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), bool> BooleanParams = new();

    /// <summary>A token parameter whose expression is one boolean element of the type (<c>Patient.active</c>, <c>Group.actual</c>).</summary>
    private static bool IsBoolean(string resourceType, SearchParam param) => BooleanParams.GetOrAdd((resourceType, param.Name), _ =>
        param.Expression.Trim() is var expression && expression.StartsWith(resourceType + ".", StringComparison.Ordinal)
        && expression[(resourceType.Length + 1)..] is var element && element.All(char.IsLetter)
        && ModelInfo.ModelInspector.FindClassMapping(resourceType)?.FindMappedElementByName(element)?.ImplementingType == typeof(FhirBoolean));

    private static TokenCondition ParseToken(string value)
    {
        var parts = SearchValueText.Split(value, '|');
        if (parts.Count == 1)
        {
            return new TokenCondition(null, SearchValueText.Unescape(parts[0]));
        }

        var system = SearchValueText.Unescape(parts[0]);
        var code = SearchValueText.Unescape(string.Join('|', parts.Skip(1)));
        return new TokenCondition(system, code.Length == 0 ? null : code);
    }

    /// <summary><c>system|code</c>, both required: the code system names the hierarchy <c>:above</c> / <c>:below</c> walk.</summary>
    private static TokenCondition ParseCode(string value, string name) =>
        ParseToken(value) is { System.Length: > 0, Code: not null } token
            ? token
            : throw new InvalidInputException($"'{name}' takes system|code (the code system holds the hierarchy), not '{value}'.", name);

    private static TokenCondition ParseOfType(string value, string name)
    {
        var parts = SearchValueText.Split(value, '|');
        if (parts.Count != 3 || parts.Any(p => p.Length == 0))
        {
            throw new InvalidInputException($"'{name}' takes type-system|type-code|value, not '{value}'.", name);
        }

        return new TokenCondition(SearchValueText.Unescape(parts[0]), $"{SearchValueText.Unescape(parts[1])}|{SearchValueText.Unescape(parts[2])}");
    }

    private static IndexCondition ParseOrdered(SearchParamType type, string value, string name)
    {
        var prefix = SearchPrefix.Eq;
        var text = value;
        if (text.Length >= 2 && char.IsAsciiLetterLower(text[0]) && char.IsAsciiLetterLower(text[1]))
        {
            if (!Prefixes.TryGetValue(text[..2], out prefix))
            {
                throw new InvalidInputException(type == SearchParamType.Date
                    ? $"'{value}' in '{name}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]), with an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)."
                    : $"'{value}' in '{name}' is not a number or quantity with an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap).", name);
            }

            text = text[2..];
        }

        switch (type)
        {
            case SearchParamType.Date:
                if (!DateRange.TryParse(SearchValueText.Unescape(text), out var range))
                {
                    throw new InvalidInputException($"'{text}' in '{name}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]).", name);
                }

                if (prefix == SearchPrefix.Ap)
                {
                    // ap: the range widened by 10% of the gap between the value and now (search.html#prefix).
                    var gap = (long)(Math.Abs(DateTime.UtcNow.Ticks - range.Low) * 0.1);
                    return new DateCondition(prefix, Math.Max(DateRange.Min, range.Low - gap), Math.Min(DateRange.Max, range.High + gap));
                }

                return new DateCondition(prefix, range.Low, range.High);
            case SearchParamType.Number:
                var (number, from, to) = ParseNumber(prefix, SearchValueText.Unescape(text), name);
                return Condition(prefix, number, from, to);
            default:
                var parts = SearchValueText.Split(text, '|');
                if (parts.Count is not (1 or 3))
                {
                    throw new InvalidInputException($"'{name}' takes number, number|system|code or number||code, not '{value}'.", name);
                }

                var (amount, low, high) = ParseNumber(prefix, SearchValueText.Unescape(parts[0]), name);
                var system = parts.Count == 3 && parts[1].Length > 0 ? SearchValueText.Unescape(parts[1]) : null;
                var code = parts.Count == 3 && parts[2].Length > 0 ? SearchValueText.Unescape(parts[2]) : null;
                if (system == UcumUnits.System && code is not null && UcumUnits.TryCanonical(code, amount, out var unit, out var canonical))
                {
                    // Converted as the indexer converts the stored quantity's value, so the same amount gives the same double.
                    UcumUnits.TryCanonical(code, low, out _, out var canonicalLow);
                    UcumUnits.TryCanonical(code, high, out _, out var canonicalHigh);
                    return new QuantityCondition(Around(prefix, canonical, canonicalLow, canonicalHigh), system, unit, Canonical: true);
                }

                return new QuantityCondition(Condition(prefix, amount, low, high), system, code, Canonical: false);
        }
    }

    /// <summary>
    /// A FHIR decimal (datatypes.html#decimal) and the range its precision implies (search.html#number: 100 means
    /// [99.5, 100.5), 1e2 [50, 150), ap100 within 10%), worked out in decimals: 0.8 means [0.75, 0.85), where the
    /// doubles 0.8 + 0.05 make 0.8500000000000001. A value System.Decimal cannot hold with its range (finer than 27
    /// decimal places, or near or past 7.9e28) is refused: read as a double or a rounded decimal it would silently
    /// become another (1e-29 would become 0). No stored number lies past decimal's range: FHIR decimals are read as one.
    /// </summary>
    private static (decimal Value, decimal Low, decimal High) ParseNumber(SearchPrefix prefix, string text, string name)
    {
        if (!DecimalText().IsMatch(text))
        {
            throw new InvalidInputException($"'{text}' in '{name}' is not a number (a FHIR decimal such as 5, -0.25 or 1.5e3).", name);
        }

        var mantissa = text.Split('e', 'E');
        var point = mantissa[0].IndexOf('.', StringComparison.Ordinal);
        var decimals = point < 0 ? 0 : mantissa[0].Length - point - 1;
        if (mantissa.Length == 2)
        {
            decimals = int.TryParse(mantissa[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exponent)
                && Math.Abs(exponent) < 100 ? decimals - exponent : int.MaxValue;
        }

        // The parse rounds what does not fit (1e-29 to 0): it is exact when the value keeps the digits it was given.
        if (decimals is >= -28 and <= 27 && decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            && value.Scale == Math.Max(decimals, 0))
        {
            var half = decimals >= 0 ? new decimal(5, 0, 0, false, (byte)(decimals + 1)) : 5 * Pow10(-decimals - 1);
            var margin = prefix == SearchPrefix.Ap ? Math.Max(Math.Abs(value) * 0.1m, half) : half;
            if (margin <= decimal.MaxValue - Math.Abs(value))
            {
                return (value, value - margin, value + margin);
            }
        }

        throw new InvalidInputException(
            $"'{text}' in '{name}' cannot be searched exactly: the hub searches numbers of at most 28 significant digits and 27 decimal places, below 7.9e28.", name);
    }

    private static decimal Pow10(int exponent)
    {
        var power = 1m;
        for (var i = 0; i < exponent; i++)
        {
            power *= 10;
        }

        return power;
    }

    [GeneratedRegex(@"\A-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex DecimalText();

    private static NumberCondition Condition(SearchPrefix prefix, decimal value, decimal low, decimal high) =>
        Around(prefix, NumberIndexRow.ToDouble(value), NumberIndexRow.ToDouble(low), NumberIndexRow.ToDouble(high));

    /// <summary>
    /// A number condition whose range holds the value's own double, as the index holds numbers: a precision finer
    /// than a double's at that magnitude (12345678901234567890.123456789 means ± 5e-10, where doubles are 2,048 apart)
    /// would otherwise make [low, high) empty, and the value would not find itself.
    /// </summary>
    private static NumberCondition Around(SearchPrefix prefix, double value, double low, double high) =>
        new(prefix, value, low, Math.Max(high, Math.BitIncrement(value)));

    private IEnumerable<SortClause> ParseSort(IReadOnlyList<string> resourceTypes, string value)
    {
        foreach (var raw in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var descending = raw.StartsWith('-');
            var name = descending ? raw[1..] : raw;
            if (name is "_id" or "_lastUpdated")
            {
                yield return new SortClause(name, IndexTable.None, descending);
                continue;
            }

            var param = Searchable(resourceTypes.Count == 1 ? registry.Find(resourceTypes[0], name) : registry.Shared(resourceTypes).FirstOrDefault(p => p.Name == name), "_sort");
            if (param is not null && resourceTypes.Count > 1)
            {
                // Several types: the rows every type reads the parameter's values from.
                var each = resourceTypes.Select(t => registry.Find(t, name)!).ToList();
                param = param with
                {
                    UnionOf = each.Any(p => p.UnionOf is not null) ? [.. each.SelectMany(p => p.UnionOf ?? [p.Name]).Distinct()] : null,
                    SubsetOf = each.Select(p => p.SubsetOf).FirstOrDefault(s => s is not null),
                };
            }

            if (param is null || param.Table == IndexTable.None)
            {
                throw new UnsupportedSearchException($"Cannot sort on '{name}': it is not a search parameter of {string.Join(", ", resourceTypes)} that has values to sort.", "_sort");
            }

            yield return new SortClause(name, param.Table, descending, param.UnionOf, param.SubsetOf);
        }
    }

    private IncludeSpec ParseInclude(IReadOnlyList<string> resourceTypes, string value, string name, bool reverse)
    {
        var iterate = name.EndsWith(":iterate", StringComparison.Ordinal) || name.EndsWith(":recurse", StringComparison.Ordinal);
        if (value == "*")
        {
            return new IncludeSpec("*", null, null, iterate);
        }

        var parts = value.Split(':');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0))
        {
            throw new InvalidInputException($"{name}={value} is not of the form Type:parameter[:targetType].", name);
        }

        if (!ResourceTypes.IsKnown(parts[0]))
        {
            throw new InvalidInputException($"'{parts[0]}' in {name}={value} is not a resource type.", name);
        }

        var (source, code) = (parts[0], parts[1]);
        var target = parts.Length == 3 ? parts[2] : null;
        if (target is not null && !ResourceTypes.IsKnown(target))
        {
            throw new InvalidInputException($"'{target}' in {name}={value} is not a resource type.", name);
        }

        if (code == "*")
        {
            return new IncludeSpec(source, null, target, iterate);
        }

        var param = registry.Find(source, code);
        if (param is null || param.Type != SearchParamType.Reference)
        {
            throw new UnsupportedSearchException($"'{code}' in {name}={value} is not a reference search parameter of {source}.", name);
        }

        if (!iterate && resourceTypes.Count == 1 && (reverse ? param.Targets.Count > 0 && !param.Targets.Contains(resourceTypes[0]) : source != resourceTypes[0]))
        {
            // Well formed, but it can add nothing to this search: refused under strict handling, where it is most often a
            // missing :iterate, and ignored with a warning under lenient handling (HAPI FHIR ignores it silently).
            throw new UnsupportedSearchException(reverse
                ? $"{source}.{code} cannot refer to {resourceTypes[0]}, so {name}={value} would never add anything."
                : $"{name}={value} starts from {source}, but the search is for {resourceTypes[0]}; use _include:iterate to follow included resources.", name);
        }

        return new IncludeSpec(source, code, target, iterate, param.SubsetOf);
    }

    /// <summary>
    /// A custom parameter added or changed since the stored resources were indexed would miss the resources written
    /// before it: refused, saying why, until the re-index job finishes.
    /// </summary>
    private SearchParam? Searchable(SearchParam? param, string name) =>
        param is not null && registry.Pending(param) is { } reason
            ? throw new UnsupportedSearchException($"Search parameter '{param.Name}' cannot be used yet: {reason}", name)
            : param;

    private static UnsupportedSearchException UnknownModifier(SearchParam param, string modifier, string name) =>
        new($"Modifier ':{modifier}' is not supported for the {Lower(param.Type)} parameter '{param.Name}'.", name);

    private static string Lower(SearchParamType type) => type.ToString().ToLowerInvariant();

    /// <summary>The warning that reports a parameter ignored under <c>Prefer: handling=lenient</c>.</summary>
    internal static OperationOutcome.IssueComponent Warning(string name, string message, OperationOutcome.IssueType code = OperationOutcome.IssueType.NotSupported) => new()
    {
        Severity = OperationOutcome.IssueSeverity.Warning,
        Code = code,
        Diagnostics = $"Ignored '{name}': {message}",
        Expression = [name],
    };
}
