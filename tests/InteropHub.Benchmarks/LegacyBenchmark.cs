using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Testing;

/// <summary>
/// The legacy adapters end to end, on data from the deterministic generator (<see cref="LegacyData"/>), with only
/// the organisations seeded (issue 5):
/// <list type="bullet">
/// <item><c>hl7</c>: ADT^A04 messages per second over MLLP (stored in the inbox, mapped, committed, ACKed) with N
/// concurrent connections, one message in flight each; target ≥ 1,000/s on PostgreSQL with 4. The rate and the CPU are
/// taken over the last three quarters of the run (the first quarter compiles the hub's code); the whole run's rate too.</item>
/// <item><c>township</c>: one batch of 2 × N rows (N residents and a vaccination each) posted as a zip; rows/s
/// from upload to the batch's answer (every row applied); target ≥ 5,000 rows/s for 100,000 rows. A warm-up batch
/// of other persons (2 × W rows) goes first, its figures printed as well.</item>
/// </list>
/// Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks -- hl7 [--store postgres|sqlite]
/// [--connections 4] [--seconds 10]; … -- township [--store postgres|sqlite] [--residents 50000] [--warmup 5000]
/// </summary>
internal static class LegacyBenchmark
{
    public static async Task RunHl7Async(string[] args)
    {
        var storeName = Value(args, "--store", "postgres");
        var connections = int.Parse(Value(args, "--connections", "4"), CultureInfo.InvariantCulture);
        var seconds = int.Parse(Value(args, "--seconds", "10"), CultureInfo.InvariantCulture);
        var port = FreePort();
        using var hub = await StartHubAsync(storeName, port);
        var counter = 0;
        long accepted = 0, refused = 0;
        var latencies = new List<double>[connections];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var clock = Stopwatch.StartNew();
        // The CPU is counted from a quarter of the run on, once the hub's code is compiled and its pools are full.
        var metered = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(seconds / 4.0));
            return (Meter: CpuMeter.Start(hub.Pid), Count: Interlocked.Read(ref accepted) + Interlocked.Read(ref refused),
                Accepted: Interlocked.Read(ref accepted), At: clock.Elapsed);
        });
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async c =>
        {
            latencies[c] = [];
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            var mllp = new MllpStream(tcp.GetStream(), 1 << 20);
            while (!stop.IsCancellationRequested)
            {
                var message = LegacyData.Hl7Registration(Interlocked.Increment(ref counter));
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
        var (cpu, before, acceptedBefore, from) = await metered;
        cpu.Stop();
        var all = latencies.SelectMany(l => l).Order().ToList();
        // The rate is taken over the same three quarters as the CPU, once the hub's code is compiled; the whole run's too.
        Console.WriteLine($"HL7 v2 ADT^A04 over MLLP, {storeName}, {connections} connections, {clock.Elapsed.TotalSeconds:F1} s: " +
            $"{(accepted - acceptedBefore) / (clock.Elapsed - from).TotalSeconds:F0} AA messages/s over the last three quarters " +
            $"({accepted / clock.Elapsed.TotalSeconds:F0}/s over the whole run; {accepted} AA, {refused} not AA); " +
            $"latency p50 {all[all.Count / 2]:F1} ms, p99 {all[Math.Min(all.Count - 1, all.Count * 99 / 100)]:F1} ms");
        using var client = new HttpClient { BaseAddress = hub.BaseAddress };
        var shared = JsonDocument.Parse(await client.GetStringAsync(new Uri("/adapters/status", UriKind.Relative))).RootElement.GetProperty("hisSharedTransactions");
        Console.WriteLine($"  CPU per message over the last three quarters: {cpu.PerUnit(accepted + refused - before)}");
        Console.WriteLine($"  group commit: {shared.GetProperty("messages").GetInt64()} messages in {shared.GetProperty("transactions").GetInt64()} shared transactions " +
            $"({shared.GetProperty("failed").GetInt64()} failed); the others alone");
    }

    public static async Task RunTownshipAsync(string[] args)
    {
        var storeName = Value(args, "--store", "postgres");
        var residents = int.Parse(Value(args, "--residents", "50000"), CultureInfo.InvariantCulture);
        var warmup = int.Parse(Value(args, "--warmup", "5000"), CultureInfo.InvariantCulture);
        var zip = LegacyData.TownshipBatch(first: 1, residents);
        using var hub = await StartHubAsync(storeName, mllpPort: 0, maxBodyBytes: zip.Length * 2L);
        using var client = new HttpClient { BaseAddress = hub.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };

        // A first batch of other persons on the fresh hub: its code is compiled and tiered up before the measured one,
        // as in a hub that has been running (a cold hub's first batch is printed too). The generator numbers health
        // records within one village (100,000), so the warm-up takes persons after the measured ones.
        warmup = Math.Min(warmup, 100_000 - residents);
        if (warmup > 0)
        {
            await PostTownshipAsync(client, hub, storeName, LegacyData.TownshipBatch(first: residents + 1, warmup), "warm-up");
        }

        await PostTownshipAsync(client, hub, storeName, zip, "measured");
    }

    private static async Task PostTownshipAsync(HttpClient client, ChildProcess hub, string storeName, byte[] zip, string label)
    {
        using var content = new ByteArrayContent(zip);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/zip");
        var cpu = CpuMeter.Start(hub.Pid);
        var clock = Stopwatch.StartNew();
        var response = await client.PostAsync(new Uri("/adapters/township/batches", UriKind.Relative), content);
        clock.Stop();
        cpu.Stop();

        var batch = JsonDocument.Parse(await client.GetStringAsync(response.Headers.Location)).RootElement;
        var summary = batch.GetProperty("outcome").GetProperty("issue").EnumerateArray().First().GetProperty("diagnostics").GetString();
        var rows = int.Parse(summary!.Split(" of ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        Console.WriteLine($"Township batch ({label}), {storeName}, {rows} rows ({zip.Length / 1024} KiB zip), {(int)response.StatusCode} " +
            $"{batch.GetProperty("status").GetString()} in {clock.Elapsed.TotalSeconds:F1} s: {rows / clock.Elapsed.TotalSeconds:F0} rows/s ({summary})");
        Console.WriteLine($"  CPU per row: {cpu.PerUnit(rows)}");
    }

    private static string Value(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    /// <summary>The hub's own binary on a new database with the demo organisations only.</summary>
    private static async Task<ChildProcess> StartHubAsync(string storeName, int mllpPort, long maxBodyBytes = 32 << 20)
    {
        var seeds = Directory.CreateTempSubdirectory("interophub-legacy-bench-seeds-");
        File.Copy(Path.Combine(AppContext.BaseDirectory, "seeds", "organizations.json"), Path.Combine(seeds.FullName, "organizations.json"));
        var environment = new Dictionary<string, string?>
        {
            ["InteropHub__Seeds__Load"] = "true",
            ["InteropHub__Seeds__Path"] = seeds.FullName,
            ["InteropHub__Mllp__Port"] = mllpPort.ToString(CultureInfo.InvariantCulture),
            ["InteropHub__MaxBodyBytes"] = maxBodyBytes.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
        };
        if (storeName == "postgres")
        {
            environment["InteropHub__Storage__Provider"] = "Postgres";
            environment["ConnectionStrings__Postgres"] = Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_POSTGRES")
                ?? await PostgresCluster.CreateDatabaseAsync("legacybench");
        }
        else
        {
            environment["InteropHub__Storage__Provider"] = "Sqlite";
            environment["InteropHub__Storage__Sqlite__Path"] = Path.Combine(Directory.CreateTempSubdirectory("interophub-legacy-bench-").FullName, "hub.db");
        }

        return await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata", Console.Error.WriteLine);
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
