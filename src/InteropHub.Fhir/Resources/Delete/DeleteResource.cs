using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Delete;

public sealed record DeleteRequest(string ResourceType, string? Id, SearchCriteria? Criteria, IReadOnlyList<int>? IfMatch);

/// <summary>
/// <c>DELETE [base]/[type]/[id]</c> (http.html#delete) and the conditional form with criteria (single match;
/// several matches are 412, as a server declaring conditionalDelete = single does). Deleting writes a deletion
/// version, so a later read answers 410 Gone and history keeps every earlier version. Deleting what is deleted or
/// never existed changes nothing and succeeds.
/// </summary>
public sealed class DeleteResource(IResourceStore store, VersionWriter writer)
{
    public Task<WriteOutcome> HandleAsync(DeleteRequest request, CancellationToken ct) =>
        store.RunAsync(session => ExecuteAsync(session, request, ct), ct);

    /// <summary>The delete inside a session the caller commits.</summary>
    public async Task<WriteOutcome> ExecuteAsync(IWriteSession session, DeleteRequest request, CancellationToken ct)
    {
        var id = await ResolveIdAsync(session, request, ct);
        if (id is null && request.IfMatch is { } versions)
        {
            // As for an id that never existed: If-Match asks for a version, and nothing matches to have one.
            throw new PreconditionFailedException(
                $"If-Match {Expected(versions)}, but '{request.Criteria!.Canonical(request.ResourceType)}' matches nothing.");
        }

        return id is null
            ? new WriteOutcome(WriteStatus.NothingToDelete, null)
            : await WriteAsync(session, request.ResourceType, id, request.IfMatch, ct);
    }

    /// <summary>The id to delete: the URL's, or the single match of the criteria (null when nothing matches).</summary>
    public static async Task<string?> ResolveIdAsync(IWriteSession session, DeleteRequest request, CancellationToken ct)
    {
        if (request.Id is { } urlId)
        {
            ResourceTypes.EnsureValidId(urlId);
            return urlId;
        }

        var criteria = request.Criteria;
        if (criteria is null || criteria.IsEmpty)
        {
            throw new InvalidInputException("A conditional delete needs search criteria, e.g. DELETE /Patient?identifier=system|value.");
        }

        await session.LockAsync(VersionWriter.CriteriaLock(request.ResourceType, criteria), ct);
        var matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
        if (matches.Count > 1)
        {
            throw new PreconditionFailedException($"Conditional delete '{criteria.Canonical(request.ResourceType)}' matches more than one resource.");
        }

        return matches.Count == 0 ? null : matches[0].Id;
    }

    public async Task<WriteOutcome> WriteAsync(IWriteSession session, string resourceType, string id, IReadOnlyList<int>? ifMatch, CancellationToken ct)
    {
        await session.LockAsync(VersionWriter.IdLock(resourceType, id), ct);
        var current = await session.ReadCurrentAsync(resourceType, id, ct);
        if (current is null)
        {
            // http.html#delete: deleting is idempotent; "if the resource does not exist at all" the answer is a success
            // too (204). Only a version asked for with If-Match cannot be matched.
            return ifMatch is { } versions
                ? throw new PreconditionFailedException($"If-Match {Expected(versions)} of {resourceType}/{id}, which does not exist.")
                : new WriteOutcome(WriteStatus.NothingToDelete, null);
        }

        if (ifMatch is { } any && any.Contains(ETags.AnyVersion) && current.IsDeleted)
        {
            throw new PreconditionFailedException($"If-Match * asks for an existing {resourceType}/{id}, but it is deleted.");
        }

        if (ifMatch is { } expected && !ETags.Names(expected, current.VersionId))
        {
            throw new PreconditionFailedException($"If-Match expected {ETags.Describe(expected)} of {resourceType}/{id}, but it is at version {current.VersionId}.");
        }

        if (current.IsDeleted)
        {
            return new WriteOutcome(WriteStatus.NothingToDelete, current);
        }

        return new WriteOutcome(WriteStatus.Deleted, await writer.DeleteAsync(session, current, ct));
    }

    private static string Expected(IReadOnlyList<int> versions) => versions.Contains(ETags.AnyVersion) ? "*" : $"expected {ETags.Describe(versions)}";
}
