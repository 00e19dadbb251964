using System.Globalization;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

/// <summary>Reads <c>_count</c> and the opaque <c>_cursor</c> continuation key of history and search pages.</summary>
public static class Paging
{
    public const string CursorParameter = "_cursor";

    public static int Count(string? raw, HubOptions options)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return options.DefaultPageSize;
        }

        if (raw.All(char.IsAsciiDigit))
        {
            // Any number of digits: a count above the largest page asks for the largest page.
            return int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? Math.Min(count, options.MaxPageSize) : options.MaxPageSize;
        }

        throw new InvalidInputException($"_count must be a non-negative integer, not '{raw}'.", "_count");
    }

    public static long? Cursor(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        return long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var key)
            ? key
            : throw new InvalidInputException($"{CursorParameter} '{raw}' is not a continuation key this server issued.", CursorParameter);
    }
}
