using InteropHub.Adapters.Bundles;

namespace InteropHub.Adapters.Identity;

/// <summary>
/// A newborn's mother and father are named by the HIS (NK1) and by the birth certificate: when both sources know the
/// child by a key every source can compute (<see cref="DoseIds.PersonKey"/>), a parent gets the same RelatedPerson id
/// from either, so the mother is one RelatedPerson of the child, not one per source.
/// </summary>
public static class KinIds
{
    /// <param name="role">The v3 RoleCode of the parent: <c>MTH</c> or <c>FTH</c>.</param>
    public static string For(string personKey, string role) => ResourceIds.Hashed("RelatedPerson", personKey, role);
}
