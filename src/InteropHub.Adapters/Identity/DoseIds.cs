using System.Globalization;
using InteropHub.Adapters.Bundles;

namespace InteropHub.Adapters.Identity;

/// <summary>
/// The hub keeps one Immunization per (person, vaccine code, administration date) (his-hl7v2.md §5 VXU; README
/// "Vaccine codes"). When a source names the person by a key every source can compute — the newborn key, else
/// the resident ID number — the dose gets the same id from the HIS, the birth certificate and the township export,
/// so the birth doses that arrive three times are written once.
/// </summary>
public static class DoseIds
{
    public static string? PersonKey(string? newbornKey, string? residentId) =>
        newbornKey is not null ? $"newborn:{newbornKey}" : residentId is not null ? $"id:{residentId}" : null;

    public static string For(string personKey, string vaccineCode, DateOnly date) =>
        ResourceIds.Hashed("Immunization", personKey, vaccineCode, date.ToString("yyyyMMdd", CultureInfo.InvariantCulture));
}
