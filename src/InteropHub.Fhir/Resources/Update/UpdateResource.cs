using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Update;

/// <param name="Id">The id in the URL, or null for a conditional update.</param>
/// <param name="Criteria">Conditional update criteria (<c>PUT [type]?…</c>), or null.</param>
/// <param name="IfMatch">The versions the client expects to replace, one of them (<c>If-Match</c>), or null.</param>
/// <param name="IfNoneMatch">The version the client does not want to replace (<c>If-None-Match</c>; <see cref="ETags.AnyVersion"/>
/// for <c>*</c>: create only, RFC 9110 §13.1.2), or null.</param>
public sealed record UpdateRequest(string ResourceType, string? Id, SearchCriteria? Criteria, Resource Resource, IReadOnlyList<int>? IfMatch,
    IReadOnlyList<int>? IfNoneMatch = null);

/// <summary>
/// <c>PUT [base]/[type]/[id]</c> (http.html#update), creating the resource with the client's id when absent
/// (update-as-create), and <c>PUT [base]/[type]?criteria</c> (http.html#cond-update).
/// </summary>
public sealed class UpdateResource(IResourceStore store, VersionWriter writer)
{
    public Task<WriteOutcome> HandleAsync(UpdateRequest request, CancellationToken ct)
    {
        var bodyId = request.Resource.Id;
        return store.RunAsync(session =>
        {
            // Writing stamps the resolved id into the body; a retried attempt must resolve from the client's id again.
            request.Resource.Id = bodyId;
            return ExecuteAsync(session, request, ct);
        }, ct);
    }

    /// <summary>The update inside a session the caller commits.</summary>
    public async Task<WriteOutcome> ExecuteAsync(IWriteSession session, UpdateRequest request, CancellationToken ct) =>
        await WriteAsync(session, request, (await ResolveIdAsync(session, request, ct)).Id, ct);

    /// <summary>
    /// Checks the request and returns the id to write: the URL's, or what the conditional criteria resolve to.
    /// <c>Made</c>: the criteria matched nothing and the body names no id, so the id was made just now and no stored
    /// resource has it.
    /// </summary>
    public static async Task<(string Id, bool Made)> ResolveIdAsync(IWriteSession session, UpdateRequest request, CancellationToken ct)
    {
        var resource = request.Resource;
        if (resource.TypeName != request.ResourceType)
        {
            throw new InvalidInputException($"The body is a {resource.TypeName} but the request URL is for {request.ResourceType}.", "resourceType");
        }

        return request.Id is { } urlId ? (CheckBodyId(urlId, resource), false) : await ResolveConditionalAsync(session, request, ct);
    }

    /// <summary>Writes the next version of <paramref name="id"/> (or its first, update-as-create) after checking If-Match.</summary>
    public async Task<WriteOutcome> WriteAsync(IWriteSession session, UpdateRequest request, string id, CancellationToken ct)
    {
        await session.LockAsync(VersionWriter.IdLock(request.ResourceType, id), ct);
        var current = await session.ReadCurrentAsync(request.ResourceType, id, ct);
        if (request.IfMatch is { } expected && (current is null || current.IsDeleted || !ETags.Names(expected, current.VersionId)))
        {
            var actual = current is null ? "does not exist" : current.IsDeleted ? "is deleted" : $"is at version {current.VersionId}";
            throw new PreconditionFailedException(expected.Contains(ETags.AnyVersion)
                ? $"If-Match * asks for an existing {request.ResourceType}/{id}, but the resource {actual}."
                : $"If-Match expected {ETags.Describe(expected)} of {request.ResourceType}/{id}, but the resource {actual}.");
        }

        if (request.IfNoneMatch is { } unwanted && current is { IsDeleted: false } && ETags.Names(unwanted, current.VersionId))
        {
            throw new PreconditionFailedException(unwanted.Contains(ETags.AnyVersion)
                ? $"If-None-Match * asks to create {request.ResourceType}/{id} only, but it exists (version {current.VersionId})."
                : $"If-None-Match names version {current.VersionId} of {request.ResourceType}/{id}, the current one.");
        }

        var saved = await writer.SaveAsync(session, request.Resource, id, current, "PUT", ct);
        var created = current is null || current.IsDeleted;
        return new WriteOutcome(created ? WriteStatus.Created : WriteStatus.Updated, saved);
    }

    /// <summary>The id of an update: the URL's, which the body must carry (<c>$validate</c> checks an update the same way).</summary>
    internal static string CheckBodyId(string urlId, Resource resource)
    {
        ResourceTypes.EnsureValidId(urlId);
        if (string.IsNullOrEmpty(resource.Id))
        {
            throw new InvalidInputException($"The resource has no id; an update must carry the id of the URL ('{urlId}').", "id");
        }

        if (resource.Id != urlId)
        {
            throw new InvalidInputException($"The resource id '{resource.Id}' does not match the id in the URL '{urlId}'.", "id");
        }

        return urlId;
    }

    private static async Task<(string Id, bool Made)> ResolveConditionalAsync(IWriteSession session, UpdateRequest request, CancellationToken ct)
    {
        var criteria = request.Criteria ?? throw new InvalidInputException("An update needs an id in the URL or search criteria.");
        if (criteria.IsEmpty)
        {
            throw new InvalidInputException("A conditional update needs search criteria, e.g. PUT /Patient?identifier=system|value.");
        }

        await session.LockAsync(VersionWriter.CriteriaLock(request.ResourceType, criteria), ct);
        var matches = await session.FindAsync(request.ResourceType, criteria, 2, ct);
        var bodyId = request.Resource.Id;
        switch (matches.Count)
        {
            case > 1:
                throw new PreconditionFailedException($"Conditional update '{criteria.Canonical(request.ResourceType)}' matches more than one resource.");
            case 1 when !string.IsNullOrEmpty(bodyId) && bodyId != matches[0].Id:
                throw new InvalidInputException(
                    $"The resource id '{bodyId}' differs from the id of the resource the criteria match ('{matches[0].Id}').", "id");
            case 1:
                return (matches[0].Id, false);
            default:
                if (string.IsNullOrEmpty(bodyId))
                {
                    return (VersionWriter.NewId(), true);
                }

                ResourceTypes.EnsureValidId(bodyId);
                return (bodyId, false);
        }
    }
}
