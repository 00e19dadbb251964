using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search.Terminology;

namespace InteropHub.Fhir.Resources.Expand;

/// <summary>
/// What <c>ValueSet/$expand</c> was asked (valueset-operation-expand.html): the ValueSet (stored, by id or by
/// <c>url</c> with its <c>valueSetVersion</c>, or given whole), the text <c>filter</c>, the page (<c>offset</c>,
/// <c>count</c>) and what to put in each entry.
/// </summary>
public sealed record ExpandRequest(
    string? Id = null,
    string? Url = null,
    ValueSet? ValueSet = null,
    string? ValueSetVersion = null,
    string? Filter = null,
    int? Offset = null,
    int? Count = null,
    bool IncludeDesignations = false,
    bool ActiveOnly = false);

/// <summary>
/// Expands a ValueSet over the terminology stored in the hub, with <see cref="LocalTerminology"/>'s expansion (the one
/// token <c>:in</c> uses): the ValueSet with an <c>expansion</c> whose <c>contains</c> are its codes in the order its
/// compose lists them, each with its system, the code system's version where known, its display, designations when
/// asked, and abstract / inactive where the code system says so.
/// <para><c>filter</c>: a code is kept when every word of the filter (split at white space) is found in its code or in its
/// display, ignoring case. <c>activeOnly</c> (or <c>compose.inactive</c> false) drops inactive codes.</para>
/// <para>An expansion of more than <see cref="MaxCodes"/> codes (after the filter) is refused as too costly unless a
/// <c>count</c> pages it; a page holds at most <see cref="MaxCodes"/> codes.</para>
/// </summary>
public sealed class ExpandValueSet(LocalTerminology terminology, TimeProvider clock)
{
    /// <summary>The most codes one answer holds: the same cap as a search's <c>:in</c>.</summary>
    public const int MaxCodes = LocalTerminology.MaxCodes;

    public async Task<ValueSet> HandleAsync(ExpandRequest request, CancellationToken ct)
    {
        if (request is { Offset: < 0 } or { Count: < 0 })
        {
            throw new InvalidInputException("offset and count cannot be negative.", request.Offset < 0 ? "offset" : "count");
        }

        if (request.Count > MaxCodes)
        {
            throw new TooCostlyException($"count {request.Count} is more than the {MaxCodes} codes one $expand answers; page with a smaller count and offset.", "count");
        }

        var (valueSet, name) = await ValueSetAsync(request, ct);
        IEnumerable<ExpandedConcept> codes = await terminology.ExpandAsync(valueSet, name, ct);
        if (request.ActiveOnly || valueSet.Compose?.Inactive == false)
        {
            codes = codes.Where(c => !c.Inactive);
        }

        if (request.Filter?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) is { Length: > 0 } words)
        {
            codes = codes.Where(c => words.All(w => c.Code.Contains(w, StringComparison.OrdinalIgnoreCase)
                || c.Display?.Contains(w, StringComparison.OrdinalIgnoreCase) == true));
        }

        var all = codes.ToList();
        if (request.Count is null && all.Count > MaxCodes)
        {
            throw new TooCostlyException(
                $"ValueSet {valueSet.Url ?? valueSet.Id} expands to {all.Count} codes, more than the {MaxCodes} one $expand answers; page it with count (and offset) or narrow it with filter.",
                "count");
        }

        var offset = request.Offset ?? 0;
        var expansion = new ValueSet.ExpansionComponent
        {
            Identifier = $"urn:uuid:{Guid.NewGuid()}",
            TimestampElement = new FhirDateTime(clock.GetUtcNow()),
            Total = all.Count,
            Offset = request.Offset is null && request.Count is null ? null : offset,
            Contains = [.. all.Skip(offset).Take(request.Count ?? MaxCodes).Select(c => Contains(c, request.IncludeDesignations))],
        };
        AddParameter(expansion, "filter", request.Filter is null ? null : new FhirString(request.Filter));
        AddParameter(expansion, "offset", request.Offset is { } o ? new Integer(o) : null);
        AddParameter(expansion, "count", request.Count is { } n ? new Integer(n) : null);
        AddParameter(expansion, "includeDesignations", request.IncludeDesignations ? new FhirBoolean(true) : null);
        AddParameter(expansion, "activeOnly", request.ActiveOnly ? new FhirBoolean(true) : null);
        AddParameter(expansion, "valueSetVersion", request.ValueSetVersion is null ? null : new FhirString(request.ValueSetVersion));
        foreach (var version in all.Where(c => c.Version is { Length: > 0 }).Select(c => $"{c.System}|{c.Version}").Distinct(StringComparer.Ordinal))
        {
            // The code system versions the expansion used (R4's convention, later named used-codesystem).
            AddParameter(expansion, "version", new FhirUri(version));
        }

        var expanded = (ValueSet)valueSet.DeepCopy();
        expanded.Expansion = expansion;
        return expanded;
    }

    /// <summary>The ValueSet asked for, and the parameter that named it (what an error in its content names).</summary>
    private async Task<(ValueSet ValueSet, string Name)> ValueSetAsync(ExpandRequest request, CancellationToken ct)
    {
        var (url, version) = request.Url?.IndexOf('|', StringComparison.Ordinal) is int bar and >= 0
            ? (request.Url[..bar], request.Url[(bar + 1)..])
            : (request.Url, null);
        if (version is not null && request.ValueSetVersion is not null && version != request.ValueSetVersion)
        {
            throw new InvalidInputException($"url '{request.Url}' and valueSetVersion '{request.ValueSetVersion}' name different versions.", "valueSetVersion");
        }

        version ??= request.ValueSetVersion;
        var named = new[] { request.Id is null ? null : "the instance", url is null ? null : "url", request.ValueSet is null ? null : "valueSet" }.OfType<string>().ToList();
        if (named.Count != 1)
        {
            throw new InvalidInputException(named.Count == 0
                ? "$expand needs the ValueSet to expand: url (with valueSetVersion), valueSet, or ValueSet/[id]/$expand."
                : $"$expand expands one ValueSet, named once; this request names it by {string.Join(" and ", named)}.", named.Count == 0 ? "url" : named[^1]);
        }

        if (request.ValueSet is { } given)
        {
            return (given, "valueSet");
        }

        if (request.Id is { } id)
        {
            var stored = await terminology.ByIdAsync<ValueSet>(id, ct);
            if (version is not null && version != stored.Version)
            {
                throw new InvalidInputException($"ValueSet/{id} is version {stored.Version ?? "(none)"}, not the version {version} asked for.", "valueSetVersion");
            }

            return (stored, $"ValueSet/{id}");
        }

        return (await terminology.ByUrlAsync<ValueSet>("ValueSet", url!, version, ct)
            ?? throw new ResourceNotFoundException($"No ValueSet with url {url}{(version is null ? "" : $" and version {version}")} is stored in the hub; $expand expands the ValueSets stored here or one given as valueSet.", "url"), "url");
    }

    private static ValueSet.ContainsComponent Contains(ExpandedConcept code, bool designations) => new()
    {
        System = code.System,
        Version = code.Version,
        Code = code.Code,
        Display = code.Display,
        Abstract = code.Abstract ? true : null,
        Inactive = code.Inactive ? true : null,
        Designation = designations ? [.. code.Designations.Select(d => (ValueSet.DesignationComponent)d.DeepCopy())] : [],
    };

    private static void AddParameter(ValueSet.ExpansionComponent expansion, string name, DataType? value)
    {
        if (value is not null)
        {
            expansion.Parameter.Add(new ValueSet.ParameterComponent { Name = name, Value = value });
        }
    }
}
