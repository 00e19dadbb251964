using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Everything;

/// <param name="Types">The <c>_type</c> list, comma-separated, or null for every type in the compartment.</param>
public sealed record EverythingRequest(string PatientId, string? Since, string? Types, string? Count, string? Cursor);

/// <summary>
/// <c>GET [base]/Patient/[id]/$everything</c> (patient-operation-everything.html): the patient and every resource in
/// its compartment (see <see cref="Compartments"/>), type by type in a fixed order (Patient first), keyset-paged
/// across types with <c>_count</c>; <c>_since</c> keeps what changed at or after an instant, <c>_type</c> limits the
/// types. The cursor is the position in the type list plus the row id within that type, so pages stay stable.
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

        var types = Types(request.Types);
        var count = Paging.Count(request.Count, options);
        var (typeIndex, afterRid) = DecodeCursor(request.Cursor, types.Count);
        var filter = request.Since is { Length: > 0 } since ? new List<KeyValuePair<string, string>> { new("_lastUpdated", "ge" + since) } : [];
        var compartment = new ResourceKey("Patient", request.PatientId);
        var resources = new List<StoredResource>();
        string? next = null;
        for (; typeIndex < types.Count && next is null; typeIndex++, afterRid = null)
        {
            var criteria = Compartments.Restrict(parser.ParseQuery([types[typeIndex]], filter, lenient: false).Criteria, compartment, parser.Registry);
            var matches = await store.FindAsync(criteria, [], afterRid is { } rid ? new SearchCursor([], rid) : null, count - resources.Count + 1, ct);
            var room = count - resources.Count;
            var page = matches.Take(room).ToList();
            resources.AddRange(await store.ReadManyAsync(types[typeIndex], page.Select(m => m.Id).ToList(), ct));
            if (matches.Count > room)
            {
                next = $"{typeIndex}.{page[^1].Rid.ToString(CultureInfo.InvariantCulture)}";
            }
            else if (resources.Count == count && typeIndex + 1 < types.Count)
            {
                next = $"{typeIndex + 1}.0";
            }
        }

        var applied = new List<KeyValuePair<string, string>>();
        AddIf(applied, "_since", request.Since);
        AddIf(applied, "_type", request.Types);
        AddIf(applied, "_count", request.Count);
        var self = request.Cursor is null ? applied : [.. applied, new(Paging.CursorParameter, request.Cursor)];
        return new SearchPage(resources, [], null, null, SearchCursorText.Query(self),
            next is null ? null : SearchCursorText.Query([.. applied, new(Paging.CursorParameter, next)]));
    }

    private List<string> Types(string? requested)
    {
        if (string.IsNullOrEmpty(requested))
        {
            return [.. _compartmentTypes.Value];
        }

        var named = requested.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var name in named.Where(n => !_compartmentTypes.Value.Contains(n)))
        {
            throw new InvalidInputException($"'{name}' in _type is not a resource type that can be in a patient's compartment.", "_type");
        }

        return _compartmentTypes.Value.Where(named.Contains).ToList();
    }

    private static (int TypeIndex, long? AfterRid) DecodeCursor(string? cursor, int typeCount)
    {
        if (string.IsNullOrEmpty(cursor))
        {
            return (0, null);
        }

        var parts = cursor.Split('.');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < typeCount
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
