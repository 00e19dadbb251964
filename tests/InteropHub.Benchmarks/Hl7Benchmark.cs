using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Testing;

/// <summary>
/// HL7 v2 ADT messages per second end to end over MLLP (stored in the inbox, mapped, committed, ACKed) with N
/// concurrent connections (issue 5: target ≥ 1,000/s on PostgreSQL with 4). Messages come from a deterministic
/// generator: ADT^A04 registrations of distinct patients (MRN and control ID from a counter) at the county
/// hospital. Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks -- hl7 [--store postgres|sqlite]
/// [--connections 4] [--seconds 10]
/// </summary>
internal static class Hl7Benchmark
{
    public static async Task RunAsync(string[] args)
    {
        string Value(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var storeName = Value("--store", "postgres");
        var connections = int.Parse(Value("--connections", "4"), CultureInfo.InvariantCulture);
        var seconds = int.Parse(Value("--seconds", "10"), CultureInfo.InvariantCulture);
        var seeds = Directory.CreateTempSubdirectory("interophub-hl7-bench-seeds-");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "seeds", "organizations.json"), Path.Combine(seeds.FullName, "organizations.json"));
        var port = FreePort();
        var environment = new Dictionary<string, string?>
        {
            ["InteropHub__Seeds__Load"] = "true",
            ["InteropHub__Seeds__Path"] = seeds.FullName,
            ["InteropHub__Mllp__Port"] = port.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
        };
        if (storeName == "postgres")
        {
            environment["InteropHub__Storage__Provider"] = "Postgres";
            environment["ConnectionStrings__Postgres"] = Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_POSTGRES")
                ?? await PostgresCluster.CreateDatabaseAsync("hl7bench");
        }
        else
        {
            environment["InteropHub__Storage__Provider"] = "Sqlite";
            environment["InteropHub__Storage__Sqlite__Path"] = Path.Combine(Directory.CreateTempSubdirectory("interophub-hl7-bench-").FullName, "hub.db");
        }

        using var hub = await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata", Console.Error.WriteLine);
        var counter = 0;
        long accepted = 0, refused = 0;
        var latencies = new List<double>[connections];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async c =>
        {
            latencies[c] = [];
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            var mllp = new MllpStream(tcp.GetStream(), 1 << 20);
            while (!stop.IsCancellationRequested)
            {
                var message = Generate(Interlocked.Increment(ref counter));
                var started = Stopwatch.GetTimestamp();
                await mllp.WriteAsync(message, CancellationToken.None);
                var ack = await mllp.ReadAsync(CancellationToken.None) ?? throw new InvalidOperationException("The hub closed the connection.");
                latencies[c].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (Encoding.UTF8.GetString(ack.Bytes.Span).Contains("MSA|AA|", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref accepted);
                }
                else
                {
                    Interlocked.Increment(ref refused);
                }
            }
        }));
        clock.Stop();
        var all = latencies.SelectMany(l => l).Order().ToList();
        Console.WriteLine($"HL7 v2 ADT^A04 over MLLP, {storeName}, {connections} connections, {clock.Elapsed.TotalSeconds:F1} s: " +
            $"{accepted / clock.Elapsed.TotalSeconds:F0} AA messages/s ({accepted} AA, {refused} not AA); " +
            $"latency p50 {all[all.Count / 2]:F1} ms, p99 {all[Math.Min(all.Count - 1, all.Count * 99 / 100)]:F1} ms");
        seeds.Delete(recursive: true);
    }

    /// <summary>Message n: a new patient (MRN and name from n) registered at the county hospital.</summary>
    public static byte[] Generate(int n)
    {
        var mrn = (7_000_000 + n).ToString("D10", CultureInfo.InvariantCulture);
        var time = new DateTime(2025, 1, 1, 8, 0, 0, DateTimeKind.Unspecified).AddSeconds(n).ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        var text = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|{time}||ADT^A04^ADT_A01|BENCH-{n:D9}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r" +
            $"EVN|A04|{time}\r" +
            $"PID|1||{mrn}^^^QX2100012^MR||测试{n}||19700101|1||01^汉族^GB3304|沙坪村1组^白沙镇^清源市^江西省^^CHN^H^^369921\r" +
            $"PV1|1|O|0307^^^QX2100012^^^^^内分泌科|R|||D0155^许文涛||||||||||||MZ{n:D12}^^^QX2100012&2.16.156.10011.1.11&ISO^VN|||||||||||||||||||||||||{time}\r";
        return Encoding.UTF8.GetBytes(text);
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
