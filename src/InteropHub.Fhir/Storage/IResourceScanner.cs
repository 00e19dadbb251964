namespace InteropHub.Fhir.Storage;

/// <summary>Streams every live (or deleted) resource of a type, for bulk export: stored bytes, bounded memory.</summary>
public interface IResourceScanner
{
    /// <summary>
    /// The type's resources as they were at <paramref name="until"/>, each once: the current version when it was
    /// written before then, else (changed or deleted since) the version current then, if it was live.
    /// </summary>
    /// <param name="since">Only versions written at or after this instant.</param>
    /// <param name="until">The export's transaction time.</param>
    IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until, CancellationToken ct);

    /// <summary>
    /// The type's resources deleted at or after <paramref name="since"/> and still deleted at <paramref name="until"/>
    /// (their version current then is a deletion; one deleted and written again before it is not), each once, as the
    /// version the deletion ended: its last content, which tells what it was about (bulk export's <c>deleted</c>).
    /// </summary>
    IAsyncEnumerable<StoredResource> ScanDeletedAsync(string resourceType, DateTimeOffset since, DateTimeOffset until, CancellationToken ct);
}
