using System.Globalization;
using System.Text;

namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// The delimiters a message declares in MSH-1 and MSH-2 and the character set it was decoded with (MSH-18).
/// Escape sequences are resolved here (HL7 v2.5 §2.7): <c>\F\ \S\ \T\ \R\ \E\</c>, <c>\Xhh…\</c> (bytes in the
/// message's character set), <c>\.br\</c> (line break); highlighting and character-set switches are dropped.
/// </summary>
public sealed class Hl7Syntax
{
    public static readonly Hl7Syntax Default = new('|', '^', '~', '\\', '&', new UTF8Encoding(false), "UNICODE UTF-8");

    public Hl7Syntax(char field, char component, char repetition, char escape, char subcomponent, Encoding encoding, string charset)
    {
        Field = field;
        Component = component;
        Repetition = repetition;
        Escape = escape;
        Subcomponent = subcomponent;
        Encoding = encoding;
        Charset = charset;
    }

    public char Field { get; }

    public char Component { get; }

    public char Repetition { get; }

    public char Escape { get; }

    public char Subcomponent { get; }

    /// <summary>The encoding the message text was decoded with; answers are encoded the same way (his-hl7v2.md §7).</summary>
    public Encoding Encoding { get; }

    /// <summary>MSH-18 as it should be echoed in an answer (the declared value, or the one that was detected).</summary>
    public string Charset { get; }

    public string EncodingCharacters => string.Concat(Component, Repetition, Escape, Subcomponent);

    /// <summary>Resolves the escape sequences of a leaf value (a component or subcomponent, or a whole TX/FT field).</summary>
    public string Unescape(string raw)
    {
        var start = raw.IndexOf(Escape, StringComparison.Ordinal);
        if (start < 0)
        {
            return raw;
        }

        var text = new StringBuilder(raw.Length);
        text.Append(raw, 0, start);
        var i = start;
        while (i < raw.Length)
        {
            var c = raw[i];
            if (c != Escape)
            {
                text.Append(c);
                i++;
                continue;
            }

            var end = raw.IndexOf(Escape, i + 1);
            if (end < 0)
            {
                // A lone escape character with no closing one is data, not a sequence (robustness, §9).
                text.Append(raw, i, raw.Length - i);
                break;
            }

            AppendSequence(raw.AsSpan(i + 1, end - i - 1), text, raw, i, end);
            i = end + 1;
        }

        return text.ToString();
    }

    /// <summary>
    /// Escapes the delimiters in text written into a field of an answer. In a free-text field (<paramref name="freeText"/>:
    /// ST/TX such as MSA-3 and ERR-8) component and subcomponent characters have no structural meaning and are
    /// left as they are, as in the county's printed answers (his-hl7v2.md §7: <c>MDM^T02 不在接口范围内</c>).
    /// </summary>
    public string EscapeText(string text, bool freeText = false)
    {
        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (c == Escape)
            {
                escaped.Append(Escape).Append('E').Append(Escape);
            }
            else if (c == Field)
            {
                escaped.Append(Escape).Append('F').Append(Escape);
            }
            else if (c == Component && !freeText)
            {
                escaped.Append(Escape).Append('S').Append(Escape);
            }
            else if (c == Subcomponent && !freeText)
            {
                escaped.Append(Escape).Append('T').Append(Escape);
            }
            else if (c == Repetition)
            {
                escaped.Append(Escape).Append('R').Append(Escape);
            }
            else if (c is '\r' or '\n')
            {
                escaped.Append(Escape).Append(".br").Append(Escape);
            }
            else
            {
                escaped.Append(c);
            }
        }

        return escaped.ToString();
    }

    private void AppendSequence(ReadOnlySpan<char> sequence, StringBuilder text, string raw, int start, int end)
    {
        switch (sequence)
        {
            case "F":
                text.Append(Field);
                return;
            case "S":
                text.Append(Component);
                return;
            case "T":
                text.Append(Subcomponent);
                return;
            case "R":
                text.Append(Repetition);
                return;
            case "E":
                text.Append(Escape);
                return;
            case ".br":
                text.Append('\n');
                return;
            case "H" or "N":
                // Start/end highlighting: presentation only.
                return;
        }

        if (sequence.Length > 1 && sequence[0] == 'X' && TryHex(sequence[1..], out var bytes))
        {
            // Bytes that are no text in the message's character set are refused before mapping (Hl7Segment.UndecodableEscapes);
            // should one still get here, it is kept as sent, like a sequence this profile does not know.
            if (TryDecode(bytes, out var decoded))
            {
                text.Append(decoded);
            }
            else
            {
                text.Append(raw, start, end - start + 1);
            }

            return;
        }

        if (sequence.Length > 0 && sequence[0] is 'C' or 'M' or 'Z' or '.')
        {
            // Character-set switches, locally defined escapes and other formatting commands carry no text.
            return;
        }

        // Not an escape sequence this profile knows: keep the characters as sent rather than lose data.
        text.Append(raw, start, end - start + 1);
    }

    /// <summary>
    /// The first <c>\Xhh…\</c> sequence of a leaf value whose bytes are no text in the message's character set (e.g.
    /// <c>\XFF\</c> in UTF-8), as sent; null when there is none. Sequences are paired as <see cref="Unescape"/> pairs them.
    /// </summary>
    public string? FindUndecodableHex(string raw)
    {
        var start = raw.IndexOf(Escape, StringComparison.Ordinal);
        while (start >= 0)
        {
            var end = raw.IndexOf(Escape, start + 1);
            if (end < 0)
            {
                return null;
            }

            var sequence = raw.AsSpan(start + 1, end - start - 1);
            if (sequence.Length > 1 && sequence[0] == 'X' && TryHex(sequence[1..], out var bytes) && !TryDecode(bytes, out _))
            {
                return raw[start..(end + 1)];
            }

            start = raw.IndexOf(Escape, end + 1);
        }

        return null;
    }

    private bool TryDecode(byte[] bytes, out string text)
    {
        try
        {
            text = Encoding.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    private static bool TryHex(ReadOnlySpan<char> hex, out byte[] bytes)
    {
        bytes = [];
        if (hex.Length % 2 != 0)
        {
            return false;
        }

        var result = new byte[hex.Length / 2];
        for (var i = 0; i < result.Length; i++)
        {
            if (!byte.TryParse(hex.Slice(i * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out result[i]))
            {
                return false;
            }
        }

        bytes = result;
        return true;
    }
}
