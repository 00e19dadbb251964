using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.Search.Custom;

/// <summary>
/// Keeps the custom search parameters in step with the SearchParameter resources stored in the hub, and re-indexes
/// the stored resources when one is added or changed.
/// <list type="bullet">
/// <item>A SearchParameter being written is validated (422 when the hub cannot index it) and registered at once, so
/// every resource written from then on is indexed for it; until the re-index of the resources stored before has
/// finished, a search by it is a 400 that says so (a search that silently missed those resources would be worse).</item>
/// <item><see cref="ReconcileAsync"/> derives the registry from what is committed: stored definitions are registered,
/// searchable when a finished job exists for their exact definition, else a job is started; parameters whose
/// resource is gone (deleted, or its write rolled back) are removed.</item>
/// <item><see cref="RunAsync"/> runs the jobs batch by batch (each batch saves its cursor with its index rows, so a
/// restart resumes), reconciling after each job and every few seconds, which is also how other hub instances'
/// changes arrive.</item>
/// </list>
/// </summary>
public sealed class SearchParameterCatalog(
    SearchParameterRegistry registry,
    IResourceStore store,
    IReindexStore jobs,
    SearchIndexer indexer,
    FhirSerializers serializers,
    ILogger<SearchParameterCatalog> logger) : IWriteRule, IDisposable
{
    /// <summary>The job reason of a re-index asked for by hand (<c>POST [base]/$reindex</c>).</summary>
    public const string ManualReason = "manual";

    private const int BatchSize = 500;

    private readonly SemaphoreSlim _signal = new(0);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _writing = new(StringComparer.Ordinal);

    public SearchParameterRegistry Registry => registry;

    /// <summary>How often the worker looks for work it was not told about (other instances' changes).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A write rule: a SearchParameter about to be written is validated and registered, not yet searchable.</summary>
    public Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        if (next is SearchParameter parameter)
        {
            Writing(parameter);
        }

        return Task.CompletedTask;
    }

    /// <summary>Whether the hub can index the parameter (422 when not), without registering it.</summary>
    public Task ValidateAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        if (next is SearchParameter parameter)
        {
            CustomSearchParameter.From(parameter);
        }

        return Task.CompletedTask;
    }

    /// <summary>Validates a SearchParameter about to be written (422 when the hub cannot index it) and registers it, not yet searchable.</summary>
    public void Writing(SearchParameter resource)
    {
        var custom = CustomSearchParameter.From(resource);
        registry.Add(custom.Bases, custom.Param);
        registry.MarkPending(custom.Param.Url, PendingReason(null));
        _writing[custom.Param.Url] = Environment.TickCount64;

        // The write commits after this returns: look again shortly, when it is there to be seen.
        _ = Task.Delay(TimeSpan.FromMilliseconds(300)).ContinueWith(_ => Signal(), TaskScheduler.Default);
    }

    /// <summary>Wakes the worker (a SearchParameter was deleted, a job was started).</summary>
    public void Signal()
    {
        if (_signal.CurrentCount == 0)
        {
            _signal.Release();
        }
    }

    /// <summary>Starts a re-index of every live resource of the types (all types when none), e.g. after an upgrade.</summary>
    public async Task<ReindexJob> StartAsync(IReadOnlyList<string> resourceTypes, CancellationToken ct)
    {
        var job = await jobs.StartReindexAsync(ManualReason, resourceTypes, ct);
        Signal();
        return job;
    }

    public async Task ReconcileAsync(CancellationToken ct)
    {
        var all = await jobs.ReadReindexJobsAsync(ct);
        if (!all.Any(j => j.Reason == SearchIndexer.Revision))
        {
            // The rows a hub older than this extraction wrote are extracted again, once (over nothing, in a new database).
            var upgrade = await jobs.StartReindexAsync(SearchIndexer.Revision, [], ct);
            if (upgrade.Total > 0)
            {
                logger.LogInformation("The search index is extracted differently since {Revision}: re-index job {Job} of {Total} resources started.",
                    SearchIndexer.Revision, upgrade.Id, upgrade.Total);
            }
        }
        var stored = new Dictionary<string, CustomSearchParameter>(StringComparer.Ordinal);
        foreach (var resource in await StoredAsync(ct))
        {
            try
            {
                var custom = CustomSearchParameter.From(resource);
                stored[custom.Param.Url] = custom;
            }
            catch (Errors.FhirException e)
            {
                logger.LogWarning("SearchParameter/{Id} is stored but cannot be indexed, so it is not used: {Problem}", resource.Id,
                    e.Outcome.Issue.FirstOrDefault()?.Diagnostics);
            }
        }

        // A parameter whose resource is not stored is removed, unless its write may still be about to commit.
        foreach (var url in registry.Custom.Keys.Where(url => !stored.ContainsKey(url)).ToList())
        {
            if (!_writing.TryGetValue(url, out var at) || Environment.TickCount64 - at > 60_000)
            {
                registry.Remove(url);
                _writing.TryRemove(url, out _);
            }
        }

        foreach (var custom in stored.Values)
        {
            var known = registry.Custom.GetValueOrDefault(custom.Param.Url);
            if (known != custom.Param)
            {
                registry.Add(custom.Bases, custom.Param);
            }

            var latest = all.FirstOrDefault(j => j.Reason == custom.DefinitionKey);
            var manual = all.FirstOrDefault(j => j.Reason == ManualReason && j.Status == ReindexStatus.Done && j.Id > (latest?.Id ?? long.MaxValue)
                && (j.ResourceTypes.Count == 0 || custom.Bases.All(j.ResourceTypes.Contains)));
            if (latest is { Status: ReindexStatus.Done } || manual is not null)
            {
                registry.MarkSearchable(custom.Param.Url);
                continue;
            }

            if (latest is null)
            {
                latest = await jobs.StartReindexAsync(custom.DefinitionKey, custom.Bases, ct);
                logger.LogInformation("Search parameter {Url} added or changed: re-index job {Job} of {Total} {Types} resources started.",
                    custom.Param.Url, latest.Id, latest.Total, string.Join(", ", custom.Bases));
            }

            registry.MarkPending(custom.Param.Url, PendingReason(latest));
        }
    }

    /// <summary>The worker: runs every unfinished job to its end, reconciling after each, until stopped.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ReconcileAsync(ct);
                foreach (var job in (await jobs.ReadReindexJobsAsync(ct)).Where(j => j.Status == ReindexStatus.Running).OrderBy(j => j.Id))
                {
                    await RunJobAsync(job, ct);
                    await ReconcileAsync(ct);
                }

                await _signal.WaitAsync(PollInterval, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The database may be away for a moment; the jobs are durable, so try again later.
                logger.LogError(e, "Re-indexing stopped by an error; retrying in {Interval}.", PollInterval);
                await Task.Delay(PollInterval, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task RunJobAsync(ReindexJob job, CancellationToken ct)
    {
        while (job.Status == ReindexStatus.Running)
        {
            try
            {
                job = await jobs.ReindexBatchAsync(job.Id, BatchSize, stored => indexer.Extract(serializers.ParseStored(stored.Json)), ct);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
            {
                // A resource that cannot be indexed would stop the job at the same place on every retry.
                await jobs.FailReindexAsync(job.Id, e.Message, ct);
                logger.LogError(e, "Re-index job {Job} failed after {Done} resources.", job.Id, job.Done);
                return;
            }

            foreach (var custom in registry.Custom.Values.Where(p => registry.Pending(p) is not null))
            {
                registry.MarkPending(custom.Url, PendingReason(job));
            }
        }

        logger.LogInformation("Re-index job {Job} ({Reason}) finished: {Done} resources.", job.Id, job.Reason, job.Done);
    }

    private async Task<List<SearchParameter>> StoredAsync(CancellationToken ct)
    {
        var all = new List<SearchParameter>();
        var criteria = new SearchCriteria(["SearchParameter"], [], [], []);
        long? after = null;
        while (true)
        {
            var page = await store.FindAsync("SearchParameter", criteria, after, 200, ct);
            foreach (var resource in await store.ReadManyAsync("SearchParameter", page.Select(m => m.Id).ToList(), ct))
            {
                if (serializers.ParseStored(resource.Json) is SearchParameter parameter)
                {
                    all.Add(parameter);
                }
            }

            if (page.Count < 200)
            {
                return all;
            }

            after = page[^1].Rid;
        }
    }

    public void Dispose() => _signal.Dispose();

    private static string PendingReason(ReindexJob? job) => job is null
        ? "it was added or changed, and the resources stored before are about to be re-indexed for it (GET [base]/$reindex shows progress)."
        : job.Status == ReindexStatus.Failed
            ? $"re-index job {job.Id} failed ({job.Error}); POST [base]/$reindex to re-index again."
            : $"it was added or changed, and re-index job {job.Id} is indexing the resources stored before ({job.Done} of {job.Total} done; GET [base]/$reindex shows progress).";
}
