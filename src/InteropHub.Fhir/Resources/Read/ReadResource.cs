using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
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
        // A version id is an id, compared as written like a resource's: "01" is not version "1".
        if (!int.TryParse(versionId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version) || version < 1
            || version.ToString(System.Globalization.CultureInfo.InvariantCulture) != versionId)
        {
            throw new ResourceNotFoundException(
                $"Version '{versionId}' of {resourceType}/{id} is not known: version ids here are 1, 2, 3…, without leading zeros.");
        }

        return await store.ReadVersionAsync(resourceType, id, version, ct)
            ?? throw new ResourceNotFoundException($"Version {version} of {resourceType}/{id} is not known.");
    }

    /// <summary>
    /// <c>_summary</c> (true, text, data, false) or <c>_elements</c> on a read or vread, as on a search: the resource with
    /// the parts asked for, tagged SUBSETTED; without them, the stored bytes as they are.
    /// </summary>
    public static StoredResource Subset(StoredResource resource, string? summary, string? elements, FhirSerializers serializers)
    {
        var mode = summary switch
        {
            null or "" or "false" => SummaryMode.False,
            "true" => SummaryMode.True,
            "text" => SummaryMode.Text,
            "data" => SummaryMode.Data,
            "count" => throw new InvalidInputException("_summary=count counts the matches of a search; a read has one resource.", "_summary"),
            _ => throw new InvalidInputException($"_summary must be true, text, data or false, not '{summary}'.", "_summary"),
        };
        if (mode != SummaryMode.False && !string.IsNullOrEmpty(elements))
        {
            throw new InvalidInputException("_summary and _elements cannot be used together.", "_elements");
        }

        var names = string.IsNullOrEmpty(elements) ? null : SearchParser.ElementsFor(SearchParser.ParseElements(elements, [resource.ResourceType]), resource.ResourceType);
        return SearchResources.Filter(mode, names) is { } filter
            ? resource with { Json = serializers.ToJsonBytes(serializers.ParseStored(resource.Json), filter) }
            : resource;
    }
}
