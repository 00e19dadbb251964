using Hl7.Fhir.Model;
using InteropHub.Adapters.Identity;

namespace InteropHub.Adapters.Township;

/// <summary>
/// Which of the Patient elements that a resident row maps from an optional column the row filled, and its mobile
/// number, ID number and health card (§3.1). Kept with the row's <c>updated_at</c> in the hub's state, so that the row's next version, which
/// replaces it whole (§2 "Update"), removes what this one said and the next one leaves empty, and nothing that
/// another source (the HIS) said of the person.
/// </summary>
public sealed record ResidentSupplied(bool Deceased, bool MaritalStatus, bool Ethnicity, bool PaymentMethod, bool MultipleBirth, string? Mobile,
    string? IdNumber = null, string? HealthCard = null, bool GeneralPractitioner = false)
{
    private const string Prefix = "R:";

    public static ResidentSupplied Of(Patient patient) => new(
        patient.Deceased is not null,
        patient.MaritalStatus is not null,
        patient.Extension.Any(e => e.Url == ExtensionUrls.Ethnicity),
        patient.Extension.Any(e => e.Url == ExtensionUrls.PaymentMethod),
        patient.MultipleBirth is not null,
        patient.Telecom.FirstOrDefault(IsMobile)?.Value,
        patient.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value,
        patient.Identifier.FirstOrDefault(i => i.System == Systems.HealthCard)?.Value,
        patient.GeneralPractitioner.Count > 0);

    /// <summary>
    /// For a row applied before the hub kept what rows filled: assumed to have filled every element the stored Patient
    /// has (a version the township wrote last), and no ID number or health card, which are never taken away on a guess.
    /// </summary>
    public static ResidentSupplied Assumed(Patient stored) => Of(stored) with { IdNumber = null, HealthCard = null };

    /// <summary>Marks a resident row whose earlier version was applied before the hub kept what rows filled.</summary>
    public static readonly ResidentSupplied Unrecorded = new(false, false, false, false, false, null);

    public static bool IsMobile(ContactPoint telecom) =>
        telecom is { System: ContactPoint.ContactPointSystem.Phone, Use: ContactPoint.ContactPointUse.Mobile };

    /// <summary>The Patient element names and extension URLs this version filled and <paramref name="next"/> leaves empty.</summary>
    public IEnumerable<string> LeftEmptyBy(ResidentSupplied next)
    {
        if (Deceased && !next.Deceased)
        {
            yield return "deceased";
        }

        if (MaritalStatus && !next.MaritalStatus)
        {
            yield return "maritalStatus";
        }

        if (Ethnicity && !next.Ethnicity)
        {
            yield return ExtensionUrls.Ethnicity;
        }

        if (PaymentMethod && !next.PaymentMethod)
        {
            yield return ExtensionUrls.PaymentMethod;
        }

        if (MultipleBirth && !next.MultipleBirth)
        {
            yield return "multipleBirth";
        }

        if (GeneralPractitioner && !next.GeneralPractitioner)
        {
            yield return "generalPractitioner";
        }
    }

    /// <summary>"R:", a letter per element filled (D, M, E, P, B, G), "|" the mobile number, "|" the ID number, "|" the health card.</summary>
    public override string ToString() =>
        Prefix + (Deceased ? "D" : "") + (MaritalStatus ? "M" : "") + (Ethnicity ? "E" : "") + (PaymentMethod ? "P" : "") + (MultipleBirth ? "B" : "")
        + (GeneralPractitioner ? "G" : "")
        + "|" + Mobile + "|" + IdNumber + "|" + HealthCard;

    public static ResidentSupplied? Parse(string? text)
    {
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var parts = text[Prefix.Length..].Split('|');
        var letters = parts[0];
        string? Part(int i) => parts.Length > i && parts[i].Length > 0 ? parts[i] : null;
        return new ResidentSupplied(letters.Contains('D', StringComparison.Ordinal), letters.Contains('M', StringComparison.Ordinal),
            letters.Contains('E', StringComparison.Ordinal), letters.Contains('P', StringComparison.Ordinal), letters.Contains('B', StringComparison.Ordinal),
            Part(1), Part(2), Part(3), letters.Contains('G', StringComparison.Ordinal));
    }
}
