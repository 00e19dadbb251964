namespace InteropHub.Fhir;

/// <summary>The <c>InteropHub</c> configuration section's scalar settings (storage has its own section).</summary>
public sealed class HubOptions
{
    /// <summary>Request bodies larger than this are refused with 413.</summary>
    public long MaxBodyBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Page size for search and history when the client gives no <c>_count</c>.</summary>
    public int DefaultPageSize { get; set; } = 50;

    /// <summary>The largest <c>_count</c> honoured; larger values are reduced to it.</summary>
    public int MaxPageSize { get; set; } = 1000;
}
