using Hl7.Fhir.Model;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources;

public enum WriteStatus
{
    /// <summary>A new resource (or a new life of a deleted one): 201.</summary>
    Created,

    /// <summary>A new version of an existing resource: 200.</summary>
    Updated,

    /// <summary>Conditional create found a match and wrote nothing: 200 with the match.</summary>
    Existing,

    /// <summary>A delete wrote a deletion version: 204.</summary>
    Deleted,

    /// <summary>A delete found nothing live to delete: 204, no version written.</summary>
    NothingToDelete,
}

public sealed record WriteOutcome(WriteStatus Status, StoredResource? Resource);

/// <summary>
/// Writes one new version inside a write session: stamps id, versionId and lastUpdated into <c>meta</c>,
/// serialises once to the bytes that reads will return, and hands the store the version and its index rows
/// (extracted here, so they are written in the same transaction as the version).
/// </summary>
public sealed class VersionWriter(FhirSerializers serializers, TimeProvider clock, SearchIndexer? indexer = null, IEnumerable<IWriteRule>? rules = null)
{
    private readonly SearchIndexer _indexer = indexer ?? SearchIndexer.Default;
    private readonly IWriteRule[] _rules = rules?.ToArray() ?? [];

    public async Task<StoredResource> SaveAsync(IWriteSession session, Resource resource, string id, StoredResource? previous,
        string method, CancellationToken ct)
    {
        foreach (var rule in _rules)
        {
            await rule.CheckAsync(session, resource, previous, ct);
        }

        var version = (previous?.VersionId ?? 0) + 1;
        var key = VersionKeys.Next(clock);
        var lastUpdated = VersionKeys.ToInstant(key);

        resource.Id = id;
        resource.Meta ??= new Meta();
        resource.Meta.VersionId = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        resource.Meta.LastUpdated = lastUpdated;

        var json = serializers.ToJsonBytes(resource);
        await session.WriteAsync(new VersionRow(resource.TypeName, id, version, key, method, false, json), _indexer.Extract(resource), ct);
        return new StoredResource(resource.TypeName, id, version, lastUpdated, false, json, method);
    }

    public async Task<StoredResource> DeleteAsync(IWriteSession session, StoredResource current, CancellationToken ct)
    {
        var key = VersionKeys.Next(clock);
        var version = current.VersionId + 1;
        await session.WriteAsync(new VersionRow(current.ResourceType, current.Id, version, key, "DELETE", true, []), SearchIndexEntries.Empty, ct);
        return new StoredResource(current.ResourceType, current.Id, version, VersionKeys.ToInstant(key), true, [], "DELETE");
    }

    public static string NewId() => Guid.CreateVersion7().ToString();

    public static string IdLock(string resourceType, string id) => $"id:{resourceType}/{id}";

    public static string CriteriaLock(string resourceType, SearchCriteria criteria) => $"if:{criteria.Canonical(resourceType)}";
}
