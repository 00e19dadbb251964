using System.Globalization;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>
/// A date, dateTime or instant as the interval it denotes at its precision (search.html#date): <c>2020</c> is the
/// whole year, <c>2020-03-01T10:00</c> that minute. Bounds are UTC ticks, <see cref="Low"/> inclusive and
/// <see cref="High"/> exclusive; an open end is <see cref="Min"/> or <see cref="Max"/>. Values without a time zone
/// are read as UTC.
/// </summary>
public readonly record struct DateRange(long Low, long High)
{
    public const long Min = 0;

    public static readonly long Max = DateTime.MaxValue.Ticks;

    public static DateRange Open => new(Min, Max);

    public static bool TryParse(string? text, out DateRange range)
    {
        range = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var s = text.AsSpan();
        if (!Int(s, 0, 4, out var year) || year < 1)
        {
            return false;
        }

        if (s.Length == 4)
        {
            return Make(new DateTime(year, 1, 1, 0, 0, 0, DateTimeKind.Utc), d => d.AddYears(1), out range);
        }

        if (s[4] != '-' || !Int(s, 5, 2, out var month) || month is < 1 or > 12)
        {
            return false;
        }

        if (s.Length == 7)
        {
            return Make(new DateTime(year, month, 1, 0, 0, 0, DateTimeKind.Utc), d => d.AddMonths(1), out range);
        }

        if (s[7] != '-' || !Int(s, 8, 2, out var day) || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        if (s.Length == 10)
        {
            return Make(new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Utc), d => d.AddDays(1), out range);
        }

        if (s[10] != 'T' || s.Length < 16 || !Int(s, 11, 2, out var hour) || s[13] != ':' || !Int(s, 14, 2, out var minute)
            || hour > 23 || minute > 59)
        {
            return false;
        }

        var at = 16;
        var second = 0;
        long step = TimeSpan.TicksPerMinute;
        long fraction = 0;
        if (at < s.Length && s[at] == ':')
        {
            if (!Int(s, at + 1, 2, out second) || second > 59)
            {
                return false;
            }

            at += 3;
            step = TimeSpan.TicksPerSecond;
            if (at < s.Length && s[at] == '.')
            {
                var digits = 0;
                at++;
                while (at < s.Length && char.IsAsciiDigit(s[at]))
                {
                    if (digits < 7)
                    {
                        fraction = (fraction * 10) + (s[at] - '0');
                        step /= 10;
                    }

                    digits++;
                    at++;
                }

                if (digits == 0)
                {
                    return false;
                }

                fraction *= step;
            }
        }

        var offset = TimeSpan.Zero;
        var zone = s[at..];
        if (zone.Length > 0)
        {
            if (zone is "Z")
            {
                offset = TimeSpan.Zero;
            }
            else if (zone.Length == 6 && zone[0] is '+' or '-' && Int(zone, 1, 2, out var oh) && zone[3] == ':' && Int(zone, 4, 2, out var om))
            {
                offset = new TimeSpan(oh, om, 0) * (zone[0] == '-' ? -1 : 1);
            }
            else
            {
                return false;
            }
        }

        // In ticks, not DateTime arithmetic: the first and last moments of the calendar (9999-12-31T23:59:59-05:00, a
        // common "open-ended" value) move past its ends in UTC; the range is clamped to them.
        var utc = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Unspecified).Ticks + fraction - offset.Ticks;
        var low = Math.Clamp(utc, Min, Max - 1);
        range = new DateRange(low, Math.Clamp(utc + step, low + 1, Max));
        return true;
    }

    public static DateRange FromInstant(DateTimeOffset instant, long precision = TimeSpan.TicksPerMillisecond) =>
        new(instant.UtcTicks, instant.UtcTicks + precision);

    private static bool Make(DateTime start, Func<DateTime, DateTime> next, out DateRange range)
    {
        // The last year, month or day of the calendar has no successor: its end is the end of time.
        range = new DateRange(start.Ticks, start.Year == 9999 && IsLast(start, next) ? Max : next(start).Ticks);
        return true;
    }

    private static bool IsLast(DateTime start, Func<DateTime, DateTime> next)
    {
        try
        {
            next(start);
            return false;
        }
        catch (ArgumentOutOfRangeException)
        {
            return true;
        }
    }

    private static bool Int(ReadOnlySpan<char> s, int start, int length, out int value)
    {
        value = 0;
        if (start + length > s.Length)
        {
            return false;
        }

        var digits = s.Slice(start, length);
        foreach (var c in digits)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
