using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Read;

/// <summary><c>GET [type]/[id]</c> and <c>GET [type]/[id]/_history/[vid]</c> (http.html#read, #vread).</summary>
public sealed class ReadResource(IResourceStore store)
{
    /// <summary>The current version; a deleted resource is returned too (the endpoint answers 410 with its ETag).</summary>
    public async Task<StoredResource> ReadAsync(string resourceType, string id, CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        return await store.ReadAsync(resourceType, id, ct)
            ?? throw new ResourceNotFoundException($"{resourceType}/{id} is not known.");
    }

    public async Task<StoredResource> ReadVersionAsync(string resourceType, string id, string versionId, CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        if (!int.TryParse(versionId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) || version < 1)
        {
            throw new ResourceNotFoundException($"Version '{versionId}' of {resourceType}/{id} is not known: version ids here are positive integers.");
        }

        return await store.ReadVersionAsync(resourceType, id, version, ct)
            ?? throw new ResourceNotFoundException($"Version {version} of {resourceType}/{id} is not known.");
    }
}
