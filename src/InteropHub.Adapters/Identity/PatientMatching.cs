using System.Globalization;
using System.Text;
using Hl7.Fhir.Model;

namespace InteropHub.Adapters.Identity;

/// <summary>The match grades of FHIR's <c>match-grade</c> extension that the hub gives (certainly-not pairs are not returned).</summary>
public enum MatchGrade
{
    Certain,
    Probable,
    Possible,
}

/// <param name="Agree">What the two records share: identifier, name, gender, birthDate, phone, address.</param>
/// <param name="Conflict">What both records have and differ on (only ever beside a shared identifier).</param>
public sealed record PatientComparison(MatchGrade Grade, decimal Score, IReadOnlyList<string> Agree, IReadOnlyList<string> Conflict);

/// <summary>
/// Whether two Patient records are the same person, by the county's linking rules (legacy/README.md, "Linking persons"):
/// a shared identifier (resident ID number, institution MRN, health-record number, certificate number, newborn key,
/// passport, any other system and value) is <b>certain</b>; records that share only name, sex and birth date are
/// <b>probable</b> (never merged automatically); fewer shared facts are <b>possible</b>. Two different resident ID
/// numbers, or two different newborn keys, are two persons whatever else they share.
/// </summary>
/// <remarks>
/// Scores (FHIR's <c>search.score</c>, 0 to 1): certain 1; probable 0.8 and possible 0.5, each plus 0.05 for a shared
/// phone number and 0.05 for a shared address. A shared identifier beside a different birth date or gender is
/// probable (0.8): one of the records holds a typing error, which a person should look at.
/// </remarks>
public static class PatientMatching
{
    public static PatientComparison? Compare(Patient asked, Patient stored) => Compare(PersonFacts.Of(asked), PersonFacts.Of(stored));

    public static PatientComparison? Compare(PersonFacts a, PersonFacts b)
    {
        if (Differ(a.ResidentIds, b.ResidentIds) || Differ(a.NewbornKeys, b.NewbornKeys))
        {
            return null;
        }

        var agree = new List<string>();
        var conflict = new List<string>();
        var identifier = a.Identifiers.Overlaps(b.Identifiers);
        if (identifier)
        {
            agree.Add("identifier");
        }

        var name = Agrees(a.Names, b.Names);
        if (name == true)
        {
            agree.Add("name");
        }

        var gender = a.Gender is null || b.Gender is null ? (bool?)null : a.Gender == b.Gender;
        Tally(gender, "gender", agree, conflict);
        var birth = a.BirthDate is null || b.BirthDate is null ? (bool?)null : a.BirthDate == b.BirthDate;
        Tally(birth, "birthDate", agree, conflict);
        var phone = Agrees(a.Phones, b.Phones) == true;
        if (phone)
        {
            agree.Add("phone");
        }

        var address = Agrees(a.Addresses, b.Addresses) == true;
        if (address)
        {
            agree.Add("address");
        }

        var extra = (phone ? 0.05m : 0) + (address ? 0.05m : 0);
        if (identifier)
        {
            return conflict.Count == 0 ? new(MatchGrade.Certain, 1m, agree, conflict) : new(MatchGrade.Probable, 0.8m, agree, conflict);
        }

        if (conflict.Count > 0)
        {
            return null;
        }

        if (name == true && gender == true && birth == true)
        {
            return new(MatchGrade.Probable, 0.8m + extra, agree, conflict);
        }

        var possible = name == true && birth == true // gender unknown on one side
            || name == true && gender == true && birth is null && (phone || address)
            || gender == true && birth == true && phone; // the name spelt otherwise
        return possible ? new(MatchGrade.Possible, 0.5m + extra, agree, conflict) : null;
    }

    private static bool Differ(IReadOnlySet<string> a, IReadOnlySet<string> b) => a.Count > 0 && b.Count > 0 && !a.Overlaps(b);

    private static bool? Agrees(IReadOnlySet<string> a, IReadOnlySet<string> b) => a.Count == 0 || b.Count == 0 ? null : a.Overlaps(b);

    private static void Tally(bool? agrees, string element, List<string> agree, List<string> conflict)
    {
        if (agrees == true)
        {
            agree.Add(element);
        }
        else if (agrees == false)
        {
            conflict.Add(element);
        }
    }
}

/// <summary>The facts of a Patient record that identify a person, normalised for comparison.</summary>
public sealed record PersonFacts(
    IReadOnlySet<string> Identifiers,
    IReadOnlySet<string> ResidentIds,
    IReadOnlySet<string> NewbornKeys,
    IReadOnlySet<string> Names,
    string? Gender,
    string? BirthDate,
    IReadOnlySet<string> Phones,
    IReadOnlySet<string> Addresses)
{
    public static PersonFacts Of(Patient patient)
    {
        var identifiers = new HashSet<string>(StringComparer.Ordinal);
        var residentIds = new HashSet<string>(StringComparer.Ordinal);
        var newbornKeys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var identifier in patient.Identifier)
        {
            if (Identifier(identifier.System, identifier.Value) is not var (system, value))
            {
                continue;
            }

            identifiers.Add($"{system}|{value}");
            if (system == ResidentIdNumber.System)
            {
                residentIds.Add(value);
            }
            else if (system == Systems.NewbornKey)
            {
                newbornKeys.Add(value);
            }
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in patient.Name.Where(n => n.Use != HumanName.NameUse.Temp))
        {
            AddName(names, name.Text);
            var given = string.Concat(name.Given ?? []);
            if (!string.IsNullOrEmpty(name.Family) || given.Length > 0)
            {
                AddName(names, name.Family + given);
                AddName(names, given + name.Family);
            }
        }

        var phones = patient.Telecom.Where(t => t.System is null or ContactPoint.ContactPointSystem.Phone or ContactPoint.ContactPointSystem.Sms)
            .Select(t => Phone(t.Value)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var addresses = patient.Address.Select(a => Compact(string.Concat(string.Concat(a.Line ?? []), a.District, a.City)))
            .Where(a => a.Length > 0).ToHashSet(StringComparer.Ordinal);
        var gender = patient.Gender is AdministrativeGender.Male or AdministrativeGender.Female ? patient.Gender.ToString() : null;
        // Only a whole date compares: a year or a month is not a birth date two persons could be told apart by.
        var birthDate = patient.BirthDate is { Length: 10 } day ? day : null;
        return new(identifiers, residentIds, newbornKeys, names, gender, birthDate, phones, addresses);
    }

    /// <summary>
    /// An identifier as compared: its system and normalised value (a resident ID number as 18 characters, upgraded from
    /// 15). A value without a system counts only as a resident ID number, when it passes the check (linking rule 1).
    /// </summary>
    public static (string System, string Value)? Identifier(string? system, string? sent)
    {
        if (string.IsNullOrWhiteSpace(sent))
        {
            return null;
        }

        var value = TextNormalizer.Number(sent);
        if (system == ResidentIdNumber.System || string.IsNullOrEmpty(system))
        {
            var check = ResidentIdNumber.Check(value, DateOnly.MaxValue);
            if (check.IsValid)
            {
                return (ResidentIdNumber.System, check.Value);
            }

            return string.IsNullOrEmpty(system) ? null : (system, ResidentIdNumber.Normalize(value));
        }

        return (system, value);
    }

    private static void AddName(HashSet<string> names, string? name)
    {
        if (!string.IsNullOrWhiteSpace(name) && Compact(name) is { Length: > 0 } key)
        {
            names.Add(key);
        }
    }

    /// <summary>NFKC, lower case, accents and every space and separator dot removed.</summary>
    private static string Compact(string? text)
    {
        var decomposed = TextNormalizer.Name(text ?? "").Normalize(NormalizationForm.FormKC).ToLowerInvariant().Normalize(NormalizationForm.FormD);
        var compact = new StringBuilder(decomposed.Length);
        foreach (var c in decomposed)
        {
            if (!char.IsWhiteSpace(c) && c is not ('·' or '-' or '.' or ',')
                && CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark)
            {
                compact.Append(c);
            }
        }

        return compact.ToString().Normalize(NormalizationForm.FormC);
    }

    /// <summary>The digits of a phone number (full-width ones too), without a leading 86 country code; null when under 7.</summary>
    private static string? Phone(string? sent)
    {
        var digits = string.Concat(TextNormalizer.Number(sent ?? "").Where(char.IsAsciiDigit));
        if (digits.Length == 13 && digits.StartsWith("86", StringComparison.Ordinal))
        {
            digits = digits[2..];
        }

        return digits.Length >= 7 ? digits : null;
    }
}
