namespace InteropHub.Fhir.Storage;

/// <summary>Streams every live resource of a type, for bulk export: stored bytes, row-id order, bounded memory.</summary>
public interface IResourceScanner
{
    /// <summary>
    /// The type's resources as they were at <paramref name="until"/>, each once: the current version when it was
    /// written before then, else (changed or deleted since) the version current then, if it was live.
    /// </summary>
    /// <param name="since">Only versions written at or after this instant.</param>
    /// <param name="until">The export's transaction time.</param>
    IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until, CancellationToken ct);
}
