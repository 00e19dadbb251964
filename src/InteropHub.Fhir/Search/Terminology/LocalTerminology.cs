using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Search.Terminology;

/// <summary>
/// Expands the token modifiers that need terminology (search.html#token) from the ValueSet and CodeSystem resources
/// stored in the hub, into an OR of (system, code) matches:
/// <list type="bullet">
/// <item><c>:in</c> / <c>:not-in</c> a ValueSet named by canonical URL (optionally <c>|version</c>) or <c>ValueSet/id</c>:
/// its <c>compose.include</c> (listed concepts, every concept of a CodeSystem stored here, nested ones included,
/// other ValueSets stored here), less its <c>compose.exclude</c>; a ValueSet without a compose, its stored expansion.
/// <c>:not-in</c> is then negated like <c>:not</c>. Values of elements of type code, indexed without a system, match
/// by code.</item>
/// <item><c>:below</c> / <c>:above</c> <c>system|code</c>: the code and its descendants / ancestors in the CodeSystem
/// stored here, by nested <c>concept</c>s and the <c>subsumedBy</c> / <c>parent</c> / <c>child</c> properties.</item>
/// </list>
/// What would need an external terminology server (filters, code systems or ValueSets not stored here) is a 400
/// naming the parameter and why: the hub never answers such a search with a guess. The same expansion
/// (<see cref="ExpandAsync(ValueSet, string, CancellationToken)"/>) answers the terminology operations (<c>ValueSet/$expand</c>, <c>$validate-code</c>).
/// </summary>
public sealed class LocalTerminology(IResourceStore store, FhirSerializers serializers)
{
    /// <summary>The most codes one parameter may stand for (each is a query parameter of the SQL).</summary>
    public const int MaxCodes = 1000;

    /// <summary>The query with its terminology criteria expanded; under lenient handling one that cannot be is ignored with a warning.</summary>
    public async Task<SearchQuery> ExpandAsync(SearchQuery query, bool lenient, CancellationToken ct)
    {
        var criteria = await ExpandAsync(query.Criteria, lenient, ct);
        return ReferenceEquals(criteria, query.Criteria) ? query : query with { Criteria = criteria };
    }

    /// <summary>The criteria with their terminology criteria expanded (the same instance when there are none).</summary>
    public Task<SearchCriteria> ExpandAsync(SearchCriteria criteria, CancellationToken ct) => ExpandAsync(criteria, lenient: false, ct);

    private async Task<SearchCriteria> ExpandAsync(SearchCriteria criteria, bool lenient, CancellationToken ct)
    {
        if (!criteria.Criteria.Any(Needs))
        {
            return criteria;
        }

        // The parser adds a criterion and its applied parameter together, so they pair up by position.
        var paired = criteria.Applied.Count == criteria.Criteria.Count;
        var kept = new List<Criterion>();
        var applied = new List<KeyValuePair<string, string>>();
        var ignored = new List<OperationOutcome.IssueComponent>(criteria.Ignored);
        for (var i = 0; i < criteria.Criteria.Count; i++)
        {
            try
            {
                kept.Add(await ExpandAsync(criteria.Criteria[i], ct));
                if (paired)
                {
                    applied.Add(criteria.Applied[i]);
                }
            }
            catch (InvalidInputException e) when (paired)
            {
                // A chained or _has parameter is named whole, as the client wrote it.
                var name = criteria.Applied[i].Key;
                if (!lenient)
                {
                    if (e.Outcome.Issue.FirstOrDefault()?.Expression.SequenceEqual([name]) == true)
                    {
                        throw;
                    }

                    throw new InvalidInputException(e.Message, name);
                }

                ignored.Add(SearchParser.Warning(name, e.Message));
            }
        }

        return new SearchCriteria(criteria.ResourceTypes, kept, paired ? applied : criteria.Applied, ignored);
    }

    private static bool Needs(Criterion criterion) => criterion switch
    {
        TerminologyCriterion => true,
        AllCriterion all => all.All.Any(Needs),
        AnyCriterion any => any.Any.Any(Needs),
        ChainCriterion chain => chain.Targets.Any(t => Needs(t.Inner)),
        HasCriterion has => Needs(has.Inner),
        OfTypeCriterion typed => Needs(typed.Inner),
        _ => false,
    };

    private async Task<Criterion> ExpandAsync(Criterion criterion, CancellationToken ct)
    {
        switch (criterion)
        {
            case ValueSetCriterion valueSet:
            {
                var codes = new HashSet<(string System, string Code)>();
                foreach (var reference in valueSet.ValueSets)
                {
                    codes.UnionWith((await ValueSetCodesAsync(reference, valueSet.Name, [], ct)).Select(c => c.Key));
                }

                return Tokens(valueSet, codes, valueSet.Negated);
            }

            case SubsumptionCriterion subsumption:
            {
                var codes = new HashSet<(string System, string Code)>();
                foreach (var code in subsumption.Codes)
                {
                    codes.UnionWith(await RelatedAsync(code.System!, code.Code!, subsumption.Above, subsumption.Name, ct));
                }

                return Tokens(subsumption, codes, negated: false);
            }

            case AllCriterion all:
                return new AllCriterion(await ExpandAllAsync(all.All, ct));
            case AnyCriterion any:
                return new AnyCriterion(await ExpandAllAsync(any.Any, ct));
            case ChainCriterion chain when Needs(chain):
            {
                var targets = new List<ChainTarget>();
                foreach (var target in chain.Targets)
                {
                    targets.Add(target with { Inner = await ExpandAsync(target.Inner, ct) });
                }

                return chain with { Targets = targets };
            }

            case HasCriterion has when Needs(has):
                return has with { Inner = await ExpandAsync(has.Inner, ct) };
            case OfTypeCriterion typed when Needs(typed):
                return typed with { Inner = await ExpandAsync(typed.Inner, ct) };
            default:
                return criterion;
        }
    }

    private async Task<List<Criterion>> ExpandAllAsync(IReadOnlyList<Criterion> criteria, CancellationToken ct)
    {
        var expanded = new List<Criterion>(criteria.Count);
        foreach (var criterion in criteria)
        {
            expanded.Add(await ExpandAsync(criterion, ct));
        }

        return expanded;
    }

    private static Criterion Tokens(TerminologyCriterion criterion, HashSet<(string System, string Code)> codes, bool negated)
    {
        if (codes.Count > MaxCodes)
        {
            throw new InvalidInputException($"'{criterion.Name}' stands for {codes.Count} codes; a search can use at most {MaxCodes}.", criterion.Name);
        }

        if (codes.Count == 0)
        {
            // No code: nothing is in the set, everything is outside it.
            return negated ? new AllCriterion([]) : new AnyCriterion([]);
        }

        // Membership and subsumption are of (system, code): a coding without a system is in no set, whatever its code.
        // Elements of type code bound to a required value set (status, gender, …) are indexed with that set's system.
        var conditions = codes.OrderBy(c => c.System, StringComparer.Ordinal).ThenBy(c => c.Code, StringComparer.Ordinal)
            .Select(c => (IndexCondition)new TokenCondition(c.System, c.Code))
            .ToList();
        return new IndexCriterion(criterion.Param, IndexTable.Tokens, conditions, negated);
    }

    /// <summary>
    /// The codes of a ValueSet (given, or stored here): its <c>compose.include</c>s less its <c>compose.exclude</c>s, in the
    /// order they list them, each once; one without a compose, its stored expansion. This is the one expansion of the hub:
    /// token <c>:in</c>/<c>:not-in</c> use its (system, code) pairs, <c>ValueSet/$expand</c> and <c>$validate-code</c> the whole entries.
    /// </summary>
    /// <param name="name">The parameter an error names.</param>
    public Task<IReadOnlyList<ExpandedConcept>> ExpandAsync(ValueSet valueSet, string name, CancellationToken ct) => ExpandAsync(valueSet, name, [], ct);

    /// <summary>The stored code system with the canonical URL (and version, when given), or null; one stored without its concepts is a 400 naming the parameter.</summary>
    public async Task<CodeSystemConcepts?> CodeSystemAsync(string url, string? version, string name, CancellationToken ct) =>
        await ByUrlAsync<CodeSystem>("CodeSystem", url, version, ct) is { } codeSystem ? CodeSystemConcepts.Of(codeSystem, name) : null;

    private async Task<IReadOnlyList<ExpandedConcept>> ValueSetCodesAsync(string reference, string name, HashSet<string> path, CancellationToken ct) =>
        await ExpandAsync(await ValueSetAsync(reference, name, ct), name, path, ct);

    /// <param name="path">The ValueSets being expanded around this one, to refuse one that includes itself.</param>
    private async Task<IReadOnlyList<ExpandedConcept>> ExpandAsync(ValueSet valueSet, string name, HashSet<string> path, CancellationToken ct)
    {
        var label = valueSet.Url ?? $"ValueSet/{valueSet.Id}";
        if (!path.Add(label))
        {
            throw new InvalidInputException($"'{name}': ValueSet {label} includes itself.", name);
        }

        List<ExpandedConcept> codes;
        if (valueSet.Compose is null)
        {
            if (valueSet.Expansion is null)
            {
                throw new InvalidInputException($"'{name}': ValueSet {label} has neither a compose nor an expansion, so it names no codes.", name);
            }

            codes = [];
            AddContains(valueSet.Expansion.Contains, codes);
        }
        else
        {
            codes = [];
            foreach (var include in valueSet.Compose.Include)
            {
                codes.AddRange(await ConceptSetAsync(include, label, name, path, ct));
            }

            var excluded = new HashSet<(string System, string Code)>();
            foreach (var exclude in valueSet.Compose.Exclude)
            {
                excluded.UnionWith((await ConceptSetAsync(exclude, label, name, path, ct)).Select(c => c.Key));
            }

            codes.RemoveAll(c => excluded.Contains(c.Key));
        }

        path.Remove(label);
        return [.. codes.DistinctBy(c => c.Key)];
    }

    /// <summary>The expansion a ValueSet carries, flattened; an abstract entry is a heading, not a member.</summary>
    private static void AddContains(List<ValueSet.ContainsComponent> contains, List<ExpandedConcept> codes)
    {
        foreach (var entry in contains)
        {
            if (entry is { System.Length: > 0, Code.Length: > 0, Abstract: not true })
            {
                codes.Add(new ExpandedConcept(entry.System, entry.Version, entry.Code, entry.Display, Abstract: false, entry.Inactive == true, entry.Designation));
            }

            AddContains(entry.Contains, codes);
        }
    }

    /// <summary>
    /// One include or exclude (valueset.html#compose): its system's codes, intersected with each ValueSet it names. A listed
    /// concept takes its display from the include (the ValueSet's wording, valueset.html#ConceptReferenceComponent), else
    /// from the code system when it is stored here; the rest of what is known of it comes from the stored code system.
    /// </summary>
    private async Task<List<ExpandedConcept>> ConceptSetAsync(ValueSet.ConceptSetComponent set, string label, string name,
        HashSet<string> path, CancellationToken ct)
    {
        List<ExpandedConcept>? codes = null;
        if (set.Filter.Count > 0)
        {
            codes = await FilteredAsync(set, label, name, ct);
        }
        else if (set.System is { Length: > 0 } system)
        {
            if (set.Concept.Count > 0)
            {
                var stored = await ByUrlAsync<CodeSystem>("CodeSystem", system, set.Version, ct) is { Content: not CodeSystemContentMode.NotPresent } found
                    ? CodeSystemConcepts.Of(found, name)
                    : null;
                ExpandedConcept Listed(ValueSet.ConceptReferenceComponent concept, string code)
                {
                    if (stored?.Contains(code) != true)
                    {
                        return new ExpandedConcept(system, set.Version, code, concept.Display, Abstract: false, Inactive: false, concept.Designation);
                    }

                    var known = stored.Expanded(code);
                    return known with { Display = concept.Display is { Length: > 0 } ? concept.Display : known.Display, Designations = [.. concept.Designation, .. known.Designations] };
                }

                codes = [.. set.Concept.Where(c => c.Code is { Length: > 0 }).Select(c => Listed(c, c.Code!))];
            }
            else
            {
                var codeSystem = await CodeSystemAsync(system, set.Version, name, ct) ?? throw new InvalidInputException(
                    $"'{name}': ValueSet {label} includes all of the code system {system}, which is not stored in the hub (only local code systems can be expanded).",
                    name);
                codes = [.. codeSystem.Codes.Select(codeSystem.Expanded)];
            }
        }

        foreach (var other in set.ValueSet.OfType<string>())
        {
            var included = await ValueSetCodesAsync(other, name, path, ct);
            var keys = included.Select(c => c.Key).ToHashSet();
            codes = codes is null ? [.. included] : [.. codes.Where(c => keys.Contains(c.Key))];
        }

        return codes ?? [];
    }

    /// <summary>The code and its descendants (below) or ancestors (above) in the hierarchy of the stored code system.</summary>
    private async Task<HashSet<(string System, string Code)>> RelatedAsync(string system, string code, bool above, string name, CancellationToken ct)
    {
        var concepts = await CodeSystemAsync(system, null, name, ct) ?? throw new InvalidInputException(
            $"'{name}': the code system {system} is not stored in the hub, so it cannot tell which codes are {(above ? "above" : "below")} '{code}'.", name);
        if (!concepts.Contains(code))
        {
            throw new InvalidInputException($"'{name}': '{code}' is not a code of the code system {system}.", name);
        }

        return concepts.Related(code, above).Select(c => (system, c)).ToHashSet();
    }

    /// <summary>
    /// An include or exclude that selects codes by filters (valueset.html#compose), over a code system stored in the
    /// hub: the hierarchy filters of the <c>concept</c> property (is-a, descendent-of, is-not-a, generalizes), and
    /// =, in, not-in and regex on the code itself. Filters on other properties need a terminology server.
    /// </summary>
    private async Task<List<ExpandedConcept>> FilteredAsync(ValueSet.ConceptSetComponent set, string label, string name, CancellationToken ct)
    {
        var system = set.System is { Length: > 0 } s ? s : throw new InvalidInputException($"'{name}': ValueSet {label} has a filter without a system.", name);
        var concepts = await CodeSystemAsync(system, set.Version, name, ct) ?? throw new InvalidInputException(
            $"'{name}': ValueSet {label} filters the code system {system}, which is not stored in the hub (only local code systems can be expanded).", name);
        IEnumerable<string> codes = concepts.Codes;
        foreach (var filter in set.Filter)
        {
            var value = filter.Value ?? "";
            HashSet<string> Hierarchy(bool above)
            {
                return concepts.Contains(value)
                    ? concepts.Related(value, above)
                    : throw new InvalidInputException($"'{name}': ValueSet {label} filters on '{value}', which is not a code of {system}.", name);
            }

            codes = (filter.Property, filter.Op) switch
            {
                ("concept", FilterOperator.IsA) => codes.Intersect(Hierarchy(above: false)),
                ("concept", FilterOperator.DescendentOf) => codes.Intersect(Hierarchy(above: false).Where(c => c != value)),
                ("concept", FilterOperator.IsNotA) => codes.Except(Hierarchy(above: false)),
                ("concept", FilterOperator.Generalizes) => codes.Intersect(Hierarchy(above: true)),
                ("concept" or "code", FilterOperator.Equal) => codes.Where(c => c == value),
                ("concept" or "code", FilterOperator.In) => codes.Intersect(value.Split(',', StringSplitOptions.TrimEntries)),
                ("concept" or "code", FilterOperator.NotIn) => codes.Except(value.Split(',', StringSplitOptions.TrimEntries)),
                ("concept" or "code", FilterOperator.Regex) => Matching(codes, Matcher(value, label, name), label, name),
                _ => throw new InvalidInputException(
                    $"'{name}': ValueSet {label} filters {system} by '{filter.Property} {filter.OpElement?.JsonValue}', which needs a terminology server; the hub "
                    + "expands the concept hierarchy (is-a, descendent-of, is-not-a, generalizes) and =, in, not-in, regex on codes.", name),
            };
        }

        return [.. codes.Select(concepts.Expanded)];
    }

    private static List<string> Matching(IEnumerable<string> codes, System.Text.RegularExpressions.Regex regex, string label, string name)
    {
        try
        {
            return codes.Where(c => regex.IsMatch(c)).ToList();
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            throw new InvalidInputException($"'{name}': ValueSet {label} has a regex filter too costly to evaluate.", name);
        }
    }

    private static System.Text.RegularExpressions.Regex Matcher(string pattern, string label, string name)
    {
        try
        {
            return new System.Text.RegularExpressions.Regex($"^(?:{pattern})$", System.Text.RegularExpressions.RegexOptions.None, TimeSpan.FromMilliseconds(100));
        }
        catch (ArgumentException e)
        {
            throw new InvalidInputException($"'{name}': ValueSet {label} has a regex filter that is not a regular expression: {e.Message}", name);
        }
    }

    private async Task<ValueSet> ValueSetAsync(string reference, string name, CancellationToken ct)
    {
        if (reference.StartsWith("ValueSet/", StringComparison.Ordinal))
        {
            var stored = await store.ReadAsync("ValueSet", reference["ValueSet/".Length..], ct);
            return stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is ValueSet byId
                ? byId
                : throw new InvalidInputException($"'{name}': {reference} is not stored in the hub.", name);
        }

        var bar = reference.LastIndexOf('|');
        var (url, version) = bar < 0 ? (reference, null) : (reference[..bar], reference[(bar + 1)..]);
        return await ByUrlAsync<ValueSet>("ValueSet", url, version, ct) ?? throw new InvalidInputException(
            $"'{name}': the ValueSet {reference} is not stored in the hub; only ValueSets stored here, by canonical URL or ValueSet/id, can be expanded.", name);
    }

    /// <summary>The stored ValueSet or CodeSystem with that id: a 404 when there is none, a 410 when it was deleted.</summary>
    public async Task<T> ByIdAsync<T>(string id, CancellationToken ct)
        where T : Resource
    {
        var type = typeof(T).Name;
        return await store.ReadAsync(type, id, ct) switch
        {
            null => throw new ResourceNotFoundException($"{type}/{id} is not known."),
            { IsDeleted: true } => throw new ResourceGoneException($"{type}/{id} was deleted."),
            var stored => (T)serializers.ParseStored(stored.Json),
        };
    }

    /// <summary>The stored resource with the canonical URL (and version, when given); of several, the one written last.</summary>
    public async Task<T?> ByUrlAsync<T>(string type, string url, string? version, CancellationToken ct)
        where T : Resource, IVersionableConformanceResource
    {
        var criteria = new SearchCriteria([type], [new IndexCriterion("url", IndexTable.Uris, [new UriCondition(UriMatch.Exact, url)])], [], []);
        var matches = await store.FindAsync(type, criteria, null, 100, ct);
        var stored = await store.ReadManyAsync(type, matches.Select(m => m.Id).ToList(), ct);
        return stored.Select(s => serializers.ParseStored(s.Json)).OfType<T>()
            .Where(r => version is null || r.Version == version)
            .OrderBy(r => r.Meta?.LastUpdated)
            .LastOrDefault();
    }
}
