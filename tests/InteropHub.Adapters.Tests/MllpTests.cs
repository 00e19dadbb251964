using System.IO.Pipes;
using System.Text;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Mllp;

namespace InteropHub.Adapters.Tests;

public sealed class MllpTests
{
    private static readonly byte[] First = Encoding.UTF8.GetBytes("MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250101||ADT^A04|1|P|2.5\rPID|1||王秀英\r");
    private static readonly byte[] Second = Encoding.UTF8.GetBytes("MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250101||ADT^A04|2|P|2.5\r");

    private static List<MllpFrame> Decode(IEnumerable<byte[]> chunks, int max = 1 << 20)
    {
        var decoder = new MllpDecoder(max);
        var frames = new List<MllpFrame>();
        foreach (var chunk in chunks)
        {
            decoder.Feed(chunk, frames);
        }

        decoder.Complete(frames);
        return frames;
    }

    [Fact]
    public void A_frame_split_into_single_bytes_is_reassembled()
    {
        var framed = MllpStream.Frame(First);

        var frames = Decode(framed.Select(b => new[] { b }));

        var frame = Assert.Single(frames);
        Assert.Equal((MllpFrameKind.Message, First.Length), (frame.Kind, (int)frame.Length));
        Assert.Equal(First, frame.Bytes.ToArray());
    }

    [Fact]
    public void Concatenated_frames_in_one_read_are_separate_messages()
    {
        var frames = Decode([[.. MllpStream.Frame(First), .. MllpStream.Frame(Second), .. MllpStream.Frame(First)]]);

        Assert.Equal([First, Second, First], frames.Select(f => f.Bytes.ToArray()));
        Assert.All(frames, f => Assert.Equal(MllpFrameKind.Message, f.Kind));
    }

    [Fact]
    public void A_frame_ending_at_the_end_block_without_carriage_return_is_accepted()
    {
        byte[] withoutCr = [0x0B, .. First, 0x1C];

        var frames = Decode([[.. withoutCr, .. withoutCr], [.. MllpStream.Frame(Second)]]);

        Assert.Equal([First, First, Second], frames.Select(f => f.Bytes.ToArray()));
    }

    [Fact]
    public void Line_breaks_between_frames_are_ignored_and_other_bytes_reported_as_garbage()
    {
        var frames = Decode([[.. "\r\n"u8, .. MllpStream.Frame(First), .. "junk"u8], [.. MllpStream.Frame(Second)]]);

        Assert.Equal([MllpFrameKind.Message, MllpFrameKind.Garbage, MllpFrameKind.Message], frames.Select(f => f.Kind));
        Assert.Equal(4, frames[1].Length);
    }

    [Fact]
    public void An_oversize_frame_is_dropped_keeping_its_header_and_the_next_frame_still_arrives()
    {
        var big = new byte[10_000];
        Array.Fill(big, (byte)'A');
        byte[] oversize = [0x0B, .. First, .. big, 0x1C, 0x0D];

        var frames = Decode([.. oversize.Chunk(777), MllpStream.Frame(Second)], max: 5_000);

        Assert.Equal([MllpFrameKind.Oversize, MllpFrameKind.Message], frames.Select(f => f.Kind));
        Assert.Equal(First.Length + big.Length, frames[0].Length);
        Assert.Equal(MllpDecoder.OversizeKeptBytes, frames[0].Bytes.Length);
        Assert.Equal(First, frames[0].Bytes[..First.Length].ToArray());
        Assert.Equal(Second, frames[1].Bytes.ToArray());
    }

    [Fact]
    public void A_frame_cut_by_a_new_start_block_or_by_the_end_of_the_stream_is_truncated()
    {
        var frames = Decode([[0x0B, .. "MSH|partial"u8, .. MllpStream.Frame(Second), 0x0B, .. "MSH|lost"u8]]);

        Assert.Equal([MllpFrameKind.Truncated, MllpFrameKind.Message, MllpFrameKind.Truncated], frames.Select(f => f.Kind));
        Assert.Equal("MSH|partial"u8.ToArray(), frames[0].Bytes.ToArray());
    }

    [Fact]
    public async Task A_stream_yields_frames_as_they_arrive_and_null_when_the_peer_closes()
    {
        using var server = new AnonymousPipeServerStream(PipeDirection.In);
        using var client = new AnonymousPipeClientStream(PipeDirection.Out, server.ClientSafePipeHandle);
        var reader = new MllpStream(server, 1 << 20);
        var framed = MllpStream.Frame(First);

        await client.WriteAsync(framed.AsMemory(0, 10));
        var pending = reader.ReadAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        await client.WriteAsync(framed.AsMemory(10));
        await client.WriteAsync(MllpStream.Frame(Second));
        await client.FlushAsync();
        client.Close();

        Assert.Equal(First, (await pending)!.Bytes.ToArray());
        Assert.Equal(Second, (await reader.ReadAsync(CancellationToken.None))!.Bytes.ToArray());
        Assert.Null(await reader.ReadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Answers_are_written_framed()
    {
        using var output = new MemoryStream();
        var stream = new MllpStream(output, 1024);

        await stream.WriteAsync(Second, CancellationToken.None);

        Assert.Equal([0x0B, .. Second, 0x1C, 0x0D], output.ToArray());
    }

    [Fact]
    public void An_http_body_with_several_messages_separated_by_blank_lines_is_split_at_each_MSH()
    {
        byte[] body = [.. "\r\n"u8, .. First, .. "\r\n\r\n"u8, .. Second, .. "\n"u8, .. First];

        var messages = Hl7Body.Split(body, 1 << 20);

        Assert.Equal(3, messages.Count);
        Assert.All(messages, m => Assert.Equal((MllpFrameKind.Message, "MSH"), (m.Kind, Encoding.ASCII.GetString(m.Bytes.Span[..3]))));
        Assert.Equal("2", His.Parsing.Hl7Parser.Parse(messages[1].Bytes.Span).ControlId);
    }

    [Fact]
    public void An_http_body_with_MLLP_frames_is_split_by_frame()
    {
        var messages = Hl7Body.Split([.. MllpStream.Frame(First), .. MllpStream.Frame(Second)], 1 << 20);

        Assert.Equal([First, Second], messages.Select(m => m.Bytes.ToArray()));
    }

    [Fact]
    public void A_frame_cut_short_in_an_http_body_stays_a_truncated_frame_and_is_refused_AR_naming_where_it_ends()
    {
        // The first message stops inside PID-5 where the second frame starts; its bytes alone would parse.
        var cut = First[..^4];
        var frames = Hl7Body.Split([0x0B, .. cut, .. MllpStream.Frame(Second)], 1 << 20);

        Assert.Equal([MllpFrameKind.Truncated, MllpFrameKind.Message], frames.Select(f => f.Kind));
        var refused = MllpRefusal.Refuse(frames[0], 1 << 20, ordinal: 1);
        Assert.Equal(AckCode.AR, refused.AckCode);
        var error = Assert.Single(refused.Errors);
        Assert.Equal((RejectionReason.Malformed, 100, "PID^1^3"), (error.Reason, error.Hl7ErrorCode, error.Location!.ToErl()));
        Assert.Contains("第 1 个 MLLP 帧", error.Detail, StringComparison.Ordinal);
        var ack = Encoding.UTF8.GetString(MllpRefusal.Ack(refused, DateTimeOffset.UnixEpoch)).Split('\r');
        Assert.Equal("MSA|AR|1|消息无法解析", ack[1]);
        Assert.StartsWith("ERR||PID^1^3|100^", ack[2], StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_between_frames_without_its_start_block_is_a_garbage_frame_refused_AR_not_skipped()
    {
        byte[] body = [.. MllpStream.Frame(First), .. "\r\n"u8, .. Second, 0x1C, 0x0D, .. MllpStream.Frame(Second)];

        var frames = Hl7Body.Split(body, 1 << 20);

        Assert.Equal([MllpFrameKind.Message, MllpFrameKind.Garbage, MllpFrameKind.Message], frames.Select(f => f.Kind));
        var refused = MllpRefusal.Refuse(frames[1], 1 << 20, ordinal: 2);
        Assert.Equal((AckCode.AR, RejectionReason.Malformed), (refused.AckCode, Assert.Single(refused.Errors).Reason));
    }

    [Fact]
    public void An_oversize_frame_is_refused_AR_with_its_length_and_the_limit()
    {
        byte[] big = [0x0B, .. First, .. Enumerable.Repeat((byte)'A', 10_000), 0x1C, 0x0D];

        var frame = Assert.Single(Hl7Body.Split(big, 5_000));
        var refused = MllpRefusal.Refuse(frame, 5_000);

        Assert.Equal(MllpFrameKind.Oversize, frame.Kind);
        var error = Assert.Single(refused.Errors);
        Assert.Equal("MSH^1", error.Location!.ToErl());
        Assert.Contains("5000", error.Detail, StringComparison.Ordinal);
        Assert.Contains("MSA|AR|1|", Encoding.UTF8.GetString(MllpRefusal.Ack(refused, DateTimeOffset.UnixEpoch)), StringComparison.Ordinal);
    }
}
