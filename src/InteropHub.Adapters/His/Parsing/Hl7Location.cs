using System.Globalization;
using System.Text;

namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// Where in a message something is: the HL7 v2.5 ERL data type used in ERR-2
/// (segment ID ^ segment sequence ^ field position ^ field repetition ^ component ^ subcomponent).
/// Zero means "not narrowed down to that level".
/// </summary>
public sealed record Hl7Location(string SegmentId, int Sequence = 1, int Field = 0, int Repetition = 0, int Component = 0,
    int Subcomponent = 0)
{
    /// <summary>The ERL value for ERR-2, e.g. <c>PID^1^3^2</c>; trailing empty levels are left out.</summary>
    public string ToErl()
    {
        int[] levels = [Sequence, Field, Repetition, Component, Subcomponent];
        var last = Array.FindLastIndex(levels, l => l > 0);
        var text = new StringBuilder(SegmentId);
        for (var i = 0; i <= last; i++)
        {
            text.Append('^');
            if (levels[i] > 0)
            {
                text.Append(levels[i].ToString(CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }

    /// <summary>An ERL value as <see cref="ToErl"/> writes it, or null when it is not one.</summary>
    public static Hl7Location? FromErl(string? erl)
    {
        var parts = (erl ?? "").Split('^');
        if (parts[0].Length != 3)
        {
            return null;
        }

        var levels = new int[5];
        for (var i = 1; i < parts.Length && i <= levels.Length; i++)
        {
            if (parts[i].Length > 0 && !int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out levels[i - 1]))
            {
                return null;
            }
        }

        return new Hl7Location(parts[0], levels[0] == 0 ? 1 : levels[0], levels[1], levels[2], levels[3], levels[4]);
    }

    /// <summary>The conventional short form used in messages to people, e.g. <c>PID-3</c> or <c>PID-3.4</c>.</summary>
    public override string ToString()
    {
        if (Field == 0)
        {
            return SegmentId;
        }

        var text = string.Create(CultureInfo.InvariantCulture, $"{SegmentId}-{Field}");
        if (Component > 0)
        {
            text += string.Create(CultureInfo.InvariantCulture, $".{Component}");
        }

        return Subcomponent > 0 ? text + string.Create(CultureInfo.InvariantCulture, $".{Subcomponent}") : text;
    }
}
