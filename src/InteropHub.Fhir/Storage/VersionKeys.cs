namespace InteropHub.Fhir.Storage;

/// <summary>
/// Time-ordered 64-bit version keys: microseconds since the Unix epoch shifted left 8 bits plus a sequence,
/// strictly increasing within the process. The key is the history primary key, the keyset-paging key and the
/// source of <c>meta.lastUpdated</c>, so ordering by key is ordering by time.
/// </summary>
public static class VersionKeys
{
    private static long _last;

    public static long Next(TimeProvider? clock = null)
    {
        var micros = ((clock ?? TimeProvider.System).GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        var candidate = micros << 8;
        while (true)
        {
            var last = Interlocked.Read(ref _last);
            var next = Math.Max(candidate, last + 1);
            if (Interlocked.CompareExchange(ref _last, next, last) == last)
            {
                return next;
            }
        }
    }

    /// <summary>The instant a key was issued, to millisecond precision (what <c>meta.lastUpdated</c> shows).</summary>
    public static DateTimeOffset ToInstant(long key)
    {
        var micros = key >> 8;
        var ticks = micros * 10;
        return DateTimeOffset.UnixEpoch.AddTicks(ticks - (ticks % TimeSpan.TicksPerMillisecond));
    }

    /// <summary>
    /// The smallest key issued at or after the instant. Past the last instant a key can hold (the year 4200 or so), the
    /// largest key, so a far-future <c>_since</c> or <c>_at</c> bound does not wrap around to a key in the past.
    /// </summary>
    public static long FromInstant(DateTimeOffset instant)
    {
        var micros = (instant - DateTimeOffset.UnixEpoch).Ticks / 10;
        return micros > long.MaxValue >> 8 ? long.MaxValue : micros << 8;
    }
}
