using System.Buffers;

namespace InteropHub.Server.Formatting;

/// <summary>
/// A response body written into arrays rented from the shared pool and returned when the response is sent. A
/// transaction-response or a searchset of a hundred resources is half a megabyte: written into fresh arrays that
/// double as they grow, every such response put about a megabyte and a half on the large-object heap, whose
/// collections (full, background) took a tenth of the hub's CPU under a load of transaction Bundles.
/// </summary>
public sealed class PooledJson : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;
    private int _written;

    public PooledJson(int sizeHint = 16384) => _buffer = ArrayPool<byte>.Shared.Rent(sizeHint);

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _written);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_written + count > _buffer.Length)
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _written = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Makes room after what is written for at least <paramref name="sizeHint"/> bytes (one when zero).</summary>
    private void Reserve(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
            _buffer.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
    }
}
