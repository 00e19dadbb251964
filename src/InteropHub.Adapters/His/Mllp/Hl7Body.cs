namespace InteropHub.Adapters.His.Mllp;

/// <summary>
/// Splits an HTTP body into messages: MLLP frames when the body holds a start block, else one message per MSH
/// segment (messages separated by blank lines or simply following each other), each a frame of kind
/// <see cref="MllpFrameKind.Message"/>. Splitting the raw bytes at line ends is safe in UTF-8 and GB 18030, where
/// CR and LF never occur inside a character.
/// </summary>
public static class Hl7Body
{
    /// <summary>
    /// The body's messages in order. Truncated and oversize frames, and bytes outside any frame other than line breaks
    /// and spaces (a message sent without its start block, say), are returned as such, for the caller to refuse
    /// (<see cref="MllpRefusal"/>) as the MLLP listener does: the bytes of a frame cut short may well parse as a
    /// message that lacks its end, and unframed bytes silently skipped would be a message lost.
    /// </summary>
    public static IReadOnlyList<MllpFrame> Split(ReadOnlySpan<byte> body, int maxMessageBytes)
    {
        if (body.IndexOf(MllpDecoder.StartBlock) >= 0)
        {
            var decoder = new MllpDecoder(maxMessageBytes);
            var frames = new List<MllpFrame>();
            decoder.Feed(body, frames);
            decoder.Complete(frames);
            return frames;
        }

        var messages = new List<MllpFrame>();
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
                    messages.Add(Whole(body[start..position]));
                }

                start = position;
            }

            position = end < 0 ? body.Length : lineEnd + 1;
        }

        if (start >= 0)
        {
            messages.Add(Whole(body[start..]));
        }
        else if (!body.Trim("\r\n \t"u8).IsEmpty)
        {
            // No MSH at all: one "message" that the parser will refuse with a reason.
            messages.Add(Whole(body));
        }

        return messages;
    }

    private static MllpFrame Whole(ReadOnlySpan<byte> message) => new(MllpFrameKind.Message, message.ToArray(), message.Length);
}
