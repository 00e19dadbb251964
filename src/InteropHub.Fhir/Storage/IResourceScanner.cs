namespace InteropHub.Fhir.Storage;

/// <summary>Streams every live resource of a type, for bulk export: stored bytes, row-id order, bounded memory.</summary>
public interface IResourceScanner
{
    /// <param name="since">Only resources whose current version was written at or after this instant.</param>
    /// <param name="until">Only resources whose current version was written before this instant (the export's transaction time).</param>
    IAsyncEnumerable<StoredResource> ScanAsync(string resourceType, DateTimeOffset? since, DateTimeOffset until, CancellationToken ct);
}
