using Hl7.Fhir.Model;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Codes;

/// <summary>
/// Local codes that reached a Bundle without their standard equivalent (an LIS item with no LOINC, a vaccine with no
/// CVX). They are kept as Codings of the local system, never dropped; the ingest counts them per source in the
/// adapter status, so the county knows which ConceptMap entries are missing.
/// </summary>
public static class UnmappedCodes
{
    private static readonly Dictionary<string, string> StandardFor = new(StringComparer.Ordinal)
    {
        [Systems.Local("QXLIS")] = Systems.Loinc,
        [Systems.Vaccine] = Systems.Cvx,
    };

    public static IReadOnlyList<Coding> In(Bundle bundle)
    {
        var found = new List<Coding>();
        foreach (var resource in bundle.Entry.Select(e => e.Resource).OfType<Resource>())
        {
            var concepts = resource switch
            {
                Observation o => [o.Code],
                Immunization i => [i.VaccineCode],
                _ => Array.Empty<CodeableConcept?>(),
            };
            foreach (var concept in concepts.OfType<CodeableConcept>())
            {
                foreach (var coding in concept.Coding)
                {
                    if (coding.System is { } system && StandardFor.TryGetValue(system, out var standard) && concept.Coding.All(c => c.System != standard)
                        && !found.Any(f => f.System == system && f.Code == coding.Code))
                    {
                        found.Add(new Coding(system, coding.Code, coding.Display));
                    }
                }
            }
        }

        return found;
    }
}
