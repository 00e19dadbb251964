using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.BulkData.Export;

/// <summary><c>InteropHub:Export</c>.</summary>
public sealed class ExportOptions
{
    /// <summary>Where export jobs write their NDJSON files and state.</summary>
    public string Folder { get; set; } = "data/exports";
}

/// <param name="Types">Resource types to export; empty means every type.</param>
/// <param name="Since">Only resources changed at or after this instant (<c>_since</c>).</param>
/// <param name="RequestUrl">The kick-off URL, echoed in the manifest.</param>
public sealed record ExportRequest(IReadOnlyList<string> Types, DateTimeOffset? Since, string RequestUrl);

public enum ExportState
{
    InProgress,
    Completed,
    Failed,
}

/// <summary>The state of one export job, kept as <c>job.json</c> in its folder so it outlives a restart.</summary>
public sealed record ExportJob(
    string Id,
    ExportState State,
    ExportRequest Request,
    DateTimeOffset TransactionTime,
    long Exported,
    string? CurrentType,
    IReadOnlyList<ExportFile> Output,
    string? Error);

public sealed record ExportFile(string Type, string FileName, long Count);

/// <summary>
/// Bulk Data export (FHIR Bulk Data Access IG, system level): a background job per kick-off streams the stored
/// bytes of every matching resource into one NDJSON file per type, never building a POCO, so memory stays bounded
/// by a batch of rows whatever the export's size. The transaction time is fixed at kick-off: a resource changed
/// after it waits for the next export (with <c>_since</c>).
/// </summary>
public sealed class ExportJobs(IResourceScanner scanner, ExportOptions options, TimeProvider clock) : IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        Encoder = Serialization.FhirSerializers.Encoder,
    };

    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly ConcurrentDictionary<string, Running> _running = new();

    public string Folder => Path.GetFullPath(options.Folder);

    public ExportJob Start(ExportRequest request)
    {
        foreach (var type in request.Types)
        {
            if (!ResourceTypes.IsKnown(type))
            {
                throw new InvalidInputException($"_type '{type}' is not a resource type.", "_type");
            }
        }

        var job = new ExportJob(Guid.NewGuid().ToString("N"), ExportState.InProgress, request, clock.GetUtcNow(), 0, null, [], null);
        Directory.CreateDirectory(JobFolder(job.Id));
        Save(job);
        var cancel = new CancellationTokenSource();
        var running = new Running(cancel);
        _running[job.Id] = running;
        running.Task = Task.Run(() => RunAsync(job, cancel.Token), CancellationToken.None);
        return job;
    }

    /// <summary>The job's current state; a job that was running when the hub stopped is reported as failed.</summary>
    public ExportJob Get(string id)
    {
        var path = Path.Combine(JobFolder(id), "job.json");
        // Asked before reading the state: a job that finishes in between has already saved its final state.
        var running = _running.ContainsKey(id);
        if (!IsJobId(id) || !File.Exists(path))
        {
            throw new ResourceNotFoundException($"Export job '{id}' is not known (finished jobs are removed when deleted).");
        }

        var job = JsonSerializer.Deserialize<ExportJob>(File.ReadAllBytes(path), Json)!;
        return job.State == ExportState.InProgress && !running
            ? job with { State = ExportState.Failed, Error = "The hub stopped while this export was running; start a new export." }
            : job;
    }

    /// <summary>Cancels a running job, waits for it to stop writing, and deletes its files (Bulk Data: DELETE on the status URL).</summary>
    public async Task DeleteAsync(string id)
    {
        Get(id);
        if (_running.TryGetValue(id, out var running))
        {
            await running.Cancel.CancelAsync();
            await running.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }

        Directory.Delete(JobFolder(id), recursive: true);
    }

    public string FilePath(string id, string fileName)
    {
        var job = Get(id);
        var file = job.Output.FirstOrDefault(f => f.FileName == fileName)
            ?? throw new ResourceNotFoundException($"Export job '{id}' has no file '{fileName}'.");
        return Path.Combine(JobFolder(id), file.FileName);
    }

    public void Dispose()
    {
        foreach (var running in _running.Values)
        {
            running.Cancel.Cancel();
        }
    }

    private async Task RunAsync(ExportJob job, CancellationToken ct)
    {
        try
        {
            var types = job.Request.Types.Count > 0 ? job.Request.Types : ResourceTypes.All;
            var output = new List<ExportFile>();
            long exported = 0;
            foreach (var type in types)
            {
                var fileName = $"{type}.ndjson";
                var path = Path.Combine(JobFolder(job.Id), fileName);
                long count = 0;
                await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16, useAsync: true))
                {
                    await foreach (var resource in scanner.ScanAsync(type, job.Request.Since, job.TransactionTime, ct))
                    {
                        await file.WriteAsync(resource.Json, ct);
                        await file.WriteAsync(NewLine, ct);
                        count++;
                        if (++exported % 10_000 == 0)
                        {
                            Save(job with { Exported = exported, CurrentType = type, Output = output });
                        }
                    }
                }

                if (count == 0)
                {
                    File.Delete(path);
                    continue;
                }

                output.Add(new ExportFile(type, fileName, count));
                Save(job with { Exported = exported, CurrentType = type, Output = output });
            }

            Save(job with { State = ExportState.Completed, Exported = exported, CurrentType = null, Output = output });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Deleted by the client; the folder is gone.
        }
        catch (Exception e)
        {
            // Whatever went wrong is the job's outcome, reported on the status URL; nothing may escape a background task.
            Save(job with { State = ExportState.Failed, Error = e.Message });
        }
        finally
        {
            // The token source is not disposed: a concurrent DELETE may still cancel it (it holds no timer).
            _running.TryRemove(job.Id, out _);
        }
    }

    private void Save(ExportJob job)
    {
        var folder = JobFolder(job.Id);
        if (!Directory.Exists(folder))
        {
            return;
        }

        // Write then rename, so a reader never sees half a state file.
        var temp = Path.Combine(folder, "job.json.tmp");
        File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(job, Json));
        File.Move(temp, Path.Combine(folder, "job.json"), overwrite: true);
    }

    private string JobFolder(string id) => Path.Combine(Folder, id);

    private static bool IsJobId(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigitLower);

    private sealed class Running(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Task { get; set; } = Task.CompletedTask;
    }
}
