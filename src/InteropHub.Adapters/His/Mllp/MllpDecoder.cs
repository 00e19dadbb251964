using System.Buffers;

namespace InteropHub.Adapters.His.Mllp;

/// <summary>
/// Incremental MLLP decoder (HL7 MLLP release 2: <c>0x0B</c> message <c>0x1C 0x0D</c>). It is fed whatever a
/// read returned, so a frame may be split across reads and one read may hold several frames. A frame also ends at
/// a bare <c>0x1C</c> (some HIS instances omit the final <c>0x0D</c>, his-hl7v2.md §1). Frames larger than the
/// limit are dropped without buffering them, keeping only their first bytes so the header can be answered.
/// </summary>
public sealed class MllpDecoder
{
    public const byte StartBlock = 0x0B;
    public const byte EndBlock = 0x1C;
    public const byte CarriageReturn = 0x0D;

    /// <summary>How much of an oversize frame is kept: enough for any MSH segment.</summary>
    public const int OversizeKeptBytes = 4096;

    private readonly int _maxMessageBytes;
    private readonly ArrayBufferWriter<byte> _frame = new();
    private State _state = State.Outside;
    private long _length;
    private long _garbage;

    public MllpDecoder(int maxMessageBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageBytes, 1);
        _maxMessageBytes = maxMessageBytes;
    }

    private enum State
    {
        Outside,
        AfterEndBlock,
        Inside,
        Discarding,
    }

    /// <summary>Consumes <paramref name="data"/> and appends every frame it completes to <paramref name="frames"/>.</summary>
    public void Feed(ReadOnlySpan<byte> data, ICollection<MllpFrame> frames)
    {
        var i = 0;
        while (i < data.Length)
        {
            var b = data[i];
            switch (_state)
            {
                case State.AfterEndBlock when b == CarriageReturn:
                    _state = State.Outside;
                    i++;
                    break;
                case State.AfterEndBlock:
                    _state = State.Outside;
                    break;
                case State.Outside:
                    if (b == StartBlock)
                    {
                        FlushGarbage(frames);
                        _state = State.Inside;
                        _frame.Clear();
                        _length = 0;
                    }
                    else if (b is not ((byte)'\r' or (byte)'\n' or (byte)' ' or (byte)'\t'))
                    {
                        _garbage++;
                    }

                    i++;
                    break;
                default:
                    i += ConsumeFrameBytes(data[i..], frames);
                    break;
            }
        }
    }

    /// <summary>Call at end of stream: reports a frame left open and garbage not yet reported.</summary>
    public void Complete(ICollection<MllpFrame> frames)
    {
        if (_state is State.Inside or State.Discarding)
        {
            frames.Add(new MllpFrame(MllpFrameKind.Truncated, _frame.WrittenSpan.ToArray(), _length));
            _frame.Clear();
        }

        _state = State.Outside;
        FlushGarbage(frames);
    }

    private int ConsumeFrameBytes(ReadOnlySpan<byte> data, ICollection<MllpFrame> frames)
    {
        var end = data.IndexOfAny(EndBlock, StartBlock);
        var chunk = end < 0 ? data : data[..end];
        Append(chunk);
        if (end < 0)
        {
            return data.Length;
        }

        if (data[end] == StartBlock)
        {
            // The sender started over without ending the frame: report what we had; the new frame starts here.
            frames.Add(new MllpFrame(MllpFrameKind.Truncated, _frame.WrittenSpan.ToArray(), _length));
            _frame.Clear();
            _length = 0;
            _state = State.Inside;
            return end + 1;
        }

        frames.Add(new MllpFrame(_state == State.Discarding ? MllpFrameKind.Oversize : MllpFrameKind.Message, _frame.WrittenSpan.ToArray(), _length));
        _frame.Clear();
        _state = State.AfterEndBlock;
        return end + 1;
    }

    private void Append(ReadOnlySpan<byte> chunk)
    {
        _length += chunk.Length;
        if (_state == State.Inside && _length > _maxMessageBytes)
        {
            _state = State.Discarding;
            if (_frame.WrittenCount > OversizeKeptBytes)
            {
                var kept = _frame.WrittenSpan[..OversizeKeptBytes].ToArray();
                _frame.Clear();
                _frame.Write(kept);
            }
        }

        if (_state == State.Inside)
        {
            _frame.Write(chunk);
            return;
        }

        // Oversize: keep only the first bytes (they hold the MSH), drop the rest as it arrives.
        var room = OversizeKeptBytes - _frame.WrittenCount;
        if (room > 0)
        {
            _frame.Write(chunk[..Math.Min(room, chunk.Length)]);
        }
    }

    private void FlushGarbage(ICollection<MllpFrame> frames)
    {
        if (_garbage > 0)
        {
            frames.Add(new MllpFrame(MllpFrameKind.Garbage, ReadOnlyMemory<byte>.Empty, _garbage));
            _garbage = 0;
        }
    }
}
