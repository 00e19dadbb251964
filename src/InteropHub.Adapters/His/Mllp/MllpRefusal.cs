using System.Globalization;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.His.Mllp;

/// <summary>
/// The answer to an MLLP frame that is not a whole message, over a TCP connection or inside an HTTP body alike: a
/// frame cut short (a new start block, or the end of the stream, before its end block), one over the size limit, or
/// bytes outside any frame. Such bytes are never stored nor applied: AR <c>MALFORMED</c> (his-hl7v2.md §7, framing),
/// whose ERR says what was wrong and where (the segment and field a cut frame ends in), and whose MSA-2 names the
/// message when its MSH was readable. A cut frame may still parse (it ends at a segment or field boundary as often as
/// not), so the parser alone cannot be trusted to refuse it.
/// </summary>
public static class MllpRefusal
{
    /// <param name="ordinal">The frame's 1-based position in an HTTP body holding several, for the message to people; null on a connection.</param>
    public static HisRejected Refuse(MllpFrame frame, int maxMessageBytes, int? ordinal = null)
    {
        if (frame.Kind == MllpFrameKind.Message)
        {
            throw new ArgumentException("A whole message is processed, not refused.", nameof(frame));
        }

        var which = ordinal is { } n ? string.Create(CultureInfo.InvariantCulture, $"第 {n} 个 MLLP 帧") : "MLLP 帧";
        var length = frame.Length.ToString(CultureInfo.InvariantCulture);
        Hl7Message? kept = null;
        try
        {
            kept = frame.Bytes.IsEmpty ? null : Hl7Parser.Parse(frame.Bytes.Span);
        }
        catch (Hl7ParseException)
        {
            // The kept bytes do not even parse: MSA-2 comes from the first line when it is readable.
        }

        var (location, detail) = frame.Kind switch
        {
            MllpFrameKind.Oversize => (new Hl7Location("MSH"),
                $"{which}长度 {length} 字节超过上限 {maxMessageBytes.ToString(CultureInfo.InvariantCulture)} 字节，未保存"),
            MllpFrameKind.Truncated => CutAt(kept, which, length),
            _ => (null, $"{which}之外有 {length} 个无法识别的字节(应为 0x0B 消息 0x1C 0x0D)，已忽略"),
        };
        return new HisRejected(kept, AckCode.AR, [new HisIssue(RejectionReason.Malformed, location, detail, IssueSeverity.Error, 100)])
        {
            UnreadControlId = kept is null ? Hl7Parser.PeekControlId(frame.Bytes.Span) : null,
        };
    }

    /// <summary>
    /// An HTTP body's message that does not begin with MSH: no HL7 message, so nothing to key it by or replay. AR
    /// <c>MALFORMED</c>, not stored, so a body of junk frames cannot fill the dead letters.
    /// </summary>
    public static HisRejected NotAMessage(int? ordinal) =>
        new(null, AckCode.AR, [new HisIssue(RejectionReason.Malformed, new Hl7Location("MSH"),
            $"{(ordinal is { } n ? string.Create(CultureInfo.InvariantCulture, $"第 {n} 条消息") : "消息")}不以 MSH 段开头，不是 HL7 v2 消息，未保存",
            IssueSeverity.Error, 100)]);

    /// <summary>The AR for <see cref="Refuse"/>, encoded in the character set of the refused message when its MSH was readable.</summary>
    public static byte[] Ack(HisRejected refused, DateTimeOffset time) =>
        Hl7Ack.Encode(Hl7Ack.Build(refused.Message, refused.AckCode, refused.Errors, Hl7Ack.NewControlId(null), time,
            unreadControlId: refused.UnreadControlId), refused.Message);

    private static (Hl7Location?, string) CutAt(Hl7Message? kept, string which, string length)
    {
        if (kept is null)
        {
            return (new Hl7Location("MSH"), $"{which}在结束符 0x1C 之前中断({length} 字节)，消息头无法读取，未保存");
        }

        // The last field of the last segment is where the bytes stop: the sender's value there is incomplete.
        var last = kept.Segments[^1];
        var field = Math.Max(last.FieldCount, 1);
        var location = last.Location(field);
        return (location, $"{which}在结束符 0x1C 之前中断({length} 字节，断在 {location})，消息不完整，未保存");
    }
}
