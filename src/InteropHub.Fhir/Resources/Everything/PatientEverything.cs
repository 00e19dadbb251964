using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Everything;

/// <param name="Types">The <c>_type</c> list, comma-separated, or null for every type in the compartment.</param>
/// <param name="Start">The first day of care asked for (a date), or null.</param>
/// <param name="End">The last day of care asked for (a date), or null.</param>
public sealed record EverythingRequest(string PatientId, string? Since, string? Types, string? Count, string? Cursor, string? Start = null, string? End = null);

/// <summary>
/// <c>GET [base]/Patient/[id]/$everything</c> (patient-operation-everything.html): the patient and every resource in
/// its compartment (see <see cref="Compartments"/>), and the resources the record refers to outside it ("whatever
/// resources are needed to support the records": organisations, practitioners, locations, medications), keyset-paged
/// with <c>_count</c> in four parts: the patient, the patients linked to it, every other type of the compartment
/// together in the order they were created, then what they refer to; <c>_since</c> keeps what
/// changed at or after an instant, <c>_type</c> limits the types, <c>start</c>/<c>end</c> keep the care given in a
/// date range (see <see cref="CareDate"/>). Each part is one search (the other types' links are
/// one union of index lookups, not a search per type), and the cursor is the part and the row id within it
/// (<c>part:rid</c>), so pages stay stable.
/// </summary>
public sealed class PatientEverything(IResourceStore store, SearchParser parser, HubOptions options)
{
    private readonly Lazy<IReadOnlyList<string>> _compartmentTypes = new(() =>
        ResourceTypes.All.Where(t => t == "Patient" || parser.Registry.For(t).Values.Any(p => p.Type == SearchParamType.Reference && p.Targets.Contains("Patient")))
            .OrderBy(t => t == "Patient" ? 0 : 1).ThenBy(t => t, StringComparer.Ordinal).ToList());

    public async Task<SearchPage> HandleAsync(EverythingRequest request, CancellationToken ct)
    {
        var patient = await store.ReadAsync("Patient", request.PatientId, ct) ?? throw new ResourceNotFoundException($"Patient/{request.PatientId} is not known.");
        if (patient.IsDeleted)
        {
            throw new ResourceGoneException($"Patient/{request.PatientId} was deleted.");
        }

        var filter = request.Since is { Length: > 0 } since ? new List<KeyValuePair<string, string>> { new("_lastUpdated", "ge" + since) } : [];
        var (start, end) = (Date("start", request.Start), Date("end", request.End));
        if (start is not null && end is not null && DateRange.TryParse(start, out var from) && DateRange.TryParse(end, out var to) && to.High <= from.Low)
        {
            // As $evaluate-measure refuses a reversed period: it would keep nothing dated and say nothing of why.
            throw new InvalidInputException($"The $everything parameter 'end' ({end}) is before 'start' ({start}).", "end");
        }

        var care = new[] { ("ge", start), ("le", end) }.Where(c => c.Item2 is not null).Select(c => c.Item1 + c.Item2).ToList();
        var parts = Parts(Types(request.Types), request.PatientId, filter, care);
        var count = Paging.Count(request.Count, options);
        var (partIndex, afterRid) = DecodeCursor(request.Cursor, parts.Count);
        var resources = new List<StoredResource>();
        string? next = null;
        long? total = null;
        if (count == 0)
        {
            // _count=0 asks for the number only (search.html#count): an empty page, without a next link, with the total.
            total = 0;
            foreach (var part in parts)
            {
                total += await store.CountAsync(part, ct);
            }
        }

        for (; count > 0 && partIndex < parts.Count && next is null; partIndex++, afterRid = null)
        {
            var matches = await store.FindAsync(parts[partIndex], [], afterRid is { } rid ? new SearchCursor([], rid) : null, count - resources.Count + 1, ct);
            var room = count - resources.Count;
            var page = matches.Take(room).ToList();
            resources.AddRange(await ReadInOrderAsync(page, ct));
            if (matches.Count > room)
            {
                next = $"{partIndex}:{page[^1].Rid.ToString(CultureInfo.InvariantCulture)}";
            }
            else if (resources.Count == count && partIndex + 1 < parts.Count)
            {
                next = $"{partIndex + 1}:0";
            }
        }

        var applied = new List<KeyValuePair<string, string>>();
        AddIf(applied, "_since", request.Since);
        AddIf(applied, "_type", request.Types);
        AddIf(applied, "_count", request.Count);
        AddIf(applied, "start", request.Start);
        AddIf(applied, "end", request.End);
        var self = request.Cursor is null ? applied : [.. applied, new(Paging.CursorParameter, request.Cursor)];
        // A first page that holds the whole record states how many resources it has, as a search does.
        return new SearchPage(resources, [], null, total ?? (request.Cursor is null && next is null ? resources.Count : null), SearchCursorText.Query(self),
            next is null ? null : SearchCursorText.Query([.. applied, new(Paging.CursorParameter, next)]));
    }

    /// <summary>The searches of the parts, in order: the patient, the patients linked to it, every other type.</summary>
    /// <param name="care">The care dates' search values (<c>ge</c> start, <c>le</c> end), or empty.</param>
    private List<SearchCriteria> Parts(List<string> types, string patientId, List<KeyValuePair<string, string>> filter, List<string> care)
    {
        var parts = new List<SearchCriteria>();
        if (types.Contains("Patient"))
        {
            var patients = parser.ParseQuery(["Patient"], filter, lenient: false).Criteria;
            parts.Add(patients.And(new IdCriterion([patientId])));
            var links = Compartments.Links("Patient", "Patient", [new ReferenceCondition("Patient", patientId, null)], parser.Registry);
            if (links.Count > 0)
            {
                parts.Add(patients.And(new IdCriterion([patientId], Negated: true)).And(new AnyCriterion(links, OnePersonsRecord: true)));
            }
        }

        var key = new ResourceKey("Patient", patientId);
        var others = types.Where(t => t != "Patient" && _compartmentTypes.Value.Contains(t)).ToList();
        var dated = care.Count == 0 ? [] : others.Where(t => CareDate(t) is not null).ToList();
        if (others.Except(dated).ToList() is { Count: > 0 } undated)
        {
            parts.Add(Compartments.Restrict(parser.ParseQuery(undated, filter, lenient: false).Criteria, key, parser.Registry));
        }

        if (dated.Count > 0)
        {
            // Each type's care date in the range: a period (an encounter's, a care plan's) overlapping it counts (search.html#prefix);
            // a resource of the type without one (a result with no effective time) stays in, as it cannot be placed outside.
            var inRange = dated.Select(t => (Criterion)new OfTypeCriterion([t], new AnyCriterion(
            [
                new AllCriterion(parser.ParseQuery([t], care.Select(c => new KeyValuePair<string, string>(CareDate(t)!, c)).ToList(), lenient: false).Criteria.Criteria),
                .. parser.ParseQuery([t], [new($"{CareDate(t)}:missing", "true")], lenient: false).Criteria.Criteria,
            ])));
            parts.Add(Compartments.Restrict(parser.ParseQuery(dated, filter, lenient: false).Criteria, key, parser.Registry).And(new AnyCriterion([.. inRange])));
        }

        if (types.Where(t => !_compartmentTypes.Value.Contains(t)).ToList() is { Count: > 0 } referenced)
        {
            // What the record refers to outside the compartment (its organisations, practitioners, locations,
            // medications): the targets of the reference rows of the patient and of every resource in its compartment.
            var record = Compartments.Restrict(parser.ParseQuery(_compartmentTypes.Value, [], lenient: false).Criteria, key, parser.Registry);
            parts.Add(parser.ParseQuery(referenced, filter, lenient: false).Criteria.And(new ReferencedByCriterion(_compartmentTypes.Value, record.Criteria[^1])));
        }

        return parts;
    }

    /// <summary>
    /// The search parameter holding a type's care date, which <c>start</c>/<c>end</c> filter on ("care dates, not record
    /// currency dates", patient-operation-everything.html): its clinical <c>date</c> (an encounter's or care plan's
    /// period, an observation's or report's effective time, an immunization's occurrence), or for an order when it was
    /// authored. Null for a type without one (a related person, a condition that may be ongoing, a coverage): its
    /// resources stay in whatever the range, as do the patient and what the record refers to.
    /// </summary>
    private string? CareDate(string type)
    {
        var name = type switch
        {
            "ServiceRequest" or "CommunicationRequest" or "QuestionnaireResponse" => "authored",
            "Task" or "DeviceRequest" => "authored-on",
            "MedicationRequest" => "authoredon",
            "MedicationAdministration" => "effective-time",
            "MedicationDispense" => "whenhandedover",
            "Specimen" => "collected",
            _ => "date",
        };
        return parser.Registry.Find(type, name) is { Type: SearchParamType.Date } ? name : null;
    }

    private static string? Date(string name, string? value) => value switch
    {
        null or "" => null,
        _ when FhirDateTime.IsValidValue(value) => value,
        _ => throw new InvalidInputException($"The $everything parameter '{name}' is a date (YYYY, YYYY-MM or YYYY-MM-DD), not '{value}'.", name),
    };

    /// <summary>The current rows of a page's matches, in the page's order.</summary>
    private async Task<List<StoredResource>> ReadInOrderAsync(IReadOnlyList<ResourceMatch> page, CancellationToken ct)
    {
        var rows = new Dictionary<(string, string), StoredResource>();
        foreach (var type in page.GroupBy(m => m.ResourceType, StringComparer.Ordinal))
        {
            foreach (var row in await store.ReadManyAsync(type.Key, type.Select(m => m.Id).ToList(), ct))
            {
                rows[(row.ResourceType, row.Id)] = row;
            }
        }

        return page.Select(m => rows.GetValueOrDefault((m.ResourceType, m.Id))).OfType<StoredResource>().ToList();
    }

    /// <summary>The compartment's types first (the patient leading), then every other type, which a record may refer to.</summary>
    private List<string> Types(string? requested)
    {
        var all = _compartmentTypes.Value.Concat(ResourceTypes.All.Where(t => !_compartmentTypes.Value.Contains(t)).Order(StringComparer.Ordinal));
        if (string.IsNullOrEmpty(requested))
        {
            return [.. all];
        }

        var named = requested.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var name in named.Where(n => !ResourceTypes.IsKnown(n)))
        {
            throw new InvalidInputException($"'{name}' in _type is not a resource type.", "_type");
        }

        return all.Where(named.Contains).ToList();
    }

    private static (int PartIndex, long? AfterRid) DecodeCursor(string? cursor, int partCount)
    {
        if (string.IsNullOrEmpty(cursor))
        {
            return (0, null);
        }

        var parts = cursor.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < partCount
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var rid))
        {
            return (index, rid == 0 ? null : rid);
        }

        throw new InvalidInputException($"{Paging.CursorParameter} '{cursor}' is not a continuation key this server issued.", Paging.CursorParameter);
    }

    private static void AddIf(List<KeyValuePair<string, string>> applied, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            applied.Add(new(name, value));
        }
    }
}
