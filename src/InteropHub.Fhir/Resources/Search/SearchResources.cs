using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Search.Terminology;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Search;

/// <param name="ResourceType">The type searched, or null for a system search (<c>_type</c> names the types).</param>
/// <param name="Lenient"><c>Prefer: handling=lenient</c>: unknown parameters are ignored and reported, not refused.</param>
/// <param name="Compartment">For <c>GET [base]/Patient/123/Encounter</c>: the compartment's type and id.</param>
/// <param name="BaseUrl">The FHIR base the request came to: a reference value absolute on it is local (search.html#reference).</param>
public sealed record SearchRequest(
    string? ResourceType,
    IReadOnlyList<KeyValuePair<string, string>> Query,
    bool Lenient = false,
    ResourceKey? Compartment = null,
    string? BaseUrl = null);

/// <param name="Matches">The page's matches (search.mode = match), already subsetted for _summary/_elements.</param>
/// <param name="Included">Resources added by _include/_revinclude (search.mode = include).</param>
/// <param name="Outcome">Warnings for the bundle (search.mode = outcome): ignored parameters, the include cap.</param>
/// <param name="SelfQuery">The query string of the parameters applied (for Bundle.link self).</param>
/// <param name="NextQuery">The query string of the next page, or null on the last page.</param>
/// <param name="PreviousQuery">The query string of the previous page, or null on the first page.</param>
public sealed record SearchPage(
    IReadOnlyList<StoredResource> Matches,
    IReadOnlyList<StoredResource> Included,
    OperationOutcome? Outcome,
    long? Total,
    string SelfQuery,
    string? NextQuery,
    string? PreviousQuery = null);

/// <summary>
/// Type, system and compartment search (http.html#search, search.html): parses and validates the query, asks the
/// store for one keyset page, adds the total, the included resources and the warnings, and applies _summary or
/// _elements. Result order is _sort then row id, so pages stay stable while resources are written.
/// </summary>
public sealed class SearchResources(IResourceStore store, HubOptions options, SearchParser parser, LocalTerminology terminology, FhirSerializers serializers)
{
    /// <summary>How many times <c>:iterate</c> follows the includes again from what the round before added.</summary>
    private const int MaxIterations = 3;

    public Task<SearchPage> HandleAsync(SearchRequest request, CancellationToken ct) => HandleAsync(request, store, ct);

    /// <summary>
    /// The search, reading through <paramref name="reads"/>: the store, or the write session of a transaction Bundle,
    /// whose own writes it then sees (http.html#trules: its GET entries run after its writes).
    /// </summary>
    public async Task<SearchPage> HandleAsync(SearchRequest request, ISearchReader reads, CancellationToken ct)
    {
        var types = Types(request);
        var query = await terminology.ExpandAsync(parser.ParseQuery(types, LocalValues(request, types), request.Lenient), request.Lenient, ct);
        var criteria = request.Compartment is { } compartment ? Compartments.Restrict(query.Criteria, compartment, parser.Registry) : query.Criteria;
        var issues = new List<OperationOutcome.IssueComponent>(criteria.Ignored);
        // _type is among the result parameters, as given.
        var applied = criteria.Applied.Concat(query.ResultParameters).ToList();

        if (CountOnly(query))
        {
            var count = await reads.CountAsync(criteria, ct);
            return new SearchPage([], [], Outcome(issues), count, SearchCursorText.Query(applied), null);
        }

        var cursor = SearchCursorText.Decode(query.Cursor, query.Sort);
        var matches = query.Count == 0 ? [] : await reads.FindAsync(criteria, query.Sort, cursor, query.Count + 1, ct);
        var more = matches.Count > query.Count;
        var page = more ? matches.Take(query.Count).ToList() : matches;
        var backward = cursor?.Before == true;
        if (backward)
        {
            // A previous page comes back nearest first.
            page = page.Reverse().ToList();
        }
        var resources = await ReadAsync(reads, page, ct);
        var total = await TotalAsync(query, more, page.Count,
            mode => mode == TotalMode.Estimate ? reads.EstimateCountAsync(criteria, ct) : reads.CountAsync(criteria, ct));
        var included = await IncludeAsync(reads, query, page, resources, issues, ct);

        var self = query.Cursor is null ? applied : [.. applied, new(Paging.CursorParameter, query.Cursor)];
        // Keyset both ways (search.html#paging): next continues after the page's last match, previous ends before its
        // first, so both stay right while resources are written; there is a previous page whenever this one was
        // reached through a cursor, except going back past the first match.
        string? Link(ResourceMatch at, bool before) => SearchCursorText.Query([.. applied, new(Paging.CursorParameter, SearchCursorText.Encode(at, before))]);
        var next = page.Count > 0 && (more || backward) ? Link(page[^1], false) : null;
        var previous = page.Count > 0 && (backward ? more : cursor is not null) ? Link(page[0], true)
            : page.Count == 0 && cursor is { Before: false } ? Link(new ResourceMatch(cursor.Rid, "", "", cursor.SortValues), true)
            : null;
        return new SearchPage(Subset(resources, query), included, Outcome(issues), total, SearchCursorText.Query(self), next, previous);
    }

    /// <summary>_summary=count, or _count=0 (no resources, only how many match, as R5 states) unless _total=none.</summary>
    private static bool CountOnly(SearchQuery query) =>
        query.Summary == SummaryMode.Count
        || (query.Count == 0 && query.Cursor is null && !query.ResultParameters.Any(p => p is { Key: "_total", Value: "none" }));

    /// <summary>
    /// A page's total (search.html#total): a first page that holds every match is its own exact total, said unless
    /// _total=none asks not to; otherwise <paramref name="count"/> is asked for it when _total is estimate or accurate.
    /// </summary>
    private static async Task<long?> TotalAsync(SearchQuery query, bool more, int onPage, Func<TotalMode, Task<long>> count)
    {
        var wholeResult = query.Cursor is null && !more && query.Count > 0;
        return query.Total switch
        {
            TotalMode.None when wholeResult && !query.ResultParameters.Any(p => p.Key == "_total") => onPage,
            TotalMode.None => null,
            _ when wholeResult => onPage,
            var mode => await count(mode),
        };
    }

    /// <summary>
    /// The query with each value of a reference parameter that is absolute on the request's base made relative
    /// (<c>subject=http://host/fhir/Patient/1</c> is <c>Patient/1</c>), as the hub stores such references.
    /// </summary>
    private IReadOnlyList<KeyValuePair<string, string>> LocalValues(SearchRequest request, List<string> types)
    {
        if (request.BaseUrl is not { } baseUrl || types.Count == 0)
        {
            return request.Query;
        }

        return request.Query.Select(p =>
        {
            var name = p.Key.Split(':', 2)[0];
            return !name.Contains('.', StringComparison.Ordinal) && p.Value.Contains("://", StringComparison.Ordinal)
                && types.All(t => parser.Registry.Find(t, name) is { Type: Hl7.Fhir.Model.SearchParamType.Reference })
                ? new KeyValuePair<string, string>(p.Key, string.Join(',', p.Value.Split(',').Select(v => LocalReferences.Relative(v, baseUrl) ?? v)))
                : p;
        }).ToList();
    }

    private List<string> Types(SearchRequest request)
    {
        var named = request.Query.Where(p => p.Key == "_type").SelectMany(p => p.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToList();
        if (request.ResourceType is { } type)
        {
            if (named.Count > 0 && !request.Lenient)
            {
                throw new InvalidInputException("_type is for a search across types (GET [base]?_type=…), not for a search of one type.", "_type");
            }

            return [type];
        }

        foreach (var name in named)
        {
            if (!ResourceTypes.IsKnown(name))
            {
                throw new InvalidInputException($"'{name}' in _type is not a resource type.", "_type");
            }
        }

        // GET [base]/Patient/123/* (http.html#search): every type that can be in the compartment.
        return named.Count == 0 && request.Compartment is { } compartment ? [.. Compartments.MemberTypes(compartment.ResourceType, parser.Registry)] : named;
    }

    private static async Task<List<StoredResource>> ReadAsync(ISearchReader reads, IReadOnlyList<ResourceMatch> matches, CancellationToken ct)
    {
        var found = new Dictionary<(string, string), StoredResource>();
        foreach (var group in matches.GroupBy(m => m.ResourceType))
        {
            foreach (var resource in await reads.ReadManyAsync(group.Key, group.Select(m => m.Id).ToList(), ct))
            {
                found[(resource.ResourceType, resource.Id)] = resource;
            }
        }

        return matches.Select(m => found.GetValueOrDefault((m.ResourceType, m.Id))).OfType<StoredResource>().ToList();
    }

    /// <summary>
    /// _include and _revinclude (search.html#include) in rounds: the first follows every include from the page's matches,
    /// each further one (<c>:iterate</c>) only from what the round before added, until a round adds nothing. Each round
    /// is one lookup per include that answers the live related resources at once, then one read per type of what is new.
    /// Past <see cref="MaxIterations"/> iterations, or <see cref="HubOptions.MaxIncludes"/> resources, it stops with a warning
    /// (HAPI FHIR likewise stops at its include maximum): the cap bounds the work, not only the page.
    /// </summary>
    private async Task<List<StoredResource>> IncludeAsync(ISearchReader reads, SearchQuery query, IReadOnlyList<ResourceMatch> page, IReadOnlyList<StoredResource> pageResources,
        List<OperationOutcome.IssueComponent> issues, CancellationToken ct)
    {
        var included = new List<StoredResource>();
        if (query.Includes.Count == 0 && query.RevIncludes.Count == 0)
        {
            return included;
        }

        var seen = page.Select(m => (m.ResourceType, m.Id)).ToHashSet();
        IReadOnlyList<ResourceMatch> frontier = page;
        IReadOnlyList<StoredResource> frontierResources = pageResources;
        for (var round = 0; frontier.Count > 0; round++)
        {
            var includes = query.Includes.Where(i => round == 0 || i.Iterate).ToList();
            var revIncludes = query.RevIncludes.Where(i => round == 0 || i.Iterate).ToList();
            if (includes.Count + revIncludes.Count == 0)
            {
                break;
            }

            var fresh = new List<ResourceMatch>();
            var capped = false;
            // What a lookup may return: up to the resources still wanted plus one (to know the cap is passed), besides
            // those already in the bundle, which it may find again.
            int Limit() => options.MaxIncludes - included.Count - fresh.Count + 1 + seen.Count;
            void Add(IEnumerable<ResourceMatch> found) => fresh.AddRange(found.Where(m => seen.Add((m.ResourceType, m.Id))));
            bool Full() => capped = included.Count + fresh.Count > options.MaxIncludes;

            foreach (var include in includes)
            {
                var sources = frontier.Where(m => include.SourceType == "*" || m.ResourceType == include.SourceType).Select(m => m.Rid).ToList();
                Add(await reads.FindReferencesAsync(sources, include.Param, include.TargetType, Limit(), ct));
                if (include.Subset is { } subset && (include.TargetType is null || include.TargetType == subset.TargetType))
                {
                    // Its references to resources stored here are the wider parameter's rows of the type.
                    Add(await reads.FindReferencesAsync(sources, subset.Param, subset.TargetType, Limit(), ct));
                }

                Add(await CanonicalTargetsAsync(reads, include, sources, Limit(), ct));
                if (Full())
                {
                    break;
                }
            }

            // Once full, what is left is not looked up.
            foreach (var include in capped ? [] : revIncludes)
            {
                var targets = frontier.Where(m => include.TargetType is null || m.ResourceType == include.TargetType).ToList();
                var links = Links(include, targets.Select(m => m.ResourceType).ToHashSet());
                var urls = CanonicalUrls(frontierResources.Where(r => include.TargetType is null || r.ResourceType == include.TargetType));
                // In slices, so one statement's parameters stay within what the databases take.
                foreach (var slice in targets.Select(m => new ResourceKey(m.ResourceType, m.Id)).Chunk(500))
                {
                    Add(await reads.FindReferringAsync(links, slice, [], Limit(), ct));
                }

                Add(await reads.FindReferringAsync(links, [], urls, Limit(), ct));
                if (Full())
                {
                    break;
                }
            }

            if (fresh.Count > 0 && round > MaxIterations)
            {
                // One iteration more would have added these: said, not followed.
                issues.Add(Warning($"_include:iterate/_revinclude:iterate stopped after {MaxIterations} iterations; resources further away were not included."));
                break;
            }

            if (capped)
            {
                fresh = fresh.Take(options.MaxIncludes - included.Count).ToList();
                issues.Add(Warning($"_include/_revinclude matched more than {options.MaxIncludes} resources (InteropHub:MaxIncludes); the page includes the first {options.MaxIncludes}."));
            }

            var read = await ReadAsync(reads, fresh, ct);
            included.AddRange(read);
            (frontier, frontierResources) = capped ? ([], []) : (fresh, read);
        }

        return included;
    }

    private static OperationOutcome.IssueComponent Warning(string diagnostics) => new()
    {
        Severity = OperationOutcome.IssueSeverity.Warning,
        Code = OperationOutcome.IssueType.TooCostly,
        Diagnostics = diagnostics,
    };

    /// <summary>
    /// What an include's parameter names by canonical URL (<c>MeasureReport:measure</c>, <c>CarePlan:instantiates-canonical</c>):
    /// the resources of its target types (those with a <c>url</c>) whose <c>url</c> is one of them, any version.
    /// </summary>
    private async Task<IReadOnlyList<ResourceMatch>> CanonicalTargetsAsync(ISearchReader reads, IncludeSpec include, List<long> sources, int limit, CancellationToken ct)
    {
        if (include.Param is not { } param || include.SourceType == "*" || sources.Count == 0 || parser.Registry.Find(include.SourceType, param) is not { } definition)
        {
            return [];
        }

        var types = (include.TargetType is { } type ? [type] : definition.Targets)
            .Where(t => parser.Registry.Find(t, "url") is { Type: Hl7.Fhir.Model.SearchParamType.Uri }).ToList();
        if (types.Count == 0)
        {
            return [];
        }

        var urls = await reads.FindCanonicalReferencesAsync(sources, param, limit, ct);
        if (urls.Count == 0)
        {
            return [];
        }

        var byUrl = new SearchCriteria(types, [new IndexCriterion("url", IndexTable.Uris, [.. urls.Select(u => (IndexCondition)new UriCondition(UriMatch.Exact, u))])], [], []);
        return await reads.FindAsync(byUrl, [], null, limit, ct);
    }

    /// <summary>The URLs of those of the resources that have one (Measure, Questionnaire…), each with its type: what canonical references name them by.</summary>
    private List<(string ResourceType, string Url)> CanonicalUrls(IEnumerable<StoredResource> resources)
    {
        var urls = new List<(string, string)>();
        foreach (var stored in resources.Where(r => parser.Registry.Find(r.ResourceType, "url") is { Type: Hl7.Fhir.Model.SearchParamType.Uri }))
        {
            using var json = System.Text.Json.JsonDocument.Parse(stored.Json);
            if (json.RootElement.TryGetProperty("url", out var url) && url.ValueKind == System.Text.Json.JsonValueKind.String && url.GetString() is { Length: > 0 } value)
            {
                urls.Add((stored.ResourceType, value));
            }
        }

        return urls;
    }

    /// <summary>
    /// The links a revinclude follows to resources of <paramref name="targetTypes"/>: its parameter, or, for <c>Type:*</c>
    /// and <c>*</c>, every reference parameter of the type (of every type), each for the target types it may point to
    /// (parameters read through a wider one's rows are left to it); a narrowing parameter also reads the wider one's
    /// rows of its type.
    /// </summary>
    private List<ReferenceLink> Links(IncludeSpec include, HashSet<string> targetTypes)
    {
        IEnumerable<SearchParam> Of(string type) => include.Param is { } param
            ? parser.Registry.Find(type, param) is { } named ? [named] : []
            : parser.Registry.For(type).Values.Where(p => p.Type == SearchParamType.Reference && p.SubsetOf is null && p.UnionOf is null);

        var links = new List<ReferenceLink>();
        foreach (var type in include.SourceType == "*" ? ResourceTypes.All : [include.SourceType])
        {
            foreach (var param in Of(type))
            {
                links.AddRange(targetTypes.Where(t => param.Targets.Count == 0 || param.Targets.Contains(t)).Select(t => new ReferenceLink(type, param.Name, t)));
                if (param.SubsetOf is { } subset && targetTypes.Contains(subset.TargetType))
                {
                    links.Add(new ReferenceLink(type, subset.Param, subset.TargetType));
                }
            }
        }

        return links;
    }

    /// <summary>_summary and _elements (search.html#summary, #elements) on a page's matches: see <see cref="Filter"/>.</summary>
    private List<StoredResource> Subset(List<StoredResource> resources, SearchQuery query) =>
        query.Summary == SummaryMode.False && query.Elements is { } elements
            ? resources.Select(stored => Filter(SummaryMode.False, SearchParser.ElementsFor(elements, stored.ResourceType)) is { } own
                ? stored with { Json = serializers.ToJsonBytes(serializers.ParseStored(stored.Json), own) }
                : stored).ToList()
            : Filter(query.Summary, query.Elements) is { } filter
                ? resources.Select(stored => stored with { Json = serializers.ToJsonBytes(serializers.ParseStored(stored.Json), filter) }).ToList()
                : resources;

    /// <summary>
    /// The SDK's serialisation filter for _summary or _elements: the parts asked for, with id and meta, tagged SUBSETTED
    /// by the filter itself (with the tag's R4 system and the older http://hl7.org/fhir/v3 one); null for the whole resource.
    /// </summary>
    public static Func<SerializationFilter>? Filter(SummaryMode summary, IReadOnlyList<string>? elements) => summary switch
    {
        SummaryMode.True => SerializationFilter.ForSummary,
        SummaryMode.Text => SerializationFilter.ForText,
        SummaryMode.Data => SerializationFilter.ForData,
        _ when elements is not null => () => SerializationFilter.ForElements([.. elements, "id", "meta"]),
        _ => null,
    };

    private static OperationOutcome? Outcome(List<OperationOutcome.IssueComponent> issues) =>
        issues.Count == 0 ? null : new OperationOutcome { Issue = issues };
}
