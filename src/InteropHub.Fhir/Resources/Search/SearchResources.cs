using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Search;

public sealed record SearchRequest(string ResourceType, IReadOnlyList<KeyValuePair<string, string>> Query);

public sealed record SearchPage(IReadOnlyList<StoredResource> Resources, long? NextCursor, int Count);

/// <summary>
/// Type-level search (http.html#search) over the parameters <see cref="SearchCriteria"/> understands, in
/// row-id order with keyset paging. The full search engine replaces the criteria, not this path.
/// </summary>
public sealed class SearchResources(IResourceStore store, HubOptions options)
{
    public async Task<SearchPage> HandleAsync(SearchRequest request, CancellationToken ct)
    {
        var criteria = SearchCriteria.Parse(request.ResourceType, request.Query);
        var count = Paging.Count(Last(request.Query, "_count"), options);
        var cursor = Paging.Cursor(Last(request.Query, Paging.CursorParameter));
        if (count == 0)
        {
            return new SearchPage([], null, 0);
        }

        var matches = await store.FindAsync(request.ResourceType, criteria, cursor, count + 1, ct);
        var more = matches.Count > count;
        var page = more ? matches.Take(count).ToList() : matches;
        var resources = await store.ReadManyAsync(request.ResourceType, page.Select(m => m.Id).ToList(), ct);
        return new SearchPage(resources, more ? page[^1].Rid : null, count);
    }

    private static string? Last(IReadOnlyList<KeyValuePair<string, string>> query, string name) =>
        query.LastOrDefault(p => p.Key == name).Value;
}
