using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Patch;

/// <param name="Id">The id in the URL, or null for a conditional patch.</param>
/// <param name="Criteria">Conditional patch criteria (<c>PATCH [type]?…</c>), or null.</param>
public sealed record PatchRequest(string ResourceType, string? Id, SearchCriteria? Criteria, IResourcePatch Patch, IReadOnlyList<int>? IfMatch);

/// <summary>
/// <c>PATCH [base]/[type]/[id]</c> and <c>PATCH [base]/[type]?criteria</c> (http.html#patch): applies the patch
/// to the current version under the resource's lock and writes the result as the next version. The patch may
/// not change the resource's type or id. A conditional patch needs exactly one match (none: 404, several: 412).
/// </summary>
public sealed class PatchResource(IResourceStore store, VersionWriter writer, FhirSerializers serializers)
{
    public Task<WriteOutcome> HandleAsync(PatchRequest request, CancellationToken ct) =>
        store.RunAsync(session => ExecuteAsync(session, request, ct), ct);

    /// <summary>The patch inside a session the caller commits.</summary>
    public async Task<WriteOutcome> ExecuteAsync(IWriteSession session, PatchRequest request, CancellationToken ct) =>
        await WriteAsync(session, request, await ResolveIdAsync(session, request, ct), ct);

    public static async Task<string> ResolveIdAsync(IWriteSession session, PatchRequest request, CancellationToken ct)
    {
        if (request.Id is { } urlId)
        {
            ResourceTypes.EnsureValidId(urlId);
            return urlId;
        }

        var criteria = request.Criteria;
        if (criteria is null || criteria.IsEmpty)
        {
            throw new InvalidInputException("A conditional patch needs search criteria, e.g. PATCH /Patient?identifier=system|value.");
        }

        await session.LockAsync(VersionWriter.CriteriaLock(request.ResourceType, criteria), ct);
        var matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
        return matches.Count switch
        {
            1 => matches[0].Id,
            0 => throw new ResourceNotFoundException($"Conditional patch '{criteria.Canonical(request.ResourceType)}' matches no resource."),
            _ => throw new PreconditionFailedException($"Conditional patch '{criteria.Canonical(request.ResourceType)}' matches more than one resource."),
        };
    }

    public async Task<WriteOutcome> WriteAsync(IWriteSession session, PatchRequest request, string id, CancellationToken ct)
    {
        var type = request.ResourceType;
        await session.LockAsync(VersionWriter.IdLock(type, id), ct);
        var current = await session.ReadCurrentAsync(type, id, ct);
        if (current is null)
        {
            throw new ResourceNotFoundException($"{type}/{id} does not exist; a patch needs a resource to change.");
        }

        if (current.IsDeleted)
        {
            throw new ResourceGoneException($"{type}/{id} was deleted (version {current.VersionId}); a patch needs a live resource.");
        }

        if (request.IfMatch is { } expected && !ETags.Names(expected, current.VersionId))
        {
            throw new PreconditionFailedException($"If-Match expected {ETags.Describe(expected)} of {type}/{id}, but it is at version {current.VersionId}.");
        }

        var patched = request.Patch.Apply(current, serializers);
        if (patched.TypeName != type)
        {
            throw PatchErrors.Failed($"The patch changes the resource type from {type} to {patched.TypeName}; a patch may not do that.", "resourceType");
        }

        if (patched.Id != id)
        {
            throw PatchErrors.Failed($"The patch changes the id of {type}/{id} to '{patched.Id}'; a patch may not do that.", "id");
        }

        return new WriteOutcome(WriteStatus.Updated, await writer.SaveAsync(session, patched, id, current, "PATCH", ct));
    }
}
