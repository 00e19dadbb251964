using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Create;

/// <param name="IfNoneExist">Conditional create criteria (the <c>If-None-Exist</c> header), or null.</param>
public sealed record CreateRequest(string ResourceType, Resource Resource, SearchCriteria? IfNoneExist);

/// <summary>
/// <c>POST [base]/[type]</c> (http.html#create). The server assigns the id; an id in the body is ignored, as
/// the spec says. With <c>If-None-Exist</c> the match and the insert happen under one lock on the criteria,
/// so parallel identical requests create exactly one resource.
/// </summary>
public sealed class CreateResource(IResourceStore store, VersionWriter writer)
{
    public async Task<WriteOutcome> HandleAsync(CreateRequest request, CancellationToken ct)
    {
        if (request.Resource.TypeName != request.ResourceType)
        {
            throw new InvalidInputException(
                $"The body is a {request.Resource.TypeName} but the request URL is for {request.ResourceType}.", "resourceType");
        }

        await using var session = await store.BeginWriteAsync(ct);
        if (request.IfNoneExist is { } criteria)
        {
            if (criteria.IsEmpty)
            {
                throw new InvalidInputException("If-None-Exist has no search criteria.");
            }

            await session.LockAsync(VersionWriter.CriteriaLock(request.ResourceType, criteria), ct);
            var matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
            if (matches.Count > 1)
            {
                throw new PreconditionFailedException(
                    $"If-None-Exist '{criteria.Canonical(request.ResourceType)}' matches more than one resource.");
            }

            if (matches.Count == 1)
            {
                var existing = await session.ReadCurrentAsync(request.ResourceType, matches[0].Id, ct);
                return new WriteOutcome(WriteStatus.Existing, existing);
            }
        }

        var saved = await writer.SaveAsync(session, request.Resource, VersionWriter.NewId(), previous: null, "POST", ct);
        await session.CommitAsync(ct);
        return new WriteOutcome(WriteStatus.Created, saved);
    }
}
