namespace InteropHub.Adapters.His.Mllp;

/// <summary>Reads MLLP frames from a stream (a TCP connection) and writes framed answers to it.</summary>
public sealed class MllpStream
{
    private readonly Stream _stream;
    private readonly MllpDecoder _decoder;
    private readonly Queue<MllpFrame> _ready = new();
    private readonly List<MllpFrame> _found = [];
    private readonly byte[] _buffer = new byte[16 * 1024];
    private bool _ended;

    public MllpStream(Stream stream, int maxMessageBytes)
    {
        _stream = stream;
        _decoder = new MllpDecoder(maxMessageBytes);
    }

    /// <summary>The next frame, or null once the peer has closed the connection and everything was reported.</summary>
    public async ValueTask<MllpFrame?> ReadAsync(CancellationToken cancellationToken)
    {
        while (_ready.Count == 0 && !_ended)
        {
            var read = await _stream.ReadAsync(_buffer, cancellationToken);
            _found.Clear();
            if (read == 0)
            {
                _ended = true;
                _decoder.Complete(_found);
            }
            else
            {
                _decoder.Feed(_buffer.AsSpan(0, read), _found);
            }

            foreach (var frame in _found)
            {
                _ready.Enqueue(frame);
            }
        }

        return _ready.Count > 0 ? _ready.Dequeue() : null;
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(Frame(message.Span), cancellationToken);
        await _stream.FlushAsync(cancellationToken);
    }

    /// <summary>Wraps a message in a start block and an end block followed by a carriage return.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> message)
    {
        var framed = new byte[message.Length + 3];
        framed[0] = MllpDecoder.StartBlock;
        message.CopyTo(framed.AsSpan(1));
        framed[^2] = MllpDecoder.EndBlock;
        framed[^1] = MllpDecoder.CarriageReturn;
        return framed;
    }
}
