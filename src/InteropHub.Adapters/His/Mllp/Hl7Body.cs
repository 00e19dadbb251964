namespace InteropHub.Adapters.His.Mllp;

/// <summary>
/// Splits an HTTP body into messages: MLLP-framed messages when the body holds a start block, else one message
/// per MSH segment (messages separated by blank lines or simply following each other). Splitting the raw bytes at
/// line ends is safe in UTF-8 and GB 18030, where CR and LF never occur inside a character.
/// </summary>
public static class Hl7Body
{
    public static IReadOnlyList<byte[]> Split(ReadOnlySpan<byte> body, int maxMessageBytes)
    {
        if (body.IndexOf(MllpDecoder.StartBlock) >= 0)
        {
            var decoder = new MllpDecoder(maxMessageBytes);
            var frames = new List<MllpFrame>();
            decoder.Feed(body, frames);
            decoder.Complete(frames);
            // Oversize and truncated frames are passed on too: the parser answers them with a located AR.
            return [.. frames.Where(f => f.Kind != MllpFrameKind.Garbage).Select(f => f.Bytes.ToArray())];
        }

        var messages = new List<byte[]>();
        var start = -1;
        var position = 0;
        while (position < body.Length)
        {
            var end = body[position..].IndexOfAny((byte)'\r', (byte)'\n');
            var lineEnd = end < 0 ? body.Length : position + end;
            var line = body[position..lineEnd];
            if (line.StartsWith("\uFEFF"u8))
            {
                line = line[3..];
            }

            if (line.StartsWith("MSH"u8))
            {
                if (start >= 0)
                {
                    messages.Add(body[start..position].ToArray());
                }

                start = position;
            }

            position = end < 0 ? body.Length : lineEnd + 1;
        }

        if (start >= 0)
        {
            messages.Add(body[start..].ToArray());
        }
        else if (!body.Trim("\r\n \t"u8).IsEmpty)
        {
            // No MSH at all: one "message" that the parser will refuse with a reason.
            messages.Add(body.ToArray());
        }

        return messages;
    }
}
