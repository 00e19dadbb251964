using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Search;

/// <summary>
/// Search criteria, parsed and validated against the search parameters of the resource type(s): what the stores
/// evaluate, for searches and for conditional create/update/delete. Built by <see cref="SearchParser"/>.
/// </summary>
public sealed class SearchCriteria
{
    internal SearchCriteria(IReadOnlyList<string> resourceTypes, IReadOnlyList<Criterion> criteria,
        IReadOnlyList<KeyValuePair<string, string>> applied, IReadOnlyList<OperationOutcome.IssueComponent> ignored)
    {
        ResourceTypes = resourceTypes;
        Criteria = criteria;
        Applied = applied;
        Ignored = ignored;
    }

    /// <summary>The types searched: one for a type search; several, or none for every type, in a system search.</summary>
    public IReadOnlyList<string> ResourceTypes { get; }

    /// <summary>AND-ed criteria.</summary>
    public IReadOnlyList<Criterion> Criteria { get; }

    /// <summary>The parameters applied, as given (decoded), in request order: the self link shows these.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Applied { get; }

    /// <summary>Parameters ignored under <c>Prefer: handling=lenient</c>, each as a warning naming it.</summary>
    public IReadOnlyList<OperationOutcome.IssueComponent> Ignored { get; }

    public bool IsEmpty => Criteria.Count == 0;

    /// <summary>These criteria and one more (a compartment's links, an export's patients), ahead of the others.</summary>
    public SearchCriteria And(Criterion criterion) => new(ResourceTypes, [criterion, .. Criteria], Applied, Ignored);

    /// <summary>
    /// A canonical text of the criteria (type plus the applied parameters, sorted), used as the lock key of
    /// conditional writes: two requests with the same criteria in any order lock the same key.
    /// </summary>
    public string Canonical(string resourceType)
    {
        // Kept: a transaction asks for the same criteria's key several times (locks, prefetch, lookups).
        if (_canonical is { } known && known.ResourceType == resourceType)
        {
            return known.Text;
        }

        var text = new StringBuilder(resourceType).Append('?');
        foreach (var (name, value) in Applied.OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal))
        {
            text.Append(name).Append('=').Append(value).Append('&');
        }

        // It is shown in messages too: no trailing separator (nor a '?' for no criteria).
        text.Length--;
        var canonical = new CanonicalText(resourceType, text.ToString());
        _canonical = canonical;
        return canonical.Text;
    }

    /// <summary>One reference, so a reader on another thread sees the type and the text together or not at all.</summary>
    private CanonicalText? _canonical;

    private sealed record CanonicalText(string ResourceType, string Text);

    /// <summary>
    /// Parses query-string pairs (already URL-decoded) strictly, with the R4 parameters only: any parameter not
    /// understood is a 400 naming it. The hub itself parses with its own <see cref="SearchParser"/>, which knows its
    /// custom parameters too.
    /// </summary>
    public static SearchCriteria Parse(string resourceType, IEnumerable<KeyValuePair<string, string>> query) =>
        SearchParser.Default.ParseCriteria(resourceType, query);

    /// <summary>Parses the criteria part of a conditional URL such as <c>identifier=a|b&amp;_id=1</c> or <c>Patient?identifier=…</c>, with the R4 parameters only.</summary>
    public static SearchCriteria ParseQueryString(string resourceType, string queryString) =>
        SearchParser.Default.ParseCriteria(resourceType, SearchParser.SplitQueryString(resourceType, queryString));
}
