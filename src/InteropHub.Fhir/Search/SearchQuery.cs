using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Search;

/// <summary>search.html#total</summary>
public enum TotalMode
{
    None,
    Estimate,
    Accurate,
}

/// <summary>search.html#summary</summary>
public enum SummaryMode
{
    False,
    True,
    Text,
    Data,
    Count,
}

/// <summary>A whole search request: the criteria and the result parameters (search.html#return).</summary>
public sealed record SearchQuery(
    SearchCriteria Criteria,
    IReadOnlyList<SortClause> Sort,
    int Count,
    string? Cursor,
    TotalMode Total,
    SummaryMode Summary,
    IReadOnlyList<string>? Elements,
    IReadOnlyList<IncludeSpec> Includes,
    IReadOnlyList<IncludeSpec> RevIncludes,
    IReadOnlyList<KeyValuePair<string, string>> ResultParameters);
