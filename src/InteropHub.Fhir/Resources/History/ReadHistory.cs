using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.History;

/// <param name="ResourceType">null for system history.</param>
/// <param name="Id">null for type or system history.</param>
public sealed record HistoryRequest(string? ResourceType, string? Id, string? Since, string? Count, string? Cursor);

/// <param name="NextCursor">The continuation key of the next page, or null on the last page.</param>
public sealed record HistoryPage(IReadOnlyList<HistoryEntry> Entries, long? NextCursor, int Count);

/// <summary>
/// Instance, type and system history (http.html#history): newest first, <c>_since</c> and <c>_count</c>,
/// keyset-paged on the version key so a page stays correct while new versions arrive.
/// </summary>
public sealed class ReadHistory(IResourceStore store, HubOptions options)
{
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

        var since = ParseSince(request.Since);
        var count = Paging.Count(request.Count, options);
        var cursor = Paging.Cursor(request.Cursor);
        if (count == 0)
        {
            return new HistoryPage([], null, 0);
        }

        var rows = await store.ReadHistoryAsync(new HistoryQuery(request.ResourceType, request.Id, since, count + 1, cursor), ct);
        var more = rows.Count > count;
        var page = more ? rows.Take(count).ToList() : rows;
        return new HistoryPage(page, more ? page[^1].Key : null, count);
    }

    private static DateTimeOffset? ParseSince(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        // _since is an instant; a date or a time without zone is read as UTC rather than refused.
        if (FhirDateTime.IsValidValue(raw))
        {
            try
            {
                return new FhirDateTime(raw).ToDateTimeOffset(TimeSpan.Zero);
            }
            catch (FormatException)
            {
                // Shaped like an instant but not one (e.g. a +25:00 offset): refused below.
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        }

        throw new InvalidInputException($"_since must be an instant such as 2024-01-31T08:00:00Z, not '{raw}'.", "_since");
    }
}
