using Hl7.Fhir.Model;

namespace InteropHub.Adapters.Identity;

/// <summary>
/// The newborn linkage key of README "Linking persons", rule 5: records of a child that carry the mother's ID number
/// link by (mother's ID number, birth date, sex, birth order). All three adapters write it as an identifier
/// (<see cref="Systems.NewbornKey"/>) so that the records meet on it.
/// </summary>
public static class NewbornKeys
{
    /// <summary><c>{mother's ID number}/{yyyyMMdd}/{gender}/{birth order}</c>.</summary>
    public static string For(string motherId, DateOnly birthDate, AdministrativeGender gender, int order) =>
        FormattableString.Invariant($"{motherId}/{birthDate:yyyyMMdd}/{gender.ToString().ToLowerInvariant()}/{order}");
}
