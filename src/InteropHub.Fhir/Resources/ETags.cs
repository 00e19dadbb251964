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
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version > 0
            ? version
            : throw new InvalidInputException($"{where} '{raw}' is not a version ETag such as W/\"3\".", where);
    }
}
