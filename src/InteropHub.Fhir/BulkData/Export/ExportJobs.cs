using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.BulkData.Export;

/// <summary><c>InteropHub:Export</c>.</summary>
public sealed class ExportOptions
{
    /// <summary>Where export jobs write their NDJSON files and state.</summary>
    public string Folder { get; set; } = "data/exports";
}

/// <summary>What an export covers: every resource, the patients and their compartments, or a group's patients and theirs.</summary>
public enum ExportLevel
{
    System,
    Patient,
    Group,
}

/// <param name="Types">Resource types to export; empty means every type (Patient and Group level: every type of the patient compartment).</param>
/// <param name="Since">Only resources changed at or after this instant (<c>_since</c>).</param>
/// <param name="RequestUrl">The kick-off URL, echoed in the manifest.</param>
/// <param name="TypeFilters"><c>_typeFilter</c> values (<c>Type?search</c>): a type with filters exports what matches any of them.</param>
/// <param name="Patients">The <c>patient</c> parameter (Patient and Group level): only these patients' compartments.</param>
/// <param name="Elements">The <c>_elements</c> values, <c>Type.element</c> or <c>element</c> (every type that has it).</param>
public sealed record ExportRequest(IReadOnlyList<string> Types, DateTimeOffset? Since, string RequestUrl,
    ExportLevel Level = ExportLevel.System, string? GroupId = null, IReadOnlyList<string>? TypeFilters = null,
    IReadOnlyList<string>? Patients = null, IReadOnlyList<string>? Elements = null);

public enum ExportState
{
    InProgress,
    Completed,
    Failed,
}

/// <summary>The state of one export job, kept as <c>job.json</c> in its folder so it outlives a restart.</summary>
/// <param name="Deleted">With <c>_since</c>, the files of transaction Bundles that delete what was deleted since (the manifest's <c>deleted</c>).</param>
public sealed record ExportJob(
    string Id,
    ExportState State,
    ExportRequest Request,
    DateTimeOffset TransactionTime,
    long Exported,
    string? CurrentType,
    IReadOnlyList<ExportFile> Output,
    string? Error,
    IReadOnlyList<ExportFile>? Deleted = null);

public sealed record ExportFile(string Type, string FileName, long Count);

/// <summary>
/// Bulk Data export (FHIR Bulk Data Access IG): a background job per kick-off streams the stored bytes of every
/// matching resource into one NDJSON file per type, never building a POCO of an exported resource, so memory stays
/// bounded by a page of rows whatever the export's size. A system export without <c>_typeFilter</c> scans each type;
/// a Patient or Group export, or a filtered type, pages through the search index in row-id order (the patient
/// compartment: resources whose reference parameters that may point to a Patient point to one of the patients).
/// The transaction time is fixed at kick-off and a type's scan is the data as it was then: a resource changed or deleted
/// after it is written in the version current at it (its change waits for the next export, with <c>_since</c>). A
/// filtered or compartment export finds resources by their current index rows, so it leaves out a resource changed
/// after the transaction time (whether its earlier version matched is not known); the next export has it.
/// With <c>_elements</c>, a type it names is parsed and written with those elements, its mandatory ones and meta,
/// tagged SUBSETTED; the other types are still written as stored.
/// With <c>_since</c>, the resources of each exported type deleted since then, and still deleted at the transaction
/// time, are written as transaction Bundles of a DELETE each (export.html, "deleted"); at Patient and Group level only
/// those whose last version was in the export's compartments, told by that version's references.
/// </summary>
public sealed class ExportJobs(IResourceScanner scanner, IResourceStore store, SearchParser parser, Search.Terminology.LocalTerminology terminology,
    Serialization.FhirSerializers serializers, ExportOptions options, TimeProvider clock, Search.Indexing.SearchIndexer indexer)
    : IDisposable
{

    /// <summary>Group members per query: a query names them all as OR-ed values.</summary>
    private const int MembersPerQuery = 500;

    private const int PageSize = 1000;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        Encoder = Serialization.FhirSerializers.Encoder,
    };

    private static readonly byte[] NewLine = "\n"u8.ToArray();

    private readonly ConcurrentDictionary<string, Running> _running = new();

    public string Folder => Path.GetFullPath(options.Folder);

    /// <summary>The types of the patient compartment: Patient and every type with a reference parameter that may point to a Patient.</summary>
    public IReadOnlyList<string> CompartmentTypes => ResourceTypes.All
        .Where(t => t == "Patient" || LinksToPatients(t)).OrderBy(t => t, StringComparer.Ordinal).ToList();

    public async Task<ExportJob> StartAsync(ExportRequest request, CancellationToken ct)
    {
        foreach (var type in request.Types)
        {
            if (!ResourceTypes.IsKnown(type))
            {
                throw new InvalidInputException($"_type '{type}' is not a resource type.", "_type");
            }

            if (request.Level != ExportLevel.System && !CompartmentTypes.Contains(type))
            {
                throw new InvalidInputException($"_type '{type}' cannot be in a patient's compartment, so a {request.Level}-level export has none.", "_type");
            }
        }

        await ParseFiltersAsync(request, ct);
        CheckElements(request);
        var members = request.Level == ExportLevel.Group ? await GroupMembersAsync(request.GroupId!, ct) : null;
        await CheckPatientsAsync(request, members, ct);

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
        var file = job.Output.Concat(job.Deleted ?? []).FirstOrDefault(f => f.FileName == fileName)
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
            var request = job.Request;
            var types = request.Types.Count > 0 ? request.Types : request.Level == ExportLevel.System ? ResourceTypes.All : CompartmentTypes;
            var filters = await ParseFiltersAsync(request, ct);
            var members = request.Patients ?? (request.Level == ExportLevel.Group ? await GroupMembersAsync(request.GroupId!, ct) : null);
            var output = new List<ExportFile>();
            var deleted = request.Since is null ? null : new List<ExportFile>();
            long exported = 0;
            void Written(string type)
            {
                if (++exported % 10_000 == 0)
                {
                    Save(job with { Exported = exported, CurrentType = type, Output = output, Deleted = deleted });
                }
            }

            foreach (var type in types)
            {
                var elements = ElementsOf(type, request.Elements);
                var resources = request.Level == ExportLevel.System && !filters.ContainsKey(type)
                    ? scanner.ScanAsync(type, request.Since, job.TransactionTime, ct)
                    : SearchAsync(type, filters.GetValueOrDefault(type), request.Level, members, request.Since, job.TransactionTime, ct);
                if (await WriteAsync(job.Id, type, $"{type}.ndjson", resources, r => elements is null ? r.Json : Subset(r.Json, elements), Written, ct) is { } file)
                {
                    output.Add(file);
                }

                if (request.Since is { } since && await WriteAsync(job.Id, "Bundle", $"{type}.deleted.ndjson",
                        DeletedAsync(type, since, job.TransactionTime, request.Level, members, ct), Deletion, _ => { }, ct) is { } gone)
                {
                    deleted!.Add(gone);
                }

                Save(job with { Exported = exported, CurrentType = type, Output = output, Deleted = deleted });
            }

            Save(job with { State = ExportState.Completed, Exported = exported, CurrentType = null, Output = output, Deleted = deleted });
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

    /// <summary>Writes a line per resource to a file of the job, counted by <paramref name="written"/>; none, no file.</summary>
    private async Task<ExportFile?> WriteAsync(string jobId, string type, string fileName, IAsyncEnumerable<StoredResource> resources,
        Func<StoredResource, byte[]> line, Action<string> written, CancellationToken ct)
    {
        var path = Path.Combine(JobFolder(jobId), fileName);
        long count = 0;
        await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16, useAsync: true))
        {
            await foreach (var resource in resources)
            {
                await file.WriteAsync(line(resource), ct);
                await file.WriteAsync(NewLine, ct);
                count++;
                written(resource.ResourceType);
            }
        }

        if (count == 0)
        {
            File.Delete(path);
            return null;
        }

        return new ExportFile(type, fileName, count);
    }

    /// <summary>
    /// The resources of a type deleted since <paramref name="since"/> and still deleted at the transaction time, as their
    /// last versions; at Patient and Group level only those that were in the export's compartments then: the export's
    /// patients (any Patient at Patient level without <c>patient</c>), and the resources whose last version referred to
    /// one through a parameter that may point to a Patient. A deletion leaves no index rows, so that version's are
    /// extracted again; a filter (<c>_typeFilter</c>) is not evaluated on it: a deleted resource of a filtered type is
    /// listed whether or not it matched, which costs a client that never had it nothing.
    /// </summary>
    private async IAsyncEnumerable<StoredResource> DeletedAsync(string type, DateTimeOffset since, DateTimeOffset until, ExportLevel level,
        IReadOnlyList<string>? members, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var patients = members?.ToHashSet(StringComparer.Ordinal);
        var registry = indexer.Registry;
        // A parameter that narrows another to Patients (Encounter's patient is subject's Patients) has its local references in the other's rows.
        var links = Compartments.Links(type, "Patient", [], registry).Select(link => registry.For(type)[link.Param])
            .SelectMany(param => param.SubsetOf is { } wider ? [param.Name, wider.Param] : new[] { param.Name }).ToHashSet(StringComparer.Ordinal);
        await foreach (var last in scanner.ScanDeletedAsync(type, since, until, ct))
        {
            var inScope = level == ExportLevel.System
                || (type == "Patient"
                    ? patients?.Contains(last.Id) ?? true
                    : indexer.Extract(serializers.ParseStored(last.Json)).References
                        .Any(r => r.TargetType == "Patient" && links.Contains(r.Param) && (patients?.Contains(r.TargetId) ?? r.TargetId.Length > 0)));
            if (inScope)
            {
                yield return last;
            }
        }
    }

    /// <summary>
    /// A line of the manifest's <c>deleted</c> files (export.html): a transaction Bundle whose entry deletes the resource.
    /// Resource types are letters and ids are FHIR ids (letters, digits, '-' and '.'), so nothing needs escaping.
    /// </summary>
    private static byte[] Deletion(StoredResource last) => System.Text.Encoding.UTF8.GetBytes(
        $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"{{{last.ResourceType}}}/{{{last.Id}}}"}}]}""");

    /// <summary>
    /// The live resources of a type matching any of its filters (none: all of them), restricted to the patient
    /// compartment at Patient level and to the members' compartments at Group level, in row-id pages.
    /// </summary>
    private async IAsyncEnumerable<StoredResource> SearchAsync(string type, IReadOnlyList<SearchCriteria>? filters, ExportLevel level, IReadOnlyList<string>? members,
        DateTimeOffset? since, DateTimeOffset until, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        filters ??= [parser.ParseCriteria(type, [])];
        List<Criterion?> scopes = level switch
        {
            ExportLevel.System => [null],
            ExportLevel.Patient when members is null => [type == "Patient" ? null : AnyPatient(type)],
            _ => members!.Chunk(MembersPerQuery).Select(chunk => (Criterion?)Members(type, chunk)).ToList(),
        };

        // A resource may match several filters or reference patients of several chunks: it is written once.
        var seen = filters.Count * scopes.Count > 1 ? new HashSet<long>() : null;
        foreach (var scope in scopes)
        {
            foreach (var filter in filters)
            {
                var criteria = scope is null ? filter : new SearchCriteria(filter.ResourceTypes, [scope, .. filter.Criteria], filter.Applied, filter.Ignored);
                SearchCursor? after = null;
                while (true)
                {
                    var page = await store.FindAsync(criteria, [], after, PageSize, ct);
                    if (page.Count == 0)
                    {
                        break;
                    }

                    after = new SearchCursor([], page[^1].Rid);
                    var ids = page.Where(m => seen?.Add(m.Rid) ?? true).Select(m => m.Id).ToList();
                    foreach (var resource in await store.ReadManyAsync(type, ids, ct))
                    {
                        // A resource changed since the transaction time is left out here: its index rows are the new
                        // version's, so whether its version of then matched the filter or compartment is not known.
                        if (resource.LastUpdated < until && (since is null || resource.LastUpdated >= since))
                        {
                            yield return resource;
                        }
                    }
                }
            }
        }
    }

    private bool LinksToPatients(string type) => Compartments.Links(type, "Patient", [], parser.Registry).Count > 0;

    /// <summary>In some patient's compartment.</summary>
    private AnyCriterion AnyPatient(string type) => new(Compartments.Links(type, "Patient", [new ReferenceCondition("Patient", null, null)], parser.Registry));

    /// <summary>One of the patients, or in the compartment of one of them.</summary>
    private Criterion Members(string type, IReadOnlyList<string> patients) => type == "Patient"
        ? new IdCriterion(patients)
        : new AnyCriterion(Compartments.Links(type, "Patient", patients.Select(id => new ReferenceCondition("Patient", id, null)).ToList(), parser.Registry));

    /// <summary>
    /// The <c>patient</c> parameter (Bulk Data export.html): not at system level; each a live Patient, and at Group
    /// level a member of the group, else the kick-off is refused with a 400 naming it.
    /// </summary>
    private async Task CheckPatientsAsync(ExportRequest request, IReadOnlyList<string>? members, CancellationToken ct)
    {
        if (request.Patients is not { } patients)
        {
            return;
        }

        if (request.Level == ExportLevel.System)
        {
            throw new InvalidInputException("The patient parameter applies to Patient and Group level exports, not to a system export.", "patient");
        }

        foreach (var id in patients)
        {
            if (await store.ReadAsync("Patient", id, ct) is not { IsDeleted: false })
            {
                throw new InvalidInputException($"patient 'Patient/{id}' is not known.", "patient");
            }

            if (members is not null && !members.Contains(id, StringComparer.Ordinal))
            {
                throw new InvalidInputException($"patient 'Patient/{id}' is not a member of Group/{request.GroupId}.", "patient");
            }
        }
    }

    /// <summary>
    /// The ids of the Patients a Group lists as members now: not <c>inactive</c>, and within <c>member.period</c> when it
    /// has one (a member whose period ended, or has not begun, belongs to the group at another time).
    /// </summary>
    private async Task<IReadOnlyList<string>> GroupMembersAsync(string groupId, CancellationToken ct)
    {
        var stored = await store.ReadAsync("Group", groupId, ct) ?? throw new ResourceNotFoundException($"Group/{groupId} is not known.");
        if (stored.IsDeleted)
        {
            throw new ResourceGoneException($"Group/{groupId} was deleted.");
        }

        var group = (Group)serializers.ParseStored(stored.Json);
        var now = clock.GetUtcNow();
        return group.Member.Where(m => m.Inactive != true && Current(m.Period, now)).Select(m => m.Entity?.Reference)
            .Where(r => r is not null && r.StartsWith("Patient/", StringComparison.Ordinal)).Select(r => r!["Patient/".Length..])
            .Distinct(StringComparer.Ordinal).ToList();
    }

    private static bool Current(Period? period, DateTimeOffset now) =>
        period is null
        || (period.StartElement is not { } start || start.ToDateTimeOffset(TimeSpan.FromHours(8)) <= now)
        && (period.EndElement is not { } end || EndOf(end) > now);

    /// <summary>The first instant after a period's end given to the day, month or year (or the instant itself).</summary>
    private static DateTimeOffset EndOf(FhirDateTime end)
    {
        var at = end.ToDateTimeOffset(TimeSpan.FromHours(8));
        return end.Value?.Length switch
        {
            4 => at.AddYears(1),
            7 => at.AddMonths(1),
            10 => at.AddDays(1),
            _ => at,
        };
    }

    /// <summary>
    /// <c>_typeFilter</c>: each value is <c>Type?search</c>, parsed by the hub's search parser (criteria only: no
    /// result parameters) with its terminology modifiers (<c>:in</c>, <c>:below</c>, …) expanded from what is stored
    /// here; a type that is not exported, or a parameter the hub cannot answer, is a 400 naming it at kick-off.
    /// </summary>
    private async Task<Dictionary<string, IReadOnlyList<SearchCriteria>>> ParseFiltersAsync(ExportRequest request, CancellationToken ct)
    {
        var filters = new Dictionary<string, List<SearchCriteria>>(StringComparer.Ordinal);
        foreach (var filter in request.TypeFilters ?? [])
        {
            var mark = filter.IndexOf('?', StringComparison.Ordinal);
            var type = mark > 0 ? filter[..mark] : "";
            if (!ResourceTypes.IsKnown(type))
            {
                throw new InvalidInputException($"_typeFilter '{filter}' must start with a resource type and '?', e.g. Observation?code=8867-4.", "_typeFilter");
            }

            if (request.Types.Count > 0 && !request.Types.Contains(type))
            {
                throw new InvalidInputException($"_typeFilter '{filter}' is for {type}, which _type does not export.", "_typeFilter");
            }

            if (request.Level != ExportLevel.System && !CompartmentTypes.Contains(type))
            {
                throw new InvalidInputException($"_typeFilter '{filter}' is for {type}, which cannot be in a patient's compartment.", "_typeFilter");
            }

            try
            {
                var query = parser.ParseQuery([type], SearchParser.SplitQueryString(type, filter), lenient: false);
                var result = query.ResultParameters.Select(p => p.Key).FirstOrDefault();
                if (result is not null)
                {
                    throw new InvalidInputException($"{result} is not a search criterion.");
                }

                if (!filters.TryGetValue(type, out var list))
                {
                    filters[type] = list = [];
                }

                list.Add(await terminology.ExpandAsync(query.Criteria, ct));
            }
            catch (InvalidInputException e)
            {
                throw new InvalidInputException($"_typeFilter '{filter}' is not supported: {e.Message}", "_typeFilter");
            }
        }

        return filters.ToDictionary(f => f.Key, f => (IReadOnlyList<SearchCriteria>)f.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// <c>_elements</c> (export.html): each value is <c>Type.element</c> or a bare element of the root (no paths); a type
    /// that does not exist, or an element that no exported type has, is a 400 at kick-off rather than an export that
    /// silently leaves it out.
    /// </summary>
    private void CheckElements(ExportRequest request)
    {
        var exported = request.Types.Count > 0 ? request.Types : request.Level == ExportLevel.System ? ResourceTypes.All : CompartmentTypes;
        foreach (var value in request.Elements ?? [])
        {
            var dot = value.IndexOf('.', StringComparison.Ordinal);
            var (type, element) = dot < 0 ? (null, value) : (value[..dot], value[(dot + 1)..]);
            if (type is not null && !ResourceTypes.IsKnown(type))
            {
                throw new InvalidInputException($"_elements '{value}': '{type}' is not a resource type.", "_elements");
            }

            if (element.Length == 0 || element.Contains('.', StringComparison.Ordinal))
            {
                throw new InvalidInputException($"_elements '{value}' must be Type.element or element, an element of the resource's root (e.g. Patient.name, id).", "_elements");
            }

            if (!(type is null ? exported : [type]).Any(t => HasElement(t, element)))
            {
                throw new InvalidInputException(type is null
                    ? $"_elements '{value}': no exported resource type has an element '{element}'."
                    : $"_elements '{value}': {type} has no element '{element}'.", "_elements");
            }
        }
    }

    /// <summary>The elements to keep of a type's resources, or null to write them whole.</summary>
    private static string[]? ElementsOf(string type, IReadOnlyList<string>? elements)
    {
        var names = (elements ?? []).Select(e => e.StartsWith(type + ".", StringComparison.Ordinal) ? e[(type.Length + 1)..] : e.Contains('.', StringComparison.Ordinal) ? null : e)
            .OfType<string>().Where(e => HasElement(type, e)).ToList();
        return names.Count == 0 ? null : [.. names, "id", "meta"];
    }

    private static bool HasElement(string type, string element) =>
        ModelInfo.ModelInspector.FindClassMapping(type)?.FindMappedElementByName(element) is not null;

    /// <summary>The resource with only the elements (and its mandatory ones), tagged SUBSETTED by the SDK's filter.</summary>
    private byte[] Subset(byte[] json, string[] elements) =>
        serializers.ToJsonBytes(serializers.ParseStored(json), () => Hl7.Fhir.Serialization.SerializationFilter.ForElements(elements));

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
