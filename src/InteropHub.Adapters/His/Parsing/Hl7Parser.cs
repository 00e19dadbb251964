using System.Globalization;
using System.Text;

namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// Parses one ER7-encoded HL7 v2 message from its raw bytes. The character set is read from MSH-18 in the raw
/// bytes (MSH-1…17 are ASCII in this profile) and the bytes are decoded before any splitting, because a
/// GB 18030 trail byte may equal a delimiter (his-hl7v2.md §2). Segments end at CR, LF or CRLF; empty lines are
/// ignored (§9). Z-segments are kept like any other segment; interpreting them is the mapper's business.
/// </summary>
public static class Hl7Parser
{
    private static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private static readonly Encoding StrictGb18030;

    static Hl7Parser()
    {
        // GB 18030 is not built into .NET; the code-page provider ships in the shared framework.
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        StrictGb18030 = Encoding.GetEncoding(54936, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
    }

    /// <summary>GB 18030 with exception fallbacks (for answers in the sender's character set).</summary>
    public static Encoding Gb18030 => StrictGb18030;

    /// <summary>
    /// MSH-10 of a message that cannot be parsed as a whole but whose first line is a readable MSH (a later segment
    /// broken, bytes not in its character set), so that its NAK still names it in MSA-2; null otherwise.
    /// </summary>
    public static string? PeekControlId(ReadOnlySpan<byte> bytes)
    {
        bytes = SkipPreamble(bytes);
        if (bytes.Length < 8 || !bytes.StartsWith("MSH"u8))
        {
            return null;
        }

        var headerEnd = bytes.IndexOfAny((byte)'\r', (byte)'\n');
        var header = headerEnd < 0 ? bytes : bytes[..headerEnd];
        if (header.ContainsAnyExceptInRange((byte)0x20, (byte)0x7E))
        {
            return null;
        }

        // MSH-1 is the field separator itself, so MSH-10 is the tenth part after "MSH".
        var fields = Encoding.ASCII.GetString(header).Split((char)header[3]);
        return fields.Length > 9 && fields[9].Trim() is { Length: > 0 } id ? id : null;
    }

    public static Hl7Message Parse(ReadOnlySpan<byte> bytes)
    {
        bytes = SkipPreamble(bytes);
        if (bytes.Length < 8 || !bytes.StartsWith("MSH"u8))
        {
            throw new Hl7ParseException("The message does not start with an MSH segment.", new Hl7Location("MSH"), 0);
        }

        var headerEnd = bytes.IndexOfAny((byte)'\r', (byte)'\n');
        var headerBytes = headerEnd < 0 ? bytes : bytes[..headerEnd];
        var header = ReadAsciiHeader(headerBytes);
        var syntax = ReadSyntax(header, bytes);

        var segments = new List<Hl7Segment>();
        var sequences = new Dictionary<string, int>(StringComparer.Ordinal);
        var rest = bytes;
        var lineNumber = 0;
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOfAny((byte)'\r', (byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (IsBlank(line))
            {
                continue;
            }

            lineNumber++;
            var text = Decode(line, syntax.Encoding, lineNumber, segments.Count + 1);
            segments.Add(ReadSegment(text, syntax, segments.Count + 1, sequences));
            if (segments.Count == 1 && segments[0].UndecodableEscapes().FirstOrDefault() is ({ } location, var sequence))
            {
                // The header is read by everything that answers or files the message: it must read as text.
                throw new Hl7ParseException(
                    $"{location} holds the escape {sequence}, whose bytes are not valid {syntax.Encoding.WebName}.", location, 1);
            }
        }

        return new Hl7Message(segments, syntax);
    }

    /// <summary>Maps an MSH-18 value to an encoding; null for an empty value (detected from the bytes instead).</summary>
    internal static Encoding? EncodingFor(string charset, out bool known)
    {
        known = true;
        var normalized = new string(charset.Where(char.IsLetterOrDigit).ToArray()).ToUpperInvariant();
        if (normalized.Length == 0)
        {
            return null;
        }

        if (normalized.Contains("UTF8", StringComparison.Ordinal) || normalized is "ASCII" or "USASCII")
        {
            return StrictUtf8;
        }

        // GBK and GB 2312 are subsets of GB 18030; the HIS sends all three spellings (his-hl7v2.md §2).
        if (normalized.Contains("18030", StringComparison.Ordinal) || normalized is "GBK" or "GB2312" or "CHINESEGB2312")
        {
            return StrictGb18030;
        }

        if (normalized is "88591" or "ISO88591")
        {
            return Encoding.Latin1;
        }

        known = false;
        return null;
    }

    private static ReadOnlySpan<byte> SkipPreamble(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith("\uFEFF"u8))
        {
            bytes = bytes[3..];
        }

        var i = 0;
        while (i < bytes.Length && bytes[i] is (byte)'\r' or (byte)'\n' or (byte)' ' or (byte)'\t')
        {
            i++;
        }

        return bytes[i..];
    }

    private static string[] ReadAsciiHeader(ReadOnlySpan<byte> header)
    {
        var separator = header[3];
        if (separator is < 0x21 or > 0x7E || char.IsAsciiLetterOrDigit((char)separator))
        {
            throw new Hl7ParseException("MSH-1 (field separator) is not a printable delimiter character.", new Hl7Location("MSH", 1, 1), 1);
        }

        var text = new StringBuilder(header.Length);
        foreach (var b in header)
        {
            // Only MSH-18 is read from this copy; a non-ASCII byte elsewhere in the header must not stop us here.
            text.Append(b < 0x80 ? (char)b : '?');
        }

        var fields = text.ToString().Split((char)separator);
        // Renumber so that index n is MSH-n: MSH-1 is the separator itself.
        return ["MSH", ((char)separator).ToString(), .. fields[1..]];
    }

    private static Hl7Syntax ReadSyntax(string[] header, ReadOnlySpan<byte> bytes)
    {
        var encodingCharacters = header.Length > 2 ? header[2] : "";
        var separator = header[1][0];
        if (encodingCharacters.Length is < 4 or > 5
            || encodingCharacters.Distinct().Count() != encodingCharacters.Length
            || encodingCharacters.Any(c => char.IsAsciiLetterOrDigit(c) || c == separator || c is ' ' or '?'))
        {
            throw new Hl7ParseException(
                $"MSH-2 (encoding characters) must be four distinct delimiter characters such as ^~\\&, not '{encodingCharacters}'.",
                new Hl7Location("MSH", 1, 2), 1);
        }

        var declared = header.Length > 18 ? header[18] : "";
        // MSH-18 repeats (the first repetition is the default character set) and has no components in v2.5.
        declared = declared.Split(encodingCharacters[1])[0].Split(encodingCharacters[0])[0].Trim();
        var encoding = EncodingFor(declared, out var known);
        if (!known)
        {
            throw new Hl7ParseException($"MSH-18 names the character set '{declared}', which this hub does not read.",
                new Hl7Location("MSH", 1, 18), 1);
        }

        string charset;
        if (encoding is null)
        {
            // No MSH-18: UTF-8 when the bytes are valid UTF-8, else GB 18030 (his-hl7v2.md §2).
            encoding = System.Text.Unicode.Utf8.IsValid(bytes) ? StrictUtf8 : StrictGb18030;
            charset = ReferenceEquals(encoding, StrictUtf8) ? "UNICODE UTF-8" : "GB 18030-2000";
        }
        else
        {
            charset = declared;
        }

        return new Hl7Syntax(separator, encodingCharacters[0], encodingCharacters[1], encodingCharacters[2], encodingCharacters[3],
            encoding, charset);
    }

    private static string Decode(ReadOnlySpan<byte> line, Encoding encoding, int lineNumber, int segmentIndex)
    {
        try
        {
            return encoding.GetString(line);
        }
        catch (DecoderFallbackException)
        {
            var id = line.Length >= 3 ? Encoding.ASCII.GetString(line[..3]) : "MSH";
            throw new Hl7ParseException(
                string.Create(CultureInfo.InvariantCulture,
                    $"Segment {segmentIndex} (line {lineNumber}) holds bytes that are not valid {encoding.WebName}; check MSH-18."),
                new Hl7Location(IsSegmentId(id) ? id : "MSH", 1, 0), segmentIndex);
        }
    }

    private static Hl7Segment ReadSegment(string text, Hl7Syntax syntax, int index, Dictionary<string, int> sequences)
    {
        var id = text.Length >= 3 ? text[..3] : text;
        if (!IsSegmentId(id) || (text.Length > 3 && text[3] != syntax.Field))
        {
            throw new Hl7ParseException(
                string.Create(CultureInfo.InvariantCulture,
                    $"Segment {index} does not start with a segment ID (three upper-case letters or digits) followed by '{syntax.Field}': '{Shorten(text)}'."),
                new Hl7Location(IsSegmentId(id) ? id : "MSH", 1, 0), index);
        }

        sequences[id] = sequences.GetValueOrDefault(id) + 1;
        if (index > 1 && id == "MSH")
        {
            // Two messages run together in one MLLP frame: answering for the first alone would lose the second unseen.
            throw new Hl7ParseException(
                string.Create(CultureInfo.InvariantCulture,
                    $"Segment {index} is a second MSH: a frame holds one message (his-hl7v2.md §1). Send each message in its own frame."),
                new Hl7Location("MSH", sequences[id]), index);
        }

        string[] fields;
        if (index == 1)
        {
            if (id != "MSH")
            {
                throw new Hl7ParseException("The message does not start with an MSH segment.", new Hl7Location("MSH"), 1);
            }

            var rest = text.Length > 4 ? text[4..].Split(syntax.Field) : [];
            fields = ["MSH", syntax.Field.ToString(), .. rest];
        }
        else
        {
            fields = text.Split(syntax.Field);
        }

        return new Hl7Segment(id, text, fields, index, sequences[id], syntax);
    }

    private static bool IsSegmentId(string id) =>
        id.Length == 3 && char.IsAsciiLetterUpper(id[0]) && char.IsAsciiLetterOrDigit(id[1]) && char.IsAsciiLetterOrDigit(id[2])
        && !char.IsAsciiLetterLower(id[1]) && !char.IsAsciiLetterLower(id[2]);

    private static bool IsBlank(ReadOnlySpan<byte> line)
    {
        foreach (var b in line)
        {
            if (b is not ((byte)' ' or (byte)'\t' or 0x1A))
            {
                return false;
            }
        }

        return true;
    }

    private static string Shorten(string text) => text.Length <= 20 ? text : text[..20] + "…";
}
