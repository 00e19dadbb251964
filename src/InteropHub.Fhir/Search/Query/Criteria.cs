using InteropHub.Fhir.Search.Parameters;

namespace InteropHub.Fhir.Search.Query;

// The parsed, validated form of search criteria (search.html), independent of any database. A store turns it into
// its own SQL. Criteria in a list are AND-ed; the conditions of one criterion are OR-ed (a comma in the value).

/// <summary>search.html#prefix</summary>
public enum SearchPrefix
{
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

public enum StringMatch
{
    /// <summary>The default: a normalised value starts with the normalised search text.</summary>
    Prefix,

    /// <summary><c>:exact</c>: the whole value, case and accents included.</summary>
    Exact,

    /// <summary><c>:contains</c>: the normalised text occurs anywhere in the value.</summary>
    Contains,
}

public enum UriMatch
{
    Exact,

    /// <summary><c>:below</c>: the value starts with the search URI.</summary>
    Below,

    /// <summary><c>:above</c>: the search URI starts with the value.</summary>
    Above,
}

/// <summary>A condition on one index row.</summary>
public abstract record IndexCondition;

/// <param name="System">Null matches any system; empty matches only values without one (<c>|code</c>).</param>
/// <param name="Code">Null matches any code of the system (<c>system|</c>).</param>
public sealed record TokenCondition(string? System, string? Code) : IndexCondition;

/// <summary><c>:text</c>: the normalised display or text starts with <paramref name="Prefix"/>.</summary>
public sealed record TokenTextCondition(string Prefix) : IndexCondition;

public sealed record StringCondition(StringMatch Match, string Value) : IndexCondition;

/// <summary>A date search value as the interval its precision denotes (UTC ticks, high exclusive).</summary>
public sealed record DateCondition(SearchPrefix Prefix, long Low, long High) : IndexCondition;

/// <param name="Low">Lower bound of the value's implied precision range (search.html#number), inclusive.</param>
/// <param name="High">Upper bound, exclusive.</param>
public sealed record NumberCondition(SearchPrefix Prefix, double Value, double Low, double High) : IndexCondition;

/// <param name="Canonical">True when the value was converted to UCUM canonical units: compare the canonical columns.</param>
public sealed record QuantityCondition(NumberCondition Number, string? System, string? Code, bool Canonical) : IndexCondition;

public sealed record UriCondition(UriMatch Match, string Uri) : IndexCondition;

/// <summary>A local target (type optional) or an external URL; with a type and neither id nor URL, any local target of that type.</summary>
public sealed record ReferenceCondition(string? TargetType, string? TargetId, string? Url) : IndexCondition;

public abstract record Criterion;

/// <summary>Some index row of <see cref="Param"/> meets one of the conditions; negated (<c>:not</c>), none does.</summary>
public sealed record IndexCriterion(string Param, IndexTable Table, IReadOnlyList<IndexCondition> AnyOf, bool Negated = false) : Criterion;

/// <summary><c>:missing</c>: the resource has (false) or has no (true) index row for the parameter.</summary>
public sealed record MissingCriterion(string Param, IndexTable Table, bool Missing) : Criterion
{
    /// <summary>For references: only rows pointing to a resource of this type count.</summary>
    public string? TargetType { get; init; }
}

/// <summary><c>_id</c>, compared on the resource row itself.</summary>
public sealed record IdCriterion(IReadOnlyList<string> Ids, bool Negated = false) : Criterion;

/// <summary>
/// A composite value: one element of the resource has rows meeting every component condition. Each entry of
/// <see cref="AnyOf"/> is one comma-separated value: its components, in order, on tables and keys of their own.
/// </summary>
public sealed record CompositeCriterion(string Param, IReadOnlyList<IReadOnlyList<CompositePart>> AnyOf) : Criterion;

public sealed record CompositePart(string Key, IndexTable Table, IndexCondition Condition);

/// <summary>search.html#chaining: the reference <see cref="Param"/> points to a resource of a listed type meeting its criterion.</summary>
public sealed record ChainCriterion(string Param, IReadOnlyList<ChainTarget> Targets) : Criterion;

/// <param name="ByUrl">The type has a <c>url</c> (Measure, Questionnaire…): a canonical reference names its resources by it.</param>
public sealed record ChainTarget(string ResourceType, Criterion Inner, bool ByUrl = false);

/// <summary>search.html#has: some <see cref="SourceType"/> resource meeting <see cref="Inner"/> references this one through <see cref="Param"/>.</summary>
/// <param name="ByUrl">The searched type has a <c>url</c>: a canonical reference of the source names its resources by it.</param>
public sealed record HasCriterion(string SourceType, string Param, Criterion Inner, bool ByUrl = false) : Criterion;

/// <summary>
/// A token criterion whose codes come from the hub's terminology (search.html#token): not searchable as it stands;
/// <see cref="Terminology.LocalTerminology"/> expands it into an <see cref="IndexCriterion"/> over the codes.
/// </summary>
/// <param name="Name">The parameter as given (with its modifier and any chain), for errors.</param>
public abstract record TerminologyCriterion(string Param, string Name) : Criterion;

/// <summary><c>:in</c> / <c>:not-in</c> (negated): the token is (not) one of the codes of one of the ValueSets, each a canonical URL or <c>ValueSet/id</c>.</summary>
public sealed record ValueSetCriterion(string Param, string Name, IReadOnlyList<string> ValueSets, bool Negated) : TerminologyCriterion(Param, Name);

/// <summary><c>:below</c> (the code or a descendant) or <c>:above</c> (the code or an ancestor) in its CodeSystem's hierarchy.</summary>
public sealed record SubsumptionCriterion(string Param, string Name, IReadOnlyList<TokenCondition> Codes, bool Above) : TerminologyCriterion(Param, Name);

/// <summary>All of the criteria (chains and <c>_has</c> nest criteria; the top level is always an AND).</summary>
public sealed record AllCriterion(IReadOnlyList<Criterion> All) : Criterion;

/// <summary>One sort key of <c>_sort</c> (search.html#sort).</summary>
/// <param name="Param">A parameter code, or <c>_id</c> / <c>_lastUpdated</c>, which sort on the resource row.</param>
/// <param name="RowsOf">The parameters whose index rows hold the values (a union parameter's); null: <paramref name="Param"/>'s own.</param>
public sealed record SortClause(string Param, IndexTable Table, bool Descending, IReadOnlyList<string>? RowsOf = null, ReferenceSubset? Subset = null);

/// <summary>
/// <c>_include</c> / <c>_revinclude</c> (search.html#include): resources of <see cref="SourceType"/> reference
/// through <see cref="Param"/> (null = every reference parameter) resources of <see cref="TargetType"/> (null = any).
/// </summary>
public sealed record IncludeSpec(string SourceType, string? Param, string? TargetType, bool Iterate, ReferenceSubset? Subset = null);

/// <summary>At least one of the criteria (a compartment: any of the parameters that link a resource to it).</summary>
/// <param name="OnePersonsRecord">The links to one patient, encounter or related person (their compartment): few
/// resources, so a search may read all of them and check on each what needs the resource row (<c>_lastUpdated</c>).</param>
public sealed record AnyCriterion(IReadOnlyList<Criterion> Any, bool OnePersonsRecord = false) : Criterion;

/// <summary>
/// A criterion for the resources of some types only, in a search over several (<c>_type</c>, <c>$everything</c>): a
/// parameter read through other parameters' rows (<see cref="SearchParam.UnionOf"/>, <see cref="SearchParam.SubsetOf"/>)
/// is read as each type defines it, and a compartment link counts for the types whose parameter it is.
/// </summary>
public sealed record OfTypeCriterion(IReadOnlyList<string> ResourceTypes, Criterion Inner) : Criterion;

/// <summary>
/// The resources that a resource of <paramref name="SourceTypes"/> meeting <paramref name="Sources"/> refers to, through
/// any reference search parameter: what a patient's record refers to (its organisations, practitioners, locations,
/// medications), for <c>$everything</c>.
/// </summary>
public sealed record ReferencedByCriterion(IReadOnlyList<string> SourceTypes, Criterion Sources) : Criterion;
