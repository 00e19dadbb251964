namespace InteropHub.Fhir.Storage;

/// <summary>
/// One version of a resource as the store holds it: the final UTF-8 JSON (meta included) that reads return
/// unchanged. A deleted version has no content.
/// </summary>
public sealed record StoredResource(
    string ResourceType,
    string Id,
    int VersionId,
    DateTimeOffset LastUpdated,
    bool IsDeleted,
    byte[] Json,
    string Method = "PUT")
{
    public string ETag => $"W/\"{VersionId}\"";
}

/// <summary>A new version to write: the store adds it to history, makes it current and replaces the index rows.</summary>
public sealed record VersionRow(
    string ResourceType,
    string Id,
    int VersionId,
    long Key,
    string Method,
    bool IsDeleted,
    byte[] Json);

/// <param name="AtFrom">
/// <c>_at</c>'s lower bound as a version key: only versions still current at it or created after it (no later version
/// of the same resource was written at or before it).
/// </param>
/// <param name="AtTo"><c>_at</c>'s upper bound as a version key: only versions created before it.</param>
public sealed record HistoryQuery(
    string? ResourceType,
    string? Id,
    DateTimeOffset? Since,
    int Count,
    long? BeforeKey,
    long? AtFrom = null,
    long? AtTo = null);

public sealed record HistoryEntry(long Key, StoredResource Resource);

/// <summary>A resource matched by a search: its stable row id (the keyset paging key), logical id, type and sort values.</summary>
public sealed record ResourceMatch(long Rid, string Id, string ResourceType = "", IReadOnlyList<object>? SortValues = null)
{
    /// <summary>In a write session's search: the match's current version, read by the same statement (null elsewhere).</summary>
    public StoredResource? Current { get; init; }
}

/// <summary>What one round trip of <see cref="IWriteSession.FindManyAsync"/> found and read.</summary>
public sealed record SessionReads(IReadOnlyList<IReadOnlyList<ResourceMatch>> Found, IReadOnlyList<StoredResource> Current);

/// <summary>
/// Where a page ends: the sort values (long, double or string, one per sort key) and row id of its last match. With
/// <paramref name="Before"/>, the page wanted is the one that ends just before this row (a previous link): the store
/// then returns the matches before it in reverse order, nearest first.
/// </summary>
public sealed record SearchCursor(IReadOnlyList<object> SortValues, long Rid, bool Before = false);

public sealed record ResourceKey(string ResourceType, string Id);

/// <summary>A way one resource can refer to another: the referring type, its reference parameter and a type it may point to.</summary>
public sealed record ReferenceLink(string SourceType, string Param, string TargetType);
