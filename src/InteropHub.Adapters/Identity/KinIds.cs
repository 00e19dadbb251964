using InteropHub.Adapters.Bundles;

namespace InteropHub.Adapters.Identity;

/// <summary>
/// A newborn's mother and father are named by the HIS (NK1) and by the birth certificate: both know the child by its
/// newborn key (<see cref="DoseIds.PersonKey"/>), so a parent gets the same RelatedPerson id from either, and the mother
/// is one RelatedPerson of the child, not one per source.
/// </summary>
public static class KinIds
{
    /// <param name="role">The v3 RoleCode of the parent: <c>MTH</c> or <c>FTH</c>.</param>
    public static string For(string personKey, string role) => ResourceIds.Hashed("RelatedPerson", personKey, role);

    /// <summary>
    /// The person key when it is a newborn key (<see cref="DoseIds.PersonKey"/>): the certificate names children by
    /// it only, and a HIS child's key stays that from birth, so the parent's id never changes under it.
    /// </summary>
    public static string? OfNewborn(string? personKey) => personKey?.StartsWith("newborn:", StringComparison.Ordinal) == true ? personKey : null;

    /// <summary>Whether a RelatedPerson is a parent, the record both sources write (v3 RoleCode MTH or FTH).</summary>
    public static bool IsParent(Hl7.Fhir.Model.RelatedPerson person) =>
        person.Relationship.Any(c => c.Coding.Any(x => x.System == "http://terminology.hl7.org/CodeSystem/v3-RoleCode" && x.Code is "MTH" or "FTH"));
}
