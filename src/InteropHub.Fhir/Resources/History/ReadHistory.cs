using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.History;

/// <param name="ResourceType">null for system history.</param>
/// <param name="Id">null for type or system history.</param>
/// <param name="At"><c>_at</c>: a date, dateTime or instant, optionally with a prefix (eq, ge, gt, le, lt).</param>
public sealed record HistoryRequest(string? ResourceType, string? Id, string? Since, string? Count, string? Cursor, string? At = null);

/// <param name="NextCursor">The continuation key of the next page, or null on the last page.</param>
/// <param name="Total">The number of versions selected, on every page (instance history only).</param>
public sealed record HistoryPage(IReadOnlyList<HistoryEntry> Entries, long? NextCursor, int Count, long? Total = null);

/// <summary>
/// Instance, type and system history (http.html#history): newest first, <c>_since</c>, <c>_at</c> and <c>_count</c>,
/// keyset-paged on the version key so a page stays correct while new versions arrive. An instance's history says
/// its total; a type's or the system's, which may be millions of versions, does not.
/// </summary>
public sealed class ReadHistory(IResourceStore store, HubOptions options)
{
    /// <summary>The parameters history takes (besides the formatting ones); anything else is named in a 400.</summary>
    public static readonly IReadOnlySet<string> Parameters = new HashSet<string>(StringComparer.Ordinal) { "_since", "_at", "_count", Paging.CursorParameter };

    public static InvalidInputException Unsupported(string name) =>
        new($"History parameter '{name}' is not supported; use _since, _at, _count.", name);

    public async Task<HistoryPage> HandleAsync(HistoryRequest request, CancellationToken ct)
    {
        if (request.Id is { } id)
        {
            ResourceTypes.EnsureValidId(id);
            if (await store.ReadAsync(request.ResourceType!, id, ct) is null)
            {
                throw new ResourceNotFoundException($"{request.ResourceType}/{id} is not known.");
            }
        }

        var since = SinceParameter.Parse(request.Since);
        var (atFrom, atTo) = ParseAt(request.At);
        var count = Paging.Count(request.Count, options);
        var cursor = Paging.Cursor(request.Cursor);
        var query = new HistoryQuery(request.ResourceType, request.Id, since, count + 1, cursor, atFrom, atTo);
        long? total = request.Id is null ? null : await store.CountHistoryAsync(query, ct);
        if (count == 0)
        {
            return new HistoryPage([], null, 0, total);
        }

        var rows = await store.ReadHistoryAsync(query, ct);
        var more = rows.Count > count;
        var page = more ? rows.Take(count).ToList() : rows;
        return new HistoryPage(page, more ? page[^1].Key : null, count, total);
    }

    /// <summary>
    /// <c>_at</c> (http.html#history): the versions current at some moment of the value's interval, e.g. <c>2024-03</c>
    /// is every version current at some time in March 2024. <c>ge</c>/<c>gt</c> open the interval to the future,
    /// <c>le</c>/<c>lt</c> to the past. Returned as version keys: versions current at or after the first, created
    /// before the second.
    /// </summary>
    private static (long? From, long? To) ParseAt(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return (null, null);
        }

        var prefix = raw.Length > 2 && char.IsLetter(raw[0]) && char.IsLetter(raw[1]) ? raw[..2] : "eq";
        var value = prefix == "eq" && !raw.StartsWith("eq", StringComparison.Ordinal) ? raw : raw[2..];
        if (prefix is not ("eq" or "ge" or "gt" or "le" or "lt") || !DateRange.TryParse(value, out var range))
        {
            throw new InvalidInputException(
                $"_at must be a date, dateTime or instant such as 2024-01-31T08:00:00Z, optionally prefixed by ge, gt, le or lt; not '{raw}'.", "_at");
        }

        long Key(long ticks) => VersionKeys.FromInstant(new DateTimeOffset(Math.Min(ticks, DateTimeOffset.MaxValue.UtcTicks), TimeSpan.Zero));
        return prefix switch
        {
            "ge" => (Key(range.Low), null),
            "gt" => (Key(range.High), null),
            "le" => (null, Key(range.High)),
            "lt" => (null, Key(range.Low)),
            _ => (Key(range.Low), Key(range.High)),
        };
    }
}
