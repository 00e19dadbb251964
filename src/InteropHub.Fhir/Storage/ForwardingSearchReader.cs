using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Storage;

/// <summary>
/// Passes every search read on to <see cref="Reader"/>: the base of the wrappers of stores and write sessions
/// (<see cref="CachingResourceStore"/>, its sessions, a transaction's locking session), which have nothing to add to them.
/// </summary>
public abstract class ForwardingSearchReader : ISearchReader
{
    /// <summary>The store or session wrapped.</summary>
    protected abstract ISearchReader Reader { get; }

    public Task<IReadOnlyList<ResourceMatch>> FindAsync(SearchCriteria criteria, IReadOnlyList<SortClause> sort, SearchCursor? after, int limit,
        CancellationToken ct) => Reader.FindAsync(criteria, sort, after, limit, ct);

    public Task<long> CountAsync(SearchCriteria criteria, CancellationToken ct) => Reader.CountAsync(criteria, ct);

    public Task<long> EstimateCountAsync(SearchCriteria criteria, CancellationToken ct) => Reader.EstimateCountAsync(criteria, ct);

    public Task<IReadOnlyList<ResourceMatch>> FindReferencesAsync(IReadOnlyList<long> rids, string? param, string? targetType, int limit,
        CancellationToken ct) => Reader.FindReferencesAsync(rids, param, targetType, limit, ct);

    public Task<IReadOnlyList<ResourceMatch>> FindReferringAsync(IReadOnlyList<ReferenceLink> links, IReadOnlyList<ResourceKey> targets,
        IReadOnlyList<(string ResourceType, string Url)> urls, int limit, CancellationToken ct) => Reader.FindReferringAsync(links, targets, urls, limit, ct);

    public Task<IReadOnlyList<string>> FindCanonicalReferencesAsync(IReadOnlyList<long> rids, string param, int limit, CancellationToken ct) =>
        Reader.FindCanonicalReferencesAsync(rids, param, limit, ct);

    public Task<IReadOnlyList<StoredResource>> ReadManyAsync(string resourceType, IReadOnlyList<string> ids, CancellationToken ct) =>
        Reader.ReadManyAsync(resourceType, ids, ct);
}
