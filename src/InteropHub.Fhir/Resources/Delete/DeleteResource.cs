using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Delete;

public sealed record DeleteRequest(string ResourceType, string? Id, SearchCriteria? Criteria, int? IfMatch);

/// <summary>
/// <c>DELETE [base]/[type]/[id]</c> (http.html#delete) and the conditional form with criteria (single match;
/// several matches are 412, as a server declaring conditionalDelete = single does). Deleting writes a deletion
/// version, so a later read answers 410 Gone and history keeps every earlier version.
/// </summary>
public sealed class DeleteResource(IResourceStore store, VersionWriter writer)
{
    public async Task<WriteOutcome> HandleAsync(DeleteRequest request, CancellationToken ct)
    {
        await using var session = await store.BeginWriteAsync(ct);
        string id;
        if (request.Id is { } urlId)
        {
            ResourceTypes.EnsureValidId(urlId);
            id = urlId;
        }
        else
        {
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

            if (matches.Count == 0)
            {
                return new WriteOutcome(WriteStatus.NothingToDelete, null);
            }

            id = matches[0].Id;
        }

        await session.LockAsync(VersionWriter.IdLock(request.ResourceType, id), ct);
        var current = await session.ReadCurrentAsync(request.ResourceType, id, ct);
        if (current is null)
        {
            throw new ResourceNotFoundException($"{request.ResourceType}/{id} does not exist.");
        }

        if (request.IfMatch is { } expected && current.VersionId != expected)
        {
            throw new PreconditionFailedException($"If-Match expected version {expected} of {request.ResourceType}/{id}, but it is at version {current.VersionId}.");
        }

        if (current.IsDeleted)
        {
            return new WriteOutcome(WriteStatus.NothingToDelete, current);
        }

        var deleted = await writer.DeleteAsync(session, current, ct);
        await session.CommitAsync(ct);
        return new WriteOutcome(WriteStatus.Deleted, deleted);
    }
}
