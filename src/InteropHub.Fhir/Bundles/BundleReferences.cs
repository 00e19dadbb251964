using System.Collections;
using System.Collections.Concurrent;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.Bundles;

/// <summary>A conditional reference (<c>Patient?identifier=…</c>, http.html#trules) found in an entry's resource.</summary>
/// <param name="Conditions">The search parameters of its criteria, as given.</param>
internal sealed record ConditionalReference(ResourceReference Reference, string ResourceType, SearchCriteria Criteria, EntryPlan Entry,
    IReadOnlyList<KeyValuePair<string, string>> Conditions);

/// <summary>
/// The places in an entry's resource that may point at other entries of the bundle. R4 http.html#trules: when
/// the server assigns ids, it replaces matching links "whether they are found in the resource ids, resource
/// references, elements of type uri, url, oid, uuid, and &lt;a href=&quot;&quot; &amp; &lt;img src=&quot;&quot;
/// in the narrative"; canonical elements are left alone. The walk covers every element of the POCO tree:
/// extensions, nested backbone elements and contained resources included.
/// </summary>
internal sealed class BundleReferences(SearchParser parser)
{
    private readonly List<(EntryPlan Entry, ResourceReference Reference)> _references = [];
    private readonly List<PrimitiveType> _uris = [];
    private readonly List<XHtml> _narratives = [];

    public List<ConditionalReference> Conditional { get; } = [];

    /// <summary>Collects the references of the entries' resources; conditional ones are parsed by <paramref name="parser"/>, the hub's own.</summary>
    public static BundleReferences Collect(IEnumerable<EntryPlan> entries, SearchParser parser)
    {
        var found = new BundleReferences(parser);
        foreach (var entry in entries)
        {
            if (entry.Resource is { } resource)
            {
                found.Walk(resource, entry);
            }
        }

        return found;
    }

    /// <summary>Expands <c>:in</c>, <c>:above</c> and <c>:below</c> in the conditional references' criteria from the hub's terminology.</summary>
    public async Task ExpandAsync(LocalTerminology terminology, CancellationToken ct)
    {
        for (var i = 0; i < Conditional.Count; i++)
        {
            var reference = Conditional[i];
            try
            {
                Conditional[i] = reference with { Criteria = await terminology.ExpandAsync(reference.Criteria, ct) };
            }
            catch (InvalidInputException e)
            {
                throw new InvalidInputException(
                    $"{reference.Entry.Where} has the conditional reference '{reference.Reference.Reference}', which cannot be searched: {e.Message}",
                    $"{reference.Entry.Where}.resource");
            }
        }
    }

    /// <summary>
    /// Replaces every placeholder with the <c>Type/id</c> its entry resolved to (<paramref name="targets"/>, for a
    /// transaction; a batch, whose entries stand alone, has none). A <c>urn:uuid:</c>/<c>urn:oid:</c> reference that
    /// cannot be resolved fails the transaction, or the batch entry; a reference absolute on the base the bundle was
    /// posted to is made relative, as a single write does (<see cref="Resources.LocalReferences"/>); other references to
    /// unknown targets are left as they are.
    /// </summary>
    public void ReplacePlaceholders(IReadOnlyDictionary<string, string>? targets)
    {
        foreach (var (entry, reference) in _references)
        {
            var value = reference.Reference!;
            if (targets is not null && (targets.TryGetValue(value, out var target) || targets.TryGetValue(Absolute(value, entry.FullUrl) ?? "", out target)))
            {
                reference.Reference = target;
            }
            else if (Resources.LocalReferences.Relative(value, entry.BaseUrl) is { } local)
            {
                reference.Reference = local;
            }
            else if (IsPlaceholder(value))
            {
                throw new InvalidInputException(targets is null
                    ? $"{entry.Where} refers to '{value}', a placeholder: the entries of a batch stand alone and resolve none; send a transaction to refer to another entry."
                    : $"{entry.Where} refers to '{value}', but no entry of the transaction has that fullUrl.", $"{entry.Where}.resource");
            }
        }

        if (targets is null)
        {
            return;
        }

        foreach (var uri in _uris)
        {
            if (uri.JsonValue is string value && targets.TryGetValue(value, out var target))
            {
                uri.JsonValue = target;
            }
        }

        if (targets.Count == 0)
        {
            return;
        }

        foreach (var narrative in _narratives)
        {
            var html = narrative.Value ?? "";
            foreach (var (placeholder, target) in targets)
            {
                if (html.Contains(placeholder, StringComparison.Ordinal))
                {
                    html = html.Replace($"href=\"{placeholder}\"", $"href=\"{target}\"", StringComparison.Ordinal)
                        .Replace($"src=\"{placeholder}\"", $"src=\"{target}\"", StringComparison.Ordinal);
                }
            }

            narrative.Value = html;
        }
    }

    /// <summary>
    /// A relative <c>Type/id</c> reference as the absolute URL it stands for in an entry whose fullUrl is absolute: on
    /// that fullUrl's base (bundle.html#references); null when the entry has no such fullUrl (the reference is then to
    /// this server).
    /// </summary>
    private static string? Absolute(string value, string? fullUrl)
    {
        if (fullUrl is null || !fullUrl.StartsWith("http", StringComparison.OrdinalIgnoreCase) || value.Contains(':', StringComparison.Ordinal)
            || value.Split('/') is not [var type, { Length: > 0 }] || !ResourceTypes.IsKnown(type))
        {
            return null;
        }

        var segments = fullUrl.TrimEnd('/').Split('/');
        return segments.Length >= 5 && ResourceTypes.IsKnown(segments[^2]) ? $"{string.Join('/', segments[..^2])}/{value}" : null;
    }

    /// <summary>
    /// Whether a URL (a reference, an entry's request.url) is absolute: only the part before its query tells, since
    /// search criteria may name a system URL unencoded (<c>Patient?identifier=http://…|1</c>).
    /// </summary>
    public static bool IsAbsoluteUrl(string value)
    {
        var mark = value.IndexOf('?', StringComparison.Ordinal);
        return (mark < 0 ? value : value[..mark]).Contains("://", StringComparison.Ordinal);
    }

    public static bool IsPlaceholder(string value) =>
        value.StartsWith("urn:uuid:", StringComparison.Ordinal) || value.StartsWith("urn:oid:", StringComparison.Ordinal);

    /// <summary>
    /// Whether a search parameter of criteria (<c>subject</c>, <c>subject:Patient</c>) names a resource by reference,
    /// the only kind whose value may be another entry's placeholder: a token, a uri, a chain (<c>subject.name</c>) or
    /// <c>:identifier</c> takes it as a plain value.
    /// </summary>
    public static bool NamesReference(SearchParser parser, string resourceType, string parameter)
    {
        var colon = parameter.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? parameter : parameter[..colon];
        return (colon < 0 || parameter[(colon + 1)..] != "identifier") && !name.Contains('.', StringComparison.Ordinal)
            && parser.Registry.For(resourceType).TryGetValue(name, out var definition) && definition.Type == Hl7.Fhir.Model.SearchParamType.Reference;
    }

    /// <summary>
    /// The search parameters with the values of reference parameters that are keys of <paramref name="targets"/>
    /// (other entries' placeholders) rewritten to those entries' references.
    /// </summary>
    public static List<KeyValuePair<string, string>> WithTargets(SearchParser parser, string resourceType,
        IReadOnlyList<KeyValuePair<string, string>> conditions, IReadOnlyDictionary<string, string> targets) =>
        conditions.Select(p => NamesReference(parser, resourceType, p.Key)
            ? new KeyValuePair<string, string>(p.Key, string.Join(',', p.Value.Split(',').Select(v => targets.GetValueOrDefault(v, v))))
            : p).ToList();

    private void Walk(Base node, EntryPlan entry)
    {
        switch (node)
        {
            case ResourceReference { Reference: { Length: > 0 } value } reference:
                _references.Add((entry, reference));
                if (ParseConditional(reference, value, entry) is { } conditional)
                {
                    Conditional.Add(conditional);
                }

                break;
            case FhirUri or FhirUrl or Oid or Uuid:
                _uris.Add((PrimitiveType)node);
                break;
            case XHtml { Value: { Length: > 0 } }:
                _narratives.Add((XHtml)node);
                break;
        }

        // A primitive holds nothing more unless it has extensions (its value is not an element); most nodes are primitives.
        if (node is PrimitiveType { Extension.Count: 0 })
        {
            return;
        }

        // Each element the class declares, asked for by name: the SDK's EnumerateElements allocated an iterator and a
        // dictionary for every element of the tree, a tenth of what an HL7 message cost in allocations.
        foreach (var name in ElementNames.GetOrAdd(node.GetType(), NamesOf))
        {
            if (!node.TryGetValue(name, out var child))
            {
                continue;
            }

            switch (child)
            {
                case Base element:
                    Walk(element, entry);
                    break;
                case IList list and not byte[]:
                    // A list of elements; not a base64Binary's bytes, which hold no reference (and would be boxed one by one).
                    foreach (var item in list)
                    {
                        if (item is Base element)
                        {
                            Walk(element, entry);
                        }
                    }

                    break;
            }
        }
    }

    private static readonly ConcurrentDictionary<Type, string[]> ElementNames = new();

    private static string[] NamesOf(Type type) =>
        ModelInfo.ModelInspector.FindOrImportClassMapping(type)?.PropertyMappings.Select(p => p.Name).ToArray() ?? [];

    /// <summary><c>Type?query</c>: a relative reference with search criteria instead of an id.</summary>
    private ConditionalReference? ParseConditional(ResourceReference reference, string value, EntryPlan entry)
    {
        var mark = value.IndexOf('?', StringComparison.Ordinal);
        if (mark <= 0 || IsAbsoluteUrl(value) || value.StartsWith('#') || IsPlaceholder(value))
        {
            return null;
        }

        var type = value[..mark];
        if (!ResourceTypes.IsKnown(type))
        {
            throw new InvalidInputException(
                $"{entry.Where} has the conditional reference '{value}', whose resource type '{type}' is not known.", $"{entry.Where}.resource");
        }

        try
        {
            var conditions = SearchParser.SplitQueryString(type, value[(mark + 1)..]);
            return new ConditionalReference(reference, type, parser.ParseCriteria(type, conditions), entry, conditions);
        }
        catch (InvalidInputException e)
        {
            throw new InvalidInputException($"{entry.Where} has the conditional reference '{value}', which cannot be searched: {e.Message}",
                $"{entry.Where}.resource");
        }
    }
}
