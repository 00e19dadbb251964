using System.Globalization;
using System.Text;

namespace InteropHub.Adapters.Identity;

/// <summary>
/// The resident ID number (居民身份证号, GB 11643): normalisation, the 15 → 18 digit upgrade and the
/// ISO 7064 MOD 11-2 check character (legacy/README.md, "Normalising an ID number before comparing it").
/// </summary>
public static class ResidentIdNumber
{
    public const string System = "urn:oid:2.16.156.10011.1.3";

    private static readonly int[] Weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    private const string CheckCharacters = "10X98765432";

    /// <summary>Checks and normalises a number as sent; <paramref name="recordDate"/> bounds the birth date part.</summary>
    public static ResidentIdCheck Check(string sent, DateOnly recordDate)
    {
        var value = Normalize(sent);
        var upgraded = false;
        if (value.Length == 15 && value.All(char.IsAsciiDigit))
        {
            // Legacy numbers: insert the century "19" after the area code and append the check character.
            var body = string.Concat(value.AsSpan(0, 6), "19", value.AsSpan(6));
            value = body + CheckCharacter(body);
            upgraded = true;
        }

        if (value.Length != 18 || !value[..17].All(char.IsAsciiDigit) || !(char.IsAsciiDigit(value[17]) || value[17] == 'X'))
        {
            return ResidentIdCheck.Fail(RejectionReason.IdFormat, value,
                $"身份证号 {sent} 应为18位(或15位旧号)，前17位为数字、末位为数字或X");
        }

        if (!DateOnly.TryParseExact(value.AsSpan(6, 8), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var birth)
            || birth > recordDate || birth.Year < 1850)
        {
            return ResidentIdCheck.Fail(RejectionReason.IdFormat, value, $"身份证号 {sent} 的出生日期部分 {value.Substring(6, 8)} 不是有效日期");
        }

        var expected = CheckCharacter(value.AsSpan(0, 17));
        if (value[17] != expected)
        {
            return ResidentIdCheck.Fail(RejectionReason.IdCheckDigit, value, $"身份证号 {sent} 校验位应为 {expected}");
        }

        return new ResidentIdCheck(value, null, null, upgraded, birth, (value[16] - '0') % 2 == 1);
    }

    /// <summary>GB/T 2260 province codes (the first two digits of an area code).</summary>
    private static readonly HashSet<string> Provinces =
    [
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
    ];

    /// <summary>The county's fictional prefectures and their codes (legacy/README.md), which no national table lists.</summary>
    private static readonly Dictionary<string, string[]> LocalPrefectures = new(StringComparer.Ordinal)
    {
        ["3699"] = ["369900", "369921", "369902"],
        ["4399"] = ["439900", "439923"],
    };

    /// <summary>
    /// Whether a valid number's 6-digit area code can be a division (a warning otherwise, never a rejection; README
    /// "Linking persons"): its province exists, and within the county's fictional prefectures it is one of their codes.
    /// Elsewhere only the province is checked, as the national county table is not carried here.
    /// </summary>
    public static bool KnownArea(string value) =>
        value.Length >= 6 && Provinces.Contains(value[..2])
        && (!LocalPrefectures.TryGetValue(value[..4], out var codes) || codes.Contains(value[..6]));

    /// <summary>
    /// README "Linking persons" rule 1: a number sent under another document type links as a resident ID number when it
    /// is 18 characters that pass the check.
    /// </summary>
    public static bool Passes(string value) =>
        Normalize(value) is { Length: 18 } normalized && Check(normalized, DateOnly.MaxValue).IsValid;

    /// <summary>Trim, full-width to ASCII (NFKC), lower-case x to X.</summary>
    public static string Normalize(string sent) =>
        sent.Normalize(NormalizationForm.FormKC).Trim().Replace('x', 'X');

    public static char CheckCharacter(ReadOnlySpan<char> first17)
    {
        var sum = 0;
        for (var i = 0; i < 17; i++)
        {
            sum += (first17[i] - '0') * Weights[i];
        }

        return CheckCharacters[sum % 11];
    }
}

/// <summary>The outcome of <see cref="ResidentIdNumber.Check"/>; <see cref="Failure"/> is null when the number is valid.</summary>
public sealed record ResidentIdCheck(string Value, RejectionReason? Failure, string? Detail, bool Upgraded, DateOnly BirthDate, bool IsMale)
{
    public bool IsValid => Failure is null;

    internal static ResidentIdCheck Fail(RejectionReason reason, string value, string detail) =>
        new(value, reason, detail, false, default, false);
}
