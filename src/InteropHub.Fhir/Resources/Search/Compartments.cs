using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Search;

/// <summary>
/// Compartment search (compartmentdefinition.html, http.html#search): <c>GET [base]/Patient/123/Encounter</c> is the
/// Encounters in Patient 123's compartment. The SDK ships no CompartmentDefinition resources, so membership is
/// derived from the search parameters: a resource belongs to the compartment of C/id when one of its reference
/// parameters whose declared targets include C (not "any type") points to C/id. For the spec's compartments
/// (Patient, Encounter, RelatedPerson, Practitioner, Device) this gives the parameters the definitions list, plus
/// occasionally a few more.
/// </summary>
public static class Compartments
{
    private static readonly HashSet<string> CompartmentTypes = new(StringComparer.Ordinal) { "Patient", "Encounter", "RelatedPerson", "Practitioner", "Device" };

    /// <summary>The types whose resources can be in a compartment of <paramref name="compartmentType"/>, itself among them.</summary>
    public static IReadOnlyList<string> MemberTypes(string compartmentType, SearchParameterRegistry registry) =>
        ResourceTypes.All.Where(t => t == compartmentType || Links(t, compartmentType, [], registry).Count > 0).ToList();

    public static SearchCriteria Restrict(SearchCriteria criteria, ResourceKey compartment, SearchParameterRegistry registry)
    {
        if (!CompartmentTypes.Contains(compartment.ResourceType))
        {
            throw new ResourceNotFoundException($"{compartment.ResourceType} is not a compartment; compartments are {string.Join(", ", CompartmentTypes)}.");
        }

        ResourceTypes.EnsureValidId(compartment.Id);
        var target = new ReferenceCondition(compartment.ResourceType, compartment.Id, null);
        var links = new List<Criterion>();
        if (criteria.ResourceTypes is [var type])
        {
            if (type == compartment.ResourceType)
            {
                links.Add(new IdCriterion([compartment.Id]));
            }

            links.AddRange(Links(type, compartment.ResourceType, [target], registry));
        }
        else
        {
            // Over several types (Patient/1/$everything), a link is scoped to the types that have its parameter: one
            // lookup per parameter (subject, patient, performer…), not one per type and parameter.
            if (criteria.ResourceTypes.Contains(compartment.ResourceType))
            {
                links.Add(new OfTypeCriterion([compartment.ResourceType], new IdCriterion([compartment.Id])));
            }

            links.AddRange(LinkParameters(criteria.ResourceTypes, compartment.ResourceType, registry)
                .Select(g => new OfTypeCriterion(g.Types, new IndexCriterion(g.Param, IndexTable.References, [target]))));
        }

        if (links.Count == 0)
        {
            throw new InvalidInputException($"No {string.Join(" or ", criteria.ResourceTypes)} can be in the compartment of {compartment.ResourceType}/{compartment.Id}.");
        }

        return criteria.And(new AnyCriterion(links, OnePersonsRecord: compartment.ResourceType is "Patient" or "Encounter" or "RelatedPerson"));
    }

    /// <summary>Each registry's link parameters per (compartment type, resource types), for its version.</summary>
    private static readonly ConditionalWeakTable<SearchParameterRegistry, ConcurrentDictionary<(int Version, string Key), IReadOnlyList<(IReadOnlyList<string> Types, string Param)>>> LinkCache = new();

    /// <summary>
    /// The reference parameters that link resources of <paramref name="types"/> to a <paramref name="compartmentType"/>,
    /// each with the types that have it. A patient's record asks this of some eighty types on every <c>$everything</c>;
    /// the answer depends only on the registry, so it is kept per registry version (a custom SearchParameter changes it).
    /// </summary>
    private static IReadOnlyList<(IReadOnlyList<string> Types, string Param)> LinkParameters(IReadOnlyList<string> types, string compartmentType,
        SearchParameterRegistry registry)
    {
        var cache = LinkCache.GetOrCreateValue(registry);
        var key = (registry.Version, compartmentType + "|" + string.Join(',', types));
        if (cache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        IReadOnlyList<(IReadOnlyList<string> Types, string Param)> found = types
            .SelectMany(t => Links(t, compartmentType, [], registry).Select(link => (Type: t, link.Param)))
            .GroupBy(l => l.Param, StringComparer.Ordinal)
            .Select(g => ((IReadOnlyList<string>)g.Select(l => l.Type).ToList(), g.Key))
            .ToList();
        if (cache.Count > 1000)
        {
            // Type lists come from requests (_type): bounded, not grown without end.
            cache.Clear();
        }

        cache[key] = found;
        return found;
    }

    /// <summary>
    /// The criteria by which a resource of <paramref name="type"/> links to one of <paramref name="targets"/> (resources of
    /// <paramref name="compartmentType"/>; a target without id is any of them): one per reference parameter whose declared
    /// targets include the compartment's type.
    /// </summary>
    public static IReadOnlyList<IndexCriterion> Links(string type, string compartmentType, IReadOnlyList<ReferenceCondition> targets, SearchParameterRegistry registry) =>
        registry.For(type).Values
            .Where(p => p.Type == SearchParamType.Reference && p.Targets.Contains(compartmentType))
            .Select(p => new IndexCriterion(p.Name, IndexTable.References, targets))
            .ToList();
}
