namespace InteropHub.Fhir.BulkData.Import;

/// <summary>A line of an NDJSON input: its 1-based number, the byte offset just after it, and its bytes (no line break).</summary>
internal sealed record RawLine(long Number, long EndOffset, byte[] Bytes);

/// <summary>
/// Reads an NDJSON stream line by line, counting lines and bytes, so a batch's position can be stored and an import
/// resumed exactly after it: a file is reopened at the byte offset, a stream that cannot seek (a URL) is read again
/// and the lines up to the position are skipped.
/// </summary>
internal sealed class NdjsonLines(Stream stream, long line, long offset, long skipThrough = 0)
{
    /// <summary>A line longer than this is not a resource anyone means to import.</summary>
    private const int MaxLineBytes = 256 * 1024 * 1024;

    private byte[] _buffer = new byte[1 << 20];
    private int _start;
    private int _end;
    private bool _eof;

    /// <summary>Up to <paramref name="max"/> lines; none at the end of the stream.</summary>
    public async Task<IReadOnlyList<RawLine>> ReadAsync(int max, CancellationToken ct)
    {
        var lines = new List<RawLine>();
        while (lines.Count < max)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            int length, consumed;
            if (newline >= 0)
            {
                length = newline - _start;
                consumed = length + 1;
            }
            else if (_eof)
            {
                if (_start == _end)
                {
                    break;
                }

                length = consumed = _end - _start;
            }
            else
            {
                await FillAsync(ct);
                continue;
            }

            var bytes = _buffer.AsSpan(_start, length);
            if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
            {
                bytes = bytes[..^1];
            }

            line++;
            offset += consumed;
            _start += consumed;
            if (line > skipThrough)
            {
                lines.Add(new RawLine(line, offset, bytes.ToArray()));
            }
        }

        return lines;
    }

    private async Task FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            if (_buffer.Length >= MaxLineBytes)
            {
                throw new InvalidDataException($"Line {line + 1} is longer than {MaxLineBytes / (1024 * 1024)} MiB.");
            }

            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        var read = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
        _end += read;
        _eof = read == 0;
    }
}
