namespace InteropHub.Fhir.Storage;

public enum ImportState
{
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// <summary>
/// One bulk import job as the store keeps it. <see cref="Request"/> and <see cref="Progress"/> are JSON documents
/// owned by the import code; the progress is rewritten in the transaction of every batch it describes.
/// </summary>
public sealed record ImportJobRow(string Id, ImportState State, string Request, string Progress, string? Error, DateTimeOffset Created);

/// <summary>A line of an import input that was not imported, and why.</summary>
/// <param name="Input">The index of the input in the job's request.</param>
/// <param name="Line">1-based line number in that input.</param>
public sealed record ImportLineError(int Input, long Line, string Message);

/// <summary>The bulk import jobs (<c>$import</c>, the <c>import</c> command), kept in the database so a restart resumes them.</summary>
public interface IImportJobStore
{
    Task CreateImportJobAsync(ImportJobRow job, CancellationToken ct);

    Task<ImportJobRow?> ReadImportJobAsync(string id, CancellationToken ct);

    /// <summary>The ids of the jobs in the given state, oldest first.</summary>
    Task<IReadOnlyList<string>> ListImportJobsAsync(ImportState state, CancellationToken ct);

    /// <summary>Ends a job; a job already ended keeps its state.</summary>
    Task FinishImportJobAsync(string id, ImportState state, string? error, CancellationToken ct);

    /// <summary>Removes the job and its errors.</summary>
    Task DeleteImportJobAsync(string id, CancellationToken ct);

    /// <summary>The lines that failed, in input and line order, after (<paramref name="afterInput"/>, <paramref name="afterLine"/>).</summary>
    Task<IReadOnlyList<ImportLineError>> ReadImportErrorsAsync(string id, int afterInput, long afterLine, int limit, CancellationToken ct);
}
