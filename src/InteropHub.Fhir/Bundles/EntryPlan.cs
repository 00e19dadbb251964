using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Patch;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.Bundles;

/// <summary>What a GET entry reads.</summary>
internal enum ReadKind
{
    Read,
    VRead,
    Search,
    History,
}

/// <summary>
/// One entry of a batch or transaction, checked and parsed from <c>Bundle.entry.request</c> (bundle.html,
/// http.html#transaction): the interaction, its target and its preconditions. What processing resolves
/// (the id a POST gets, what conditional criteria match) is filled in as the entry runs.
/// </summary>
internal sealed partial class EntryPlan
{
    private EntryPlan(int index, Bundle.HTTPVerb method, string url, Target target)
    {
        Index = index;
        Method = method;
        Url = url;
        ResourceType = target.ResourceType;
        Id = target.Id;
        VersionId = target.VersionId;
        Criteria = target.Criteria;
        Read = target.Read;
        Query = target.Query ?? [];
        Compartment = target.Compartment;
        _conditions = target.Conditions;
    }

    /// <summary>The search parameters of the conditional URL (<see cref="Criteria"/> or <see cref="IfNoneExist"/>), as given.</summary>
    private IReadOnlyList<KeyValuePair<string, string>>? _conditions;

    public int Index { get; }

    public Bundle.HTTPVerb Method { get; }

    /// <summary>The request URL relative to the base, as the entry gave it.</summary>
    public string Url { get; }

    /// <summary>The resource type of the URL; empty for system history.</summary>
    public string ResourceType { get; }

    public string? Id { get; }

    public string? VersionId { get; }

    /// <summary>Criteria of a conditional PUT, PATCH or DELETE.</summary>
    public SearchCriteria? Criteria { get; private set; }

    public SearchCriteria? IfNoneExist { get; private set; }

    public IReadOnlyList<int>? IfMatch { get; private init; }

    public string? IfNoneMatch { get; private init; }

    /// <summary>For a PUT: the version <see cref="IfNoneMatch"/> names (<see cref="ETags.AnyVersion"/> for <c>*</c>), which must not be current.</summary>
    public IReadOnlyList<int>? IfNoneMatchVersion { get; private init; }

    public DateTimeOffset? IfModifiedSince { get; private init; }

    public ReadKind Read { get; }

    /// <summary>A compartment search's compartment (<c>GET Patient/123/Observation</c>); its type is <see cref="ResourceType"/>.</summary>
    public Storage.ResourceKey? Compartment { get; }

    /// <summary>The query of a search or history entry, in order, URL-decoded.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Query { get; }

    /// <summary>The resource of a POST or PUT, or a FHIRPath Patch's Parameters.</summary>
    public Resource? Resource { get; private init; }

    public IResourcePatch? Patch { get; private init; }

    /// <summary>A <c>urn:uuid:</c>/<c>urn:oid:</c> placeholder or other fullUrl that references in the bundle may use.</summary>
    public string? FullUrl { get; private init; }

    /// <summary>The FHIR base the bundle was posted to: a reference absolute on it is local (<see cref="Resources.LocalReferences"/>).</summary>
    public string BaseUrl { get; private init; } = "";

    /// <summary>The id the entry writes, once resolved.</summary>
    public string? ResolvedId { get; set; }

    /// <summary>A conditional create's match: the entry then writes nothing.</summary>
    public Storage.StoredResource? Existing { get; set; }

    /// <summary>The entry's answer, once processed.</summary>
    public EntryResponse? Response { get; set; }

    /// <summary>
    /// The placeholders of other entries that the conditional URL names as values of reference parameters
    /// (<c>Observation?subject=urn:uuid:…</c>): its criteria hold once those entries have their ids
    /// (<see cref="ResolvePlaceholdersAsync"/>). Any other <c>urn:uuid:</c> or <c>urn:oid:</c> value (an identifier, an
    /// identifier system, a value no entry has as its fullUrl) is an ordinary value.
    /// </summary>
    public IReadOnlyList<string> CriteriaPlaceholders(IReadOnlySet<string> fullUrls, SearchParser parser) =>
        (_conditions ?? []).Where(p => BundleReferences.NamesReference(parser, ResourceType, p.Key)).SelectMany(p => p.Value.Split(','))
            .Where(v => BundleReferences.IsPlaceholder(v) && fullUrls.Contains(v) && v != FullUrl).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Rewrites the placeholders of the conditional URL to the references of their entries and parses its criteria again
    /// (with their terminology expanded), so the conditional create, update or patch searches for what they name.
    /// </summary>
    public async Task ResolvePlaceholdersAsync(IReadOnlyDictionary<string, string> targets, SearchParser parser, LocalTerminology terminology,
        CancellationToken ct)
    {
        var criteria = await terminology.ExpandAsync(parser.ParseCriteria(ResourceType, BundleReferences.WithTargets(parser, ResourceType, _conditions!, targets)), ct);
        if (Method == Bundle.HTTPVerb.POST)
        {
            IfNoneExist = criteria;
        }
        else
        {
            Criteria = criteria;
        }

        _conditions = null;
    }

    public bool IsWrite => Method is Bundle.HTTPVerb.POST or Bundle.HTTPVerb.PUT or Bundle.HTTPVerb.PATCH or Bundle.HTTPVerb.DELETE;

    public string Where => $"Bundle.entry[{Index}]";

    public override string ToString() => $"{Method} {Url}";

    /// <summary>Expands <c>:in</c>, <c>:above</c> and <c>:below</c> in the entry's criteria from the hub's terminology.</summary>
    public async Task ExpandAsync(LocalTerminology terminology, CancellationToken ct)
    {
        Criteria = Criteria is null ? null : await terminology.ExpandAsync(Criteria, ct);
        IfNoneExist = IfNoneExist is null ? null : await terminology.ExpandAsync(IfNoneExist, ct);
    }

    /// <summary>
    /// Parses and checks an entry; a problem is a FhirException naming <see cref="Where"/>. Conditional criteria are
    /// parsed by <paramref name="parser"/>, the hub's own, so its custom search parameters count.
    /// </summary>
    public static EntryPlan Parse(Bundle.EntryComponent entry, int index, string baseUrl, SearchParser parser)
    {
        var where = $"Bundle.entry[{index}]";
        var request = entry.Request ?? throw new InvalidInputException($"{where} has no request: every entry of a batch or transaction says what to do.", where);
        if (request.Method is not { } method)
        {
            throw new InvalidInputException($"{where}.request has no method.", $"{where}.request.method");
        }

        var url = Relative(request.Url, baseUrl, where);
        var queryStart = url.IndexOf('?', StringComparison.Ordinal);
        var path = queryStart < 0 ? url : url[..queryStart];
        var query = queryStart < 0 ? null : url[(queryStart + 1)..];
        var segments = path.Split('/');
        if (segments.Any(s => s.Length == 0) && path.Length > 0)
        {
            throw BadUrl(url, where, "it has an empty path segment");
        }

        if (IsOperationPath(path))
        {
            throw BadUrl(url, where, "operations and the capability statement are read in a batch (each entry on its own), not inside a transaction");
        }

        var target = Build(method, url, path.Length == 0 ? [] : segments, query, where, parser);
        var resource = entry.Resource;
        if (method is Bundle.HTTPVerb.POST or Bundle.HTTPVerb.PUT)
        {
            CheckFullUrl(entry.FullUrl, resource, where);
        }

        var ifNoneExist = string.IsNullOrEmpty(request.IfNoneExist) ? null
            : method == Bundle.HTTPVerb.POST ? SearchParser.SplitQueryString(target.ResourceType, request.IfNoneExist)
            : throw new InvalidInputException($"{where}.request.ifNoneExist is only for POST (conditional create).", $"{where}.request.ifNoneExist");
        if (ifNoneExist is not null)
        {
            target = target with { Conditions = ifNoneExist };
        }

        return new EntryPlan(index, method, url, target)
        {
            FullUrl = string.IsNullOrEmpty(entry.FullUrl) ? null : entry.FullUrl,
            BaseUrl = baseUrl,
            IfMatch = string.IsNullOrEmpty(request.IfMatch) ? null : ETags.ParseVersions(request.IfMatch, $"{where}.request.ifMatch"),
            IfNoneMatch = string.IsNullOrEmpty(request.IfNoneMatch) ? null : request.IfNoneMatch,
            IfNoneMatchVersion = method == Bundle.HTTPVerb.PUT && !string.IsNullOrEmpty(request.IfNoneMatch)
                ? ETags.ParseVersions(request.IfNoneMatch, $"{where}.request.ifNoneMatch")
                : null,
            IfModifiedSince = request.IfModifiedSince,
            IfNoneExist = ifNoneExist is null ? null : parser.ParseCriteria(target.ResourceType, ifNoneExist),
            Resource = method is Bundle.HTTPVerb.POST or Bundle.HTTPVerb.PUT ? Body(resource, target.ResourceType, where)
                : method == Bundle.HTTPVerb.PATCH && resource is Parameters parameters ? parameters : null,
            Patch = method == Bundle.HTTPVerb.PATCH ? PatchOf(resource, where) : null,
        };
    }

    private static Target Build(Bundle.HTTPVerb method, string url, string[] segments, string? query, string where, SearchParser parser)
    {
        var read = method is Bundle.HTTPVerb.GET or Bundle.HTTPVerb.HEAD;
        if (segments.Length == 0)
        {
            // A system search ("?_type=Patient,Observation&…"), as GET [base]?… would be.
            return read && query is not null
                ? new Target("", Read: ReadKind.Search, Query: Pairs(query))
                : throw BadUrl(url, where, "it names no resource type");
        }

        if (segments is ["_history"] && read)
        {
            return new Target("", Read: ReadKind.History, Query: Pairs(query));
        }

        var type = segments[0];
        if (!ResourceTypes.IsKnown(type))
        {
            throw new ResourceNotFoundException(
                $"{where}: unknown resource type '{type}' in request.url '{url}'. Resource types are case-sensitive (e.g. 'Patient').");
        }

        if (read)
        {
            return segments switch
            {
                [_] => new Target(type, Read: ReadKind.Search, Query: Pairs(query)),
                [_, "_history"] => new Target(type, Read: ReadKind.History, Query: Pairs(query)),
                [_, var id] when query is null => new Target(type, CheckedId(id, where), Read: ReadKind.Read),
                [_, var id, "_history"] => new Target(type, CheckedId(id, where), Read: ReadKind.History, Query: Pairs(query)),
                [_, var id, "_history", var vid] when query is null => new Target(type, CheckedId(id, where), vid, Read: ReadKind.VRead),
                [_, var id, var member] when ResourceTypes.IsKnown(member) => new Target(member, Read: ReadKind.Search, Query: Pairs(query),
                    Compartment: new Storage.ResourceKey(type, CheckedId(id, where))),
                _ => throw BadUrl(url, where,
                    "a GET reads [type]/[id], [type]/[id]/_history/[vid], searches [type]?…, [compartment]/[id]/[type]?… or ?_type=… or reads history"),
            };
        }

        if (method == Bundle.HTTPVerb.POST)
        {
            return segments.Length == 1 && query is null
                ? new Target(type)
                : throw BadUrl(url, where, "a POST creates at [type]; conditional create goes in request.ifNoneExist");
        }

        return segments switch
        {
            [_] when query is not null && SearchParser.SplitQueryString(type, query) is var conditions =>
                new Target(type, Criteria: parser.ParseCriteria(type, conditions), Conditions: conditions),
            [_, var id] when query is null => new Target(type, CheckedId(id, where)),
            _ => throw BadUrl(url, where, $"a {method} goes to [type]/[id] or, conditionally, to [type]?criteria"),
        };
    }

    /// <summary>
    /// Whether a batch passes an entry to <see cref="BundleRequest.Forward"/> (with its url relative to the base) rather
    /// than answering it here: an operation (a <c>$</c> segment), the capability statement (<c>metadata</c>), and the
    /// reads the request path has parameters for (<c>Patient/1?_elements=gender</c>, <c>Patient/1/*</c>). False for an
    /// entry without a usable url, which parsing then refuses by name.
    /// </summary>
    public static bool IsForwarded(Bundle.EntryComponent entry, string baseUrl, out string url)
    {
        try
        {
            url = Relative(entry.Request?.Url, baseUrl, "");
        }
        catch (FhirException)
        {
            url = "";
            return false;
        }

        var question = url.IndexOf('?', StringComparison.Ordinal);
        var path = question < 0 ? url : url[..question];
        if (IsOperationPath(path))
        {
            return true;
        }

        var segments = path.Split('/');
        return entry.Request!.Method is Bundle.HTTPVerb.GET or Bundle.HTTPVerb.HEAD
            && (segments is [_, _, "*"] || (question >= 0 && segments is [_, _] or [_, _, "_history", _] && segments[1] != "_history"));
    }

    private static bool IsOperationPath(string path) => path == "metadata" || path.Split('/').Any(s => s.StartsWith('$'));

    private static string Relative(string? url, string baseUrl, string where)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new InvalidInputException($"{where}.request has no url.", $"{where}.request.url");
        }

        var trimmed = url.Trim();
        if (BundleReferences.IsAbsoluteUrl(trimmed))
        {
            var prefix = baseUrl.TrimEnd('/') + "/";
            return trimmed.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
                ? trimmed[prefix.Length..]
                : throw BadUrl(trimmed, where, $"an absolute url must be on this server ({prefix})");
        }

        return trimmed.TrimStart('/');
    }

    private static string CheckedId(string id, string where)
    {
        ResourceTypes.EnsureValidId(id, $"{where}.request.url");
        return id;
    }

    /// <summary>
    /// bundle.html (Bundle.entry.fullUrl): a fullUrl SHALL NOT disagree with the resource's id, and one that looks like a
    /// RESTful URL (references.html#regex: <c>[base]/[type]/[id]</c>, perhaps with <c>/_history/[vid]</c>) names its type
    /// and id. A <c>urn:uuid:</c> or <c>urn:oid:</c> placeholder names neither, nor does any other URL.
    /// </summary>
    private static void CheckFullUrl(string? fullUrl, Resource? resource, string where)
    {
        if (fullUrl is null || resource?.Id is not { Length: > 0 } id || RestfulUrl().Match(fullUrl) is not { Success: true } named
            || !ResourceTypes.IsKnown(named.Groups["type"].Value))
        {
            return;
        }

        var (type, namedId) = (named.Groups["type"].Value, named.Groups["id"].Value);
        if (type != resource.TypeName || namedId != id)
        {
            throw new InvalidInputException(
                $"{where}.fullUrl '{fullUrl}' names {type}/{namedId} but the resource is {resource.TypeName}/{id}: a fullUrl that is a RESTful URL "
                + "agrees with the resource's type and id (bundle.html, Bundle.entry.fullUrl).", $"{where}.fullUrl");
        }
    }

    [GeneratedRegex(@"^https?://[^?#]*/(?<type>[A-Z][A-Za-z]+)/(?<id>[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$", RegexOptions.CultureInvariant)]
    private static partial Regex RestfulUrl();

    private static Resource Body(Resource? resource, string type, string where)
    {
        if (resource is null)
        {
            throw new InvalidInputException($"{where} has no resource to write.", $"{where}.resource");
        }

        return resource.TypeName == type
            ? resource
            : throw new InvalidInputException($"{where}: the resource is a {resource.TypeName} but request.url is for {type}.", $"{where}.resource");
    }

    /// <summary>
    /// A PATCH entry's patch (http.html#patch, "Patch using Transactions"): a FHIRPath Patch Parameters resource,
    /// or a JSON Patch carried in a Binary whose contentType is application/json-patch+json.
    /// </summary>
    private static IResourcePatch PatchOf(Resource? resource, string where) => resource switch
    {
        Parameters parameters => FhirPathPatch.Parse(parameters, $"{where}.resource"),
        Binary { ContentType: "application/json-patch+json", Data: { } data } => JsonPatch.Parse(data),
        Binary => throw new InvalidInputException(
            $"{where}: a JSON Patch in a Binary needs contentType application/json-patch+json and data.", $"{where}.resource"),
        _ => throw new InvalidInputException(
            $"{where}: a PATCH entry carries a Parameters resource (FHIRPath Patch) or a Binary with a JSON Patch.", $"{where}.resource"),
    };

    private static List<KeyValuePair<string, string>> Pairs(string? query)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var part in (query ?? "").Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString((eq < 0 ? part : part[..eq]).Replace('+', ' '));
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            pairs.Add(new(name, value));
        }

        return pairs;
    }

    private sealed record Target(string ResourceType, string? Id = null, string? VersionId = null, SearchCriteria? Criteria = null,
        ReadKind Read = ReadKind.Read, IReadOnlyList<KeyValuePair<string, string>>? Query = null, Storage.ResourceKey? Compartment = null,
        IReadOnlyList<KeyValuePair<string, string>>? Conditions = null);

    private static InvalidInputException BadUrl(string url, string where, string why) =>
        new($"{where}: request.url '{url}' cannot be processed: {why}.", $"{where}.request.url");
}
