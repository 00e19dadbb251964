namespace InteropHub.Fhir.Storage;

public enum ReindexStatus
{
    /// <summary>Created or part done: a worker takes the next batch after <see cref="ReindexJob.Cursor"/>.</summary>
    Running,

    Done,

    Failed,
}

/// <summary>
/// A durable re-index of the live resources of some types (all types when <see cref="ResourceTypes"/> is empty), in
/// row-id order. <see cref="Cursor"/> is the last row id done; it is saved with each batch's index rows, so a job
/// interrupted by a restart continues where it stopped.
/// </summary>
/// <param name="Reason">What the job is for: a custom parameter's definition key, or <c>manual</c>.</param>
/// <param name="Total">Live resources of the types when the job started (progress is <see cref="Done"/> of it).</param>
public sealed record ReindexJob(
    long Id,
    string Reason,
    IReadOnlyList<string> ResourceTypes,
    ReindexStatus Status,
    long Cursor,
    long Done,
    long Total,
    DateTimeOffset Created,
    DateTimeOffset Updated,
    string? Error);

/// <summary>Re-extracts index rows of stored resources (after a search parameter is added or changed) as durable jobs.</summary>
public interface IReindexStore
{
    Task<ReindexJob> StartReindexAsync(string reason, IReadOnlyList<string> resourceTypes, CancellationToken ct);

    /// <summary>Every job, newest first.</summary>
    Task<IReadOnlyList<ReindexJob>> ReadReindexJobsAsync(CancellationToken ct);

    /// <summary>
    /// One batch, in one transaction: the next <paramref name="limit"/> live resources of the job's types after its
    /// cursor are locked against concurrent writes, their index rows replaced with <paramref name="extract"/>'s, and
    /// the cursor advanced (the job is done when fewer remain). Returns the job as saved.
    /// </summary>
    Task<ReindexJob> ReindexBatchAsync(long jobId, int limit, Func<StoredResource, SearchIndexEntries> extract, CancellationToken ct);

    Task FailReindexAsync(long jobId, string error, CancellationToken ct);
}
