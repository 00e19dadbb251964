using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.BulkData.Import;

/// <summary><c>InteropHub:Import</c>.</summary>
public sealed class ImportOptions
{
    /// <summary>The folder whose files and sub-folders an <c>$import</c> may name as inputs; any other local path is refused.</summary>
    public string Root { get; set; } = "data/import";

    /// <summary>Lines per transaction: each batch commits its resources and the position after it together.</summary>
    public int BatchSize { get; set; } = 2000;

    /// <summary>
    /// The places an <c>$import</c> may read from, each a scheme, host, port (<c>:*</c> for any) and path, e.g.
    /// <c>https://platform.example.cn/bulk/</c>: a URL must have the same scheme, host and port and lie under the path.
    /// Empty: any http(s) URL except one that reaches a loopback, unspecified or link-local address (a cloud's metadata
    /// service). Redirects are not followed, so an allowed host cannot send the hub elsewhere.
    /// </summary>
    public string[] AllowedUrls { get; set; } = [];
}

/// <param name="Type">The resource type of every line, or null when the lines may be of any type.</param>
/// <param name="Url">An absolute local file path or an http(s) URL.</param>
public sealed record ImportInput(string? Type, string Url);

/// <param name="Inputs">The inputs as resolved at kick-off (a folder becomes its <c>*.ndjson</c> files, by name).</param>
/// <param name="RequestUrl">The kick-off URL, or the command line.</param>
/// <param name="Client">Whether an HTTP client asked for it (<c>$import</c>) rather than the hub's operator (the command
/// line): a client's import writes as that client, named by <paramref name="Caller"/> (its X-Organization, or none), so
/// the rules that judge a client (a referral's moves) judge it as they judge its PUTs.</param>
public sealed record ImportRequest(IReadOnlyList<ImportInput> Inputs, string RequestUrl, bool Client = false, string? Caller = null);

/// <summary>Where a job stands after its last committed batch: the input, its last line and the byte offset after it.</summary>
/// <param name="Counts">Resources imported per type.</param>
/// <param name="Errors">Lines that were not imported.</param>
public sealed record ImportProgress(int Input, long Line, long Offset, IReadOnlyDictionary<string, long> Counts, long Errors)
{
    public static ImportProgress Start { get; } = new(0, 0, 0, new Dictionary<string, long>(), 0);

    public long Imported => Counts.Values.Sum();
}

public sealed record ImportStatus(string Id, ImportState State, ImportRequest Request, ImportProgress Progress, string? Error, DateTimeOffset Created);

/// <summary>
/// Bulk import of NDJSON inputs (<c>$import</c> and the <c>import</c> command share this code). Lines are read in
/// batches, parsed and prepared in parallel, and each batch is one transaction that writes its new resources by the
/// store's bulk path (<see cref="VersionWriter.LoadAsync"/>, with the Subscription notifications they owe), writes a
/// new version of each resource whose id exists by the normal write path, records the lines that failed, and stores
/// the position after the batch. A crash therefore
/// loses at most the batch in flight, and a restart (<see cref="ResumeAllAsync"/>) continues after the last
/// committed one: every line is imported exactly once. Resources keep their ids; an id that exists gets a new
/// version (import is update-as-create, as HAPI FHIR does).
/// </summary>
public sealed class ImportJobs(
    IResourceStore store,
    IImportJobStore jobs,
    VersionWriter writer,
    FhirSerializers serializers,
    ImportOptions options,
    TimeProvider clock,
    ILogger<ImportJobs> logger) : IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        Encoder = FhirSerializers.Encoder,
    };

    private readonly ConcurrentDictionary<string, Running> _running = new();
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        ConnectCallback = (context, ct) => OutboundUrls.ConnectAsync(context, Allowed(options).Length == 0, Setting, ct),
    });

    public string Root => Path.GetFullPath(options.Root);

    /// <summary>
    /// Checks the inputs and turns each folder into its <c>*.ndjson</c> files (ordered by name). Local paths are
    /// taken relative to <see cref="ImportOptions.Root"/> and must lie under it unless <paramref name="anyLocalPath"/>
    /// (the command line, run by whoever runs the hub).
    /// </summary>
    public IReadOnlyList<ImportInput> Resolve(IEnumerable<ImportInput> inputs, bool anyLocalPath = false)
    {
        var resolved = new List<ImportInput>();
        foreach (var input in inputs)
        {
            if (input.Type is { } type && !ResourceTypes.IsKnown(type))
            {
                throw new InvalidInputException($"Input type '{type}' is not a resource type.", "input.type");
            }

            if (Uri.TryCreate(input.Url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
            {
                if (OutboundUrls.Refusal(uri, Allowed(options), Setting) is { } refusal)
                {
                    throw new InvalidInputException($"Input '{input.Url}' {refusal}.", "input.url");
                }

                resolved.Add(input with { Url = uri.AbsoluteUri });
                continue;
            }

            if (uri is not null && !uri.IsFile)
            {
                throw new InvalidInputException($"Input '{input.Url}' is neither a local path nor an http(s) URL.", "input.url");
            }

            var root = Root;
            var path = Path.GetFullPath(uri?.LocalPath ?? input.Url, root);
            if (!anyLocalPath && path != root && !path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new InvalidInputException(
                    $"Input '{input.Url}' is outside the folder this hub imports from (InteropHub:Import:Root = {root}).", "input.url");
            }

            if (Directory.Exists(path))
            {
                var files = Directory.GetFiles(path, "*.ndjson").Order(StringComparer.Ordinal).ToList();
                if (files.Count == 0)
                {
                    throw new InvalidInputException($"Input folder '{input.Url}' has no *.ndjson file.", "input.url");
                }

                resolved.AddRange(files.Select(f => input with { Url = f }));
            }
            else if (File.Exists(path))
            {
                resolved.Add(input with { Url = path });
            }
            else
            {
                throw new InvalidInputException(
                    $"Input '{input.Url}' is not a file or folder the hub can read (local inputs are named under InteropHub:Import:Root = {root}).", "input.url");
            }
        }

        return resolved.Count > 0 ? resolved : throw new InvalidInputException("An import needs at least one input.", "input");
    }

    /// <summary>Records a new job (inputs already <see cref="Resolve"/>d) without starting it.</summary>
    public async Task<ImportStatus> CreateAsync(ImportRequest request, CancellationToken ct)
    {
        var row = new ImportJobRow(Guid.NewGuid().ToString("N"), ImportState.Running, Serialize(request), Serialize(ImportProgress.Start), null,
            clock.GetUtcNow());
        await jobs.CreateImportJobAsync(row, ct);
        return ToStatus(row);
    }

    /// <summary>Records a new job and runs it in the background.</summary>
    public async Task<ImportStatus> StartAsync(ImportRequest request, CancellationToken ct)
    {
        var status = await CreateAsync(request, ct);
        Launch(status.Id);
        return status;
    }

    public async Task<ImportStatus> GetAsync(string id, CancellationToken ct)
    {
        var row = IsJobId(id) ? await jobs.ReadImportJobAsync(id, ct) : null;
        return row is null ? throw new ResourceNotFoundException($"Import job '{id}' is not known (jobs are removed when deleted).") : ToStatus(row);
    }

    /// <summary>An unfinished job with exactly these inputs (the command line continues it rather than starting over).</summary>
    public async Task<ImportStatus?> FindUnfinishedAsync(IReadOnlyList<ImportInput> inputs, CancellationToken ct)
    {
        foreach (var id in await jobs.ListImportJobsAsync(ImportState.Running, ct))
        {
            var status = await GetAsync(id, ct);
            if (status.Request.Inputs.SequenceEqual(inputs))
            {
                return status;
            }
        }

        return null;
    }

    /// <summary>The lines that failed, after a position (keyset paging).</summary>
    public Task<IReadOnlyList<ImportLineError>> ErrorsAsync(string id, int afterInput, long afterLine, int limit, CancellationToken ct) =>
        jobs.ReadImportErrorsAsync(id, afterInput, afterLine, limit, ct);

    /// <summary>Stops a running job (its batch in flight rolls back) and removes the job; what was committed stays imported.</summary>
    public async Task DeleteAsync(string id, CancellationToken ct)
    {
        await GetAsync(id, ct);
        if (_running.TryGetValue(id, out var running))
        {
            await running.Cancel.CancelAsync();
            await running.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
        }

        await jobs.DeleteImportJobAsync(id, ct);
    }

    /// <summary>Starts, in the background, every job a stop left unfinished (at start-up).</summary>
    public async Task ResumeAllAsync(CancellationToken ct)
    {
        foreach (var id in await jobs.ListImportJobsAsync(ImportState.Running, ct))
        {
            Launch(id);
        }
    }

    /// <summary>Stops the background jobs, leaving them unfinished for the next start (each rolls back its batch in flight).</summary>
    public async Task StopAsync()
    {
        var running = _running.Values.ToList();
        foreach (var job in running)
        {
            await job.Cancel.CancelAsync();
        }

        await Task.WhenAll(running.Select(r => r.Task));
    }

    /// <summary>
    /// Runs a job from its stored position to the end in the caller (the command line; the background jobs too).
    /// An input that cannot be read fails the job; a line that cannot be imported is recorded and skipped.
    /// </summary>
    public async Task<ImportStatus> RunAsync(string id, Action<ImportProgress>? progress, CancellationToken ct)
    {
        var row = IsJobId(id) ? await jobs.ReadImportJobAsync(id, ct) : null;
        var status = row is null ? throw new ResourceNotFoundException($"Import job '{id}' is not known.") : ToStatus(row);
        if (status.State != ImportState.Running)
        {
            return status;
        }

        var at = new Position(status.Progress, row.Progress);
        CallerContext.OverHttp = status.Request.Client;
        CallerContext.Organization = status.Request.Caller;
        try
        {
            for (var input = at.Progress.Input; input < status.Request.Inputs.Count; input++)
            {
                if (input != at.Progress.Input)
                {
                    at = at with { Progress = at.Progress with { Input = input, Line = 0, Offset = 0 } };
                }

                at = await ImportInputAsync(id, status.Request.Inputs[input], at, progress, ct);
            }

            await jobs.FinishImportJobAsync(id, ImportState.Completed, null, ct);
        }
        catch (JobMovedOnException)
        {
            // Another runner (a second hub instance resuming the same job) committed first; it carries on.
        }
        catch (Exception e) when (!ct.IsCancellationRequested
            && e is IOException or HttpRequestException or InvalidDataException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            // An input that cannot be read, a host name that does not resolve included (retried at each start, the job
            // would stay in progress for ever with nothing said to the client). Anything else (the database unreachable,
            // say) leaves the job unfinished, to be continued from its last committed batch.
            var error = $"{status.Request.Inputs[at.Progress.Input].Url}: {e.Message}";
            logger.LogWarning("Import job {Job} failed: {Error}", id, error);
            await jobs.FinishImportJobAsync(id, ImportState.Failed, error, CancellationToken.None);
        }

        return await GetAsync(id, CancellationToken.None);
    }

    public void Dispose()
    {
        foreach (var running in _running.Values)
        {
            running.Cancel.Cancel();
        }

        _http.Dispose();
    }

    private async Task<Position> ImportInputAsync(string jobId, ImportInput input, Position at, Action<ImportProgress>? progress, CancellationToken ct)
    {
        await using var stream = await OpenAsync(input, at.Progress.Offset, ct);
        var lines = stream.CanSeek
            ? new NdjsonLines(stream, at.Progress.Line, at.Progress.Offset)
            : new NdjsonLines(stream, 0, 0, skipThrough: at.Progress.Line);
        // The next batch is read and parsed (on the other cores) while the current one is written.
        var parsing = ReadAndParseAsync(lines, input.Type, ct);
        try
        {
            return await ImportBatchesAsync();
        }
        finally
        {
            // The stream is disposed after this: wait for the batch read ahead (its lines were not committed, a later run reads them again).
            await parsing.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        async Task<Position> ImportBatchesAsync()
        {
            // Two batches are written at once, each in its own transaction, so the database works on both cores; each
            // records its position only after the batch before it committed (see WriteBatchAsync).
            var committed = Task.FromResult(at);
            var inFlight = new Queue<Task<Position>>();
            var lane = 0;
            var previousIds = new HashSet<(string, string)>();
            try
            {
                while (true)
                {
                    var parsed = await parsing;
                    if (parsed.Length == 0)
                    {
                        while (inFlight.Count > 0)
                        {
                            at = await inFlight.Dequeue();
                            progress?.Invoke(at.Progress);
                        }

                        return at;
                    }

                    parsing = ReadAndParseAsync(lines, input.Type, ct);

                    // The same id twice in one batch would collide in the bulk insert: the second starts a new batch,
                    // where it finds the first and becomes its next version.
                    var start = 0;
                    var ids = new HashSet<(string, string)>();
                    for (var i = 0; i <= parsed.Length; i++)
                    {
                        if (i < parsed.Length && (parsed[i].Resource is not { } resource || ids.Add((resource.TypeName, resource.Id!))))
                        {
                            continue;
                        }

                        // A batch naming a resource the batch before it writes waits for that one to commit: written
                        // side by side, each could wait on the other's row in the database while this process waits
                        // on the first's commit.
                        var slice = parsed[start..i];
                        var sliceIds = slice.Where(p => p.Resource is not null).Select(p => (p.Resource!.TypeName, p.Resource.Id!)).ToHashSet();
                        var previous = committed;
                        committed = CommitAsync(jobId, lane++ % 2, previous, sliceIds.Overlaps(previousIds), slice, ct);
                        previousIds = sliceIds;
                        inFlight.Enqueue(committed);
                        if (inFlight.Count == 2)
                        {
                            at = await inFlight.Dequeue();
                            progress?.Invoke(at.Progress);
                        }

                        start = i;
                        ids.Clear();
                        if (i < parsed.Length)
                        {
                            ids.Add((parsed[i].Resource!.TypeName, parsed[i].Resource!.Id!));
                        }
                    }
                }
            }
            finally
            {
                // Whatever happens, no batch is still writing when the input is closed.
                foreach (var task in inFlight)
                {
                    await task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
            }
        }
    }

    private Task<Parsed[]> ReadAndParseAsync(NdjsonLines lines, string? declaredType, CancellationToken ct) => Task.Run(async () =>
    {
        var batch = await lines.ReadAsync(Math.Max(1, options.BatchSize), ct);
        var parsed = new Parsed[batch.Count];
        Parallel.For(0, batch.Count, new ParallelOptions { CancellationToken = ct }, i => parsed[i] = Parse(batch[i], declaredType));
        return parsed;
    }, ct);

    private Parsed Parse(RawLine line, string? declaredType)
    {
        if (line.Bytes.AsSpan().Trim(" \t"u8).IsEmpty)
        {
            return new Parsed(line, null, null);
        }

        try
        {
            var resource = serializers.ParseJson(line.Bytes);
            if (declaredType is not null && resource.TypeName != declaredType)
            {
                return new Parsed(line, null, $"The line is a {resource.TypeName}, but the input is declared as {declaredType}.");
            }

            if (string.IsNullOrEmpty(resource.Id))
            {
                resource.Id = VersionWriter.NewId();
            }

            ResourceTypes.EnsureValidId(resource.Id);
            return new Parsed(line, resource, null);
        }
        catch (FhirException e)
        {
            return new Parsed(line, null, Message(e));
        }
    }

    /// <param name="lane">Which of the two batches in flight: two runners of one job (two hub instances) writing the
    /// same batch take the same lock, and the progress check stops the late one.</param>
    /// <param name="previous">The commit of the batch before; this one records its position after it.</param>
    /// <param name="afterPrevious">Start only once the batch before has committed (they share a resource).</param>
    private async Task<Position> CommitAsync(string jobId, int lane, Task<Position> previous, bool afterPrevious, Parsed[] batch, CancellationToken ct)
    {
        if (afterPrevious)
        {
            await previous;
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await store.RunAsync(session => WriteBatchAsync(session, jobId, lane, previous, batch, ct), ct);
            }
            catch (DbException e) when (e.SqlState == "23505" && attempt < 3)
            {
                // A resource of the batch was created by someone else (or the batch before) since the lookup: look again.
            }
        }
    }

    private async Task<Position> WriteBatchAsync(IWriteSession session, string jobId, int lane, Task<Position> previous, Parsed[] batch, CancellationToken ct)
    {
        await session.LockAsync($"import:{jobId}:{lane}", ct);
        var errors = batch.Where(p => p.Error is not null).Select(p => (p.Line.Number, Message: p.Error!)).ToList();
        var counts = new Dictionary<string, long>();
        var fresh = new List<Resource>();
        foreach (var type in batch.Where(p => p.Resource is not null).GroupBy(p => p.Resource!.TypeName))
        {
            var existing = await session.ExistingIdsAsync(type.Key, type.Select(p => p.Resource!.Id!).ToList(), ct);
            foreach (var item in type)
            {
                var resource = item.Resource!;
                var id = resource.Id!;
                try
                {
                    if (existing.Contains(id))
                    {
                        await session.LockAsync(VersionWriter.IdLock(type.Key, id), ct);
                        var current = await session.ReadCurrentAsync(type.Key, id, ct);
                        await writer.SaveAsync(session, resource, id, current, "PUT", ct);
                    }
                    else
                    {
                        await writer.CheckRulesAsync(session, resource, null, ct);
                        fresh.Add(resource);
                    }

                    counts[type.Key] = counts.GetValueOrDefault(type.Key) + 1;
                }
                catch (FhirException e)
                {
                    errors.Add((item.Line.Number, Message(e)));
                }
            }
        }

        // Stamped, serialised and indexed after the rules, which may change a resource (the recognition tag, say),
        // on every core while the database waits.
        var load = new BulkResource[fresh.Count];
        Parallel.For(0, fresh.Count, new ParallelOptions { CancellationToken = ct }, i =>
        {
            var (row, index) = writer.Prepare(fresh[i], fresh[i].Id!, 1, "PUT");
            load[i] = new BulkResource(row, index);
        });
        await writer.LoadAsync(session, load, fresh, ct);

        // The position goes after the previous batch's: a batch whose predecessor failed fails too, and the job
        // continues from the last batch that committed.
        var position = await previous;
        var at = position.Progress;
        foreach (var (type, count) in at.Counts)
        {
            counts[type] = counts.GetValueOrDefault(type) + count;
        }

        var last = batch[^1].Line;
        var after = new ImportProgress(at.Input, last.Number, last.EndOffset, counts, at.Errors + errors.Count);
        var stored = Serialize(after);
        return await session.SaveImportProgressAsync(jobId, position.Stored, stored, errors.Select(e => new ImportLineError(at.Input, e.Number, e.Message)).ToList(), ct)
            ? new Position(after, stored)
            : throw new JobMovedOnException();
    }

    private const string Setting = "InteropHub:Import:AllowedUrls";

    private static string[] Allowed(ImportOptions options) => OutboundUrls.Allowed(options.AllowedUrls);

    private async Task<Stream> OpenAsync(ImportInput input, long offset, CancellationToken ct)
    {
        if (input.Url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || input.Url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (Allowed(options).Length == 0 && (await System.Net.Dns.GetHostAddressesAsync(new Uri(input.Url).DnsSafeHost, ct)).Any(OutboundUrls.IsInternal))
            {
                throw new HttpRequestException($"{new Uri(input.Url).Host} resolves to a loopback or link-local address; list its URL in {Setting} to import from it.");
            }

            var response = await _http.GetAsync(input.Url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                response.Dispose();
                throw new HttpRequestException($"GET answered {(int)response.StatusCode} {response.ReasonPhrase}.");
            }

            return await response.Content.ReadAsStreamAsync(ct);
        }

        var file = new FileStream(input.Url, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        file.Seek(offset, SeekOrigin.Begin);
        return file;
    }

    private void Launch(string id)
    {
        var running = new Running(new CancellationTokenSource());
        if (!_running.TryAdd(id, running))
        {
            return;
        }

        running.Task = Task.Run(async () =>
        {
            // Not the caller of the request that launched it (a restart resumes jobs too): RunAsync takes the job's own.
            CallerContext.Organization = null;
            CallerContext.OverHttp = false;
            try
            {
                await RunAsync(id, null, running.Cancel.Token);
            }
            catch (OperationCanceledException) when (running.Cancel.IsCancellationRequested)
            {
                // Deleted, or the hub is stopping: the job stays unfinished and the next start continues it.
            }
            catch (Exception e)
            {
                // Nothing may escape a background task; the job stays unfinished and is retried at the next start.
                logger.LogError(e, "Import job {Job} stopped; it continues at the next start.", id);
            }
            finally
            {
                _running.TryRemove(id, out _);
            }
        }, CancellationToken.None);
    }

    private static string Message(FhirException e) =>
        string.Join(" ", e.Outcome.Issue.Select(i => i.Diagnostics).Where(d => !string.IsNullOrEmpty(d)).DefaultIfEmpty(e.Message));

    private static ImportStatus ToStatus(ImportJobRow row) => new(row.Id, row.State, JsonSerializer.Deserialize<ImportRequest>(row.Request, Json)!,
        JsonSerializer.Deserialize<ImportProgress>(row.Progress, Json)!, row.Error, row.Created);

    private static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Json);

    private static bool IsJobId(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigitLower);

    /// <summary>The progress and the exact text stored for it (the compare-and-set value of the next batch).</summary>
    private sealed record Position(ImportProgress Progress, string Stored);

    /// <summary>The job's stored progress is not the one this runner started its batch from, or the job was ended.</summary>
    private sealed class JobMovedOnException : Exception;

    private sealed record Parsed(RawLine Line, Resource? Resource, string? Error);

    private sealed class Running(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Task { get; set; } = Task.CompletedTask;
    }
}
