using System.Globalization;

namespace InteropHub.Adapters.His.Mapping;

/// <summary>
/// HL7 TS/DTM values <c>YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]</c>. Without an offset the time is China time,
/// +08:00 (his-hl7v2.md §2). The precision sent is kept when written as a FHIR date or dateTime.
/// </summary>
public readonly record struct Hl7Time(DateTimeOffset Value, int Digits)
{
    public static readonly TimeSpan ChinaOffset = TimeSpan.FromHours(8);

    public bool HasTime => Digits > 8;

    public DateOnly Date => DateOnly.FromDateTime(Value.DateTime);

    /// <summary>Placeholder dates of old records (<c>00000000</c>, <c>19000101</c>) mean "unknown" (§9).</summary>
    public static bool IsPlaceholder(string value) => value.StartsWith("00000000", StringComparison.Ordinal) || value.StartsWith("19000101", StringComparison.Ordinal);

    public static bool TryParse(string value, out Hl7Time time)
    {
        time = default;
        var text = value.Trim();
        var offset = ChinaOffset;
        var sign = text.IndexOfAny(['+', '-']);
        if (sign >= 0)
        {
            var zone = text[(sign + 1)..];
            if (zone.Length != 4 || !int.TryParse(zone, NumberStyles.None, CultureInfo.InvariantCulture, out var hhmm) || hhmm % 100 >= 60 || hhmm / 100 > 14)
            {
                return false;
            }

            offset = new TimeSpan(hhmm / 100, hhmm % 100, 0) * (text[sign] == '-' ? -1 : 1);
            text = text[..sign];
        }

        var fraction = 0m;
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            if (!decimal.TryParse("0" + text[dot..], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out fraction))
            {
                return false;
            }

            text = text[..dot];
        }

        if (text.Length is not (4 or 6 or 8 or 10 or 12 or 14) || !text.All(char.IsAsciiDigit))
        {
            return false;
        }

        var padded = text.PadRight(14, '0');
        if (text.Length < 8)
        {
            padded = text.Length == 4 ? text + "0101000000" : text + "01000000";
        }

        // A year outside 1800–2199 is no real time of care or of birth (and year 1 at +08:00 is before DateTimeOffset's range).
        if (!DateTime.TryParseExact(padded, "yyyyMMddHHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local) || local.Year is < 1800 or > 2199)
        {
            return false;
        }

        time = new Hl7Time(new DateTimeOffset(local.AddTicks((long)(fraction * TimeSpan.TicksPerSecond)), offset), text.Length);
        return true;
    }

    /// <summary>FHIR <c>date</c> at the precision sent (year, month or day).</summary>
    public string ToFhirDate() => Digits switch
    {
        4 => Value.ToString("yyyy", CultureInfo.InvariantCulture),
        6 => Value.ToString("yyyy-MM", CultureInfo.InvariantCulture),
        _ => Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
    };

    /// <summary>FHIR <c>dateTime</c>: a date when no time was sent, else seconds and offset (FHIR requires both).</summary>
    public string ToFhirDateTime() => HasTime
        ? Value.ToString(Value.Millisecond > 0 ? "yyyy-MM-dd'T'HH:mm:ss.fffzzz" : "yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture)
        : ToFhirDate();
}
