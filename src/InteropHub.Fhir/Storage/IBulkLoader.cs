namespace InteropHub.Fhir.Storage;

/// <summary>
/// Loads many new resources in one transaction by the store's fastest path (PostgreSQL: binary COPY of the
/// resource, history and index rows), for imports and for loading benchmark data. Every row is the first version
/// of a resource that does not exist yet: a resource that exists fails the whole load and nothing is written.
/// </summary>
public interface IBulkLoader
{
    Task LoadAsync(IReadOnlyList<BulkResource> resources, CancellationToken ct);
}

/// <summary>A new resource's first version and its index rows (see <c>VersionWriter.Prepare</c>).</summary>
public sealed record BulkResource(VersionRow Version, SearchIndexEntries Index);
