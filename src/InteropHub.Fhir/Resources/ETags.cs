using System.Globalization;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

/// <summary>Version ETags (http.html#versioning): the server writes <c>W/"3"</c>; clients may also send <c>"3"</c> or <c>3</c>.</summary>
public static class ETags
{
    /// <summary><c>If-Match: *</c> (RFC 9110 §13.1.1): whatever the version, the resource must exist.</summary>
    public const int AnyVersion = 0;

    /// <summary>
    /// The version an <c>If-Match</c> value names, or <see cref="AnyVersion"/> for <c>*</c>; <paramref name="where"/> says
    /// where it came from in a 400.
    /// </summary>
    public static int ParseVersion(string raw, string where)
    {
        var trimmed = raw.Trim();
        if (trimmed == "*")
        {
            return AnyVersion;
        }

        var value = (trimmed.StartsWith("W/", StringComparison.Ordinal) ? trimmed[2..] : trimmed).Trim('"');
        // An ETag compares as a string (RFC 9110 §8.8.3.2): W/"03" is not the W/"3" this server wrote, and no version has it.
        return value.Length > 0 && value[0] != '0' && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var version)
            ? version
            : throw new InvalidInputException($"{where} '{raw}' is not a version ETag such as W/\"3\" (versions are whole numbers from 1, written without leading zeros).", where);
    }

    /// <summary>
    /// The versions an <c>If-Match</c> or <c>If-None-Match</c> value names: one ETag or a comma-separated list of them
    /// (RFC 9110 §13.1.1 and §13.1.2), or <see cref="AnyVersion"/> for <c>*</c>. The precondition is about the current
    /// version being one of them (<see cref="Names"/>).
    /// </summary>
    public static IReadOnlyList<int> ParseVersions(string raw, string where)
    {
        var versions = raw.Split(',').Select(t => t.Trim()).Where(t => t.Length > 0).Select(t => ParseVersion(t, where)).Distinct().ToList();
        return versions.Count > 0 ? versions : throw new InvalidInputException($"{where} '{raw}' is not a version ETag such as W/\"3\".", where);
    }

    /// <summary>Whether <paramref name="version"/> is one of <paramref name="versions"/> (any version, for <c>*</c>).</summary>
    public static bool Names(IReadOnlyList<int> versions, int version) => versions.Contains(AnyVersion) || versions.Contains(version);

    /// <summary>How a message names them: <c>*</c>, <c>version 3</c>, <c>version 3 or 4</c>.</summary>
    public static string Describe(IReadOnlyList<int> versions) =>
        versions.Contains(AnyVersion) ? "*" : "version " + string.Join(" or ", versions.Select(v => v.ToString(CultureInfo.InvariantCulture)));
}
