using System.Diagnostics;


/// <summary>
/// CPU time spent by the hub, by PostgreSQL (every process of this machine named <c>postgres</c>: backends, autovacuum,
/// WAL writer) and by the load generator (this process) between <see cref="Start"/> and <see cref="Stop"/>. This
/// machine's speed drifts by a fifth from one quarter-hour to the next, so throughput alone hides a change of a
/// tenth; the CPU each message costs moves much less, and says on which side of the connection it moved. Linux only
/// for PostgreSQL (read from /proc); a server on another machine counts as zero.
/// </summary>
internal sealed class CpuMeter
{
    private readonly int _hubPid;
    private (TimeSpan Hub, TimeSpan Postgres, TimeSpan Self) _start;
    private (TimeSpan Hub, TimeSpan Postgres, TimeSpan Self) _spent;

    /// <summary>USER_HZ, which Linux fixes at 100 for /proc whatever the kernel's own tick.</summary>
    private const int ClockTicksPerSecond = 100;

    private CpuMeter(int hubPid) => _hubPid = hubPid;

    public static CpuMeter Start(int hubPid)
    {
        var meter = new CpuMeter(hubPid);
        meter._start = meter.Sample();
        return meter;
    }

    public void Stop()
    {
        var end = Sample();
        _spent = (end.Hub - _start.Hub, end.Postgres - _start.Postgres, end.Self - _start.Self);
    }

    /// <summary>"hub 1.10 ms, PostgreSQL 1.17 ms, load generator 0.20 ms" per one of <paramref name="count"/> units.</summary>
    public string PerUnit(long count, string server = "hub")
    {
        string Per(TimeSpan spent) => count == 0 ? "-" : $"{spent.TotalMilliseconds / count:F3} ms";
        return $"{server} {Per(_spent.Hub)}, PostgreSQL {Per(_spent.Postgres)}, load generator {Per(_spent.Self)}";
    }

    private (TimeSpan Hub, TimeSpan Postgres, TimeSpan Self) Sample()
    {
        using var hub = Process.GetProcessById(_hubPid);
        using var self = Process.GetCurrentProcess();
        // Read from /proc (Linux): a PostgreSQL process renames itself ("postgres: user db …"), which hides it from
        // Process.GetProcessesByName; the command in /proc/<pid>/stat keeps the executable's name.
        var postgres = TimeSpan.Zero;
        foreach (var stat in Directory.Exists("/proc") ? Directory.EnumerateDirectories("/proc").Select(d => Path.Combine(d, "stat")) : [])
        {
            string text;
            try
            {
                text = File.ReadAllText(stat);
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            var close = text.LastIndexOf(')');
            if (close < 0 || !text.AsSpan(0, close).EndsWith("(postgres", StringComparison.Ordinal))
            {
                continue;
            }

            // After the command: state, ppid, … utime is the 14th field of the line and stime the 15th, in clock ticks.
            var fields = text[(close + 2)..].Split(' ');
            postgres += TimeSpan.FromSeconds((long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture)
                + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / (double)ClockTicksPerSecond);
        }

        return (hub.TotalProcessorTime, postgres, self.TotalProcessorTime);
    }
}
