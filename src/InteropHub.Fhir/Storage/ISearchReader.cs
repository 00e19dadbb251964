using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Storage;

/// <summary>
/// The reads a search makes (<c>SearchResources</c>): sorted, keyset-paged matches, their count, the resources
/// <c>_include</c> and <c>_revinclude</c> add, and the current versions of them all. A store answers them from
/// committed data; a write session (<see cref="IWriteSession"/>) from its transaction, its own writes included, so a
/// search inside a transaction Bundle answers as the same search would once the transaction commits.
/// </summary>
public interface ISearchReader
{
    /// <summary>
    /// Live resources of the criteria's types matching them, ordered by <paramref name="sort"/> and then by row id,
    /// starting after <paramref name="after"/> (keyset paging: the cursor holds the sort values and row id of the
    /// last match of the previous page, so pages stay correct while data changes).
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindAsync(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after, int limit, CancellationToken ct);

    /// <summary>How many live resources match (<c>_total=accurate</c>).</summary>
    Task<long> CountAsync(SearchCriteria criteria, CancellationToken ct);

    /// <summary>
    /// About how many live resources match (<c>_total=estimate</c>): a store that can estimate without counting
    /// (PostgreSQL's planner statistics) does; the others, and write sessions, count.
    /// </summary>
    Task<long> EstimateCountAsync(SearchCriteria criteria, CancellationToken ct) => CountAsync(criteria, ct);

    /// <summary>
    /// The live local targets the given resources reference (<c>_include</c>) through <paramref name="param"/> (null:
    /// any reference parameter), of <paramref name="targetType"/> (null: any type), in row-id order, at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindReferencesAsync(IReadOnlyList<long> rids, string? param, string? targetType, int limit, CancellationToken ct);

    /// <summary>
    /// The live resources that refer to one of <paramref name="targets"/> (<c>_revinclude</c>) through one of
    /// <paramref name="links"/> (each counts for targets of its target type), or that name one of <paramref name="urls"/>
    /// (canonical URLs, each with the type of the resource it is the URL of) through one; in row-id order, at most <paramref name="limit"/>.
    /// </summary>
    Task<IReadOnlyList<ResourceMatch>> FindReferringAsync(IReadOnlyList<ReferenceLink> links, IReadOnlyList<ResourceKey> targets,
        IReadOnlyList<(string ResourceType, string Url)> urls, int limit, CancellationToken ct);

    /// <summary>
    /// The canonical URLs (without a version) the given resources reference through <paramref name="param"/>
    /// (<c>MeasureReport.measure</c>, <c>CarePlan.instantiatesCanonical</c>), at most <paramref name="limit"/>: what
    /// <c>_include</c> then finds by <c>url</c>.
    /// </summary>
    Task<IReadOnlyList<string>> FindCanonicalReferencesAsync(IReadOnlyList<long> rids, string param, int limit, CancellationToken ct);

    /// <summary>The current versions of the given live resources, in the order asked.</summary>
    Task<IReadOnlyList<StoredResource>> ReadManyAsync(string resourceType, IReadOnlyList<string> ids, CancellationToken ct);
}
