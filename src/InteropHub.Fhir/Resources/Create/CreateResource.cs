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
    public Task<WriteOutcome> HandleAsync(CreateRequest request, CancellationToken ct) =>
        store.RunAsync(session => ExecuteAsync(session, request, ct), ct);

    /// <summary>The create inside a session the caller commits (a transaction runs many in one session).</summary>
    public async Task<WriteOutcome> ExecuteAsync(IWriteSession session, CreateRequest request, CancellationToken ct)
    {
        var existing = await FindExistingAsync(session, request, ct);
        return existing is not null
            ? new WriteOutcome(WriteStatus.Existing, existing)
            : await WriteAsync(session, request, VersionWriter.NewId(), ct);
    }

    /// <summary>Checks the request and, for a conditional create, returns the single match (null: create).</summary>
    public static async Task<StoredResource?> FindExistingAsync(IWriteSession session, CreateRequest request, CancellationToken ct)
    {
        if (request.Resource.TypeName != request.ResourceType)
        {
            throw new InvalidInputException(
                $"The body is a {request.Resource.TypeName} but the request URL is for {request.ResourceType}.", "resourceType");
        }

        if (request.IfNoneExist is not { } criteria)
        {
            return null;
        }

        if (criteria.IsEmpty)
        {
            throw new InvalidInputException("If-None-Exist has no search criteria.");
        }

        // The common case, a resource that exists, writes nothing and so needs no lock. Only a create does: under the
        // criteria lock the search runs again, so of two identical conditional creates the second finds the first.
        var matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
        if (matches.Count == 0)
        {
            await session.LockAsync(VersionWriter.CriteriaLock(request.ResourceType, criteria), ct);
            matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
        }

        if (matches.Count > 1)
        {
            throw new PreconditionFailedException(
                $"If-None-Exist '{criteria.Canonical(request.ResourceType)}' matches more than one resource.");
        }

        return matches.Count == 1 ? await session.ReadCurrentAsync(request.ResourceType, matches[0].Id, ct) : null;
    }

    /// <summary>Writes the resource as version 1 under <paramref name="id"/>, a new server-assigned id.</summary>
    public async Task<WriteOutcome> WriteAsync(IWriteSession session, CreateRequest request, string id, CancellationToken ct) =>
        new(WriteStatus.Created, await writer.SaveAsync(session, request.Resource, id, previous: null, "POST", ct));
}
