using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Resources;

/// <summary>
/// <c>_since</c> as history, <c>$export</c> and <c>$everything</c> all read it: an instant, or a date or dateTime
/// without zone read as UTC. An offset's '+' typed into a URL unencoded arrives as a space and is read as the '+' it was.
/// </summary>
public static class SinceParameter
{
    public static DateTimeOffset? Parse(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        var text = raw.Trim().Replace(' ', '+');
        if (FhirDateTime.IsValidValue(text))
        {
            try
            {
                return new FhirDateTime(text).ToDateTimeOffset(TimeSpan.Zero);
            }
            catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException)
            {
                // Shaped like an instant but not one (e.g. a +25:00 offset): refused below.
            }
        }

        throw new InvalidInputException($"_since must be an instant such as 2024-01-31T08:00:00Z, not '{raw}'.", "_since");
    }
}
