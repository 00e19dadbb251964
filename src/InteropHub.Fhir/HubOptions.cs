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

    /// <summary>
    /// The hub's public FHIR base URL (e.g. <c>https://hub.example.cn/fhir</c>). References that start with it are
    /// indexed and searched as local references (search.html#reference); empty when only relative references are local.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>The most resources <c>_include</c>/<c>_revinclude</c> add to one page; past it the page carries a warning.</summary>
    public int MaxIncludes { get; set; } = 1000;
}
