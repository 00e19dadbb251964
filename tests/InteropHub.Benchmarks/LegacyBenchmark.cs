using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Testing;
using Npgsql;
using NpgsqlTypes;

/// <summary>
/// The legacy adapters end to end, on data from the deterministic generator (<see cref="LegacyData"/>), with only
/// the organisations seeded (issue 5):
/// <list type="bullet">
/// <item><c>hl7</c>: ADT^A04 messages per second over MLLP (stored in the inbox, mapped, committed, ACKed) with N
/// concurrent connections, one message in flight each; target ≥ 1,000/s on PostgreSQL with 4. The rate, the latency and
/// the CPU are taken after a warm-up (by default the first quarter of the run, while the hub's code is compiled); the
/// whole run's rate too.
/// On PostgreSQL a floor goes first (<see cref="Hl7Floor"/>: each message stored by one INSERT and COMMIT, then ACKed)
/// and the hub's rate is printed as a share of it.</item>
/// <item><c>township</c>: one batch of 2 × N rows (N residents and a vaccination each) posted as a zip; rows/s
/// from upload to the batch's answer (every row applied); target ≥ 5,000 rows/s for 100,000 rows. A warm-up batch
/// of other persons (2 × W rows) goes first, its figures printed as well. On PostgreSQL a floor follows (the batch
/// unzipped, its lines split and COPYed raw into one unindexed table) and the measured rate is printed as a share of it.</item>
/// </list>
/// Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks -- hl7 [--store postgres|sqlite]
/// [--connections 4] [--seconds 10] [--warmup seconds]; … -- township [--store postgres|sqlite] [--residents 50000] [--warmup 5000]
/// </summary>
internal static class LegacyBenchmark
{
    public static async Task RunHl7Async(string[] args)
    {
        var storeName = Value(args, "--store", "postgres");
        var connections = int.Parse(Value(args, "--connections", "4"), CultureInfo.InvariantCulture);
        var seconds = int.Parse(Value(args, "--seconds", "10"), CultureInfo.InvariantCulture);
        var warmup = double.Parse(Value(args, "--warmup", (seconds / 4.0).ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        if (warmup < 0 || warmup >= seconds)
        {
            throw new ArgumentException("--warmup must be at least 0 and less than --seconds.");
        }

        // The floor: what storing each message durably before its ACK costs on this machine in this run (one INSERT and
        // COMMIT per message into an unindexed table, the ACK built from MSH-10), over the same connections.
        Hl7Load? floor = null;
        if (storeName == "postgres")
        {
            var floorPort = FreePort();
            using var floorProcess = await ChildProcess.StartAsync(typeof(Hl7Floor).Assembly.Location, ["hl7-floor", "--mllp-port", floorPort.ToString(CultureInfo.InvariantCulture)],
                new Dictionary<string, string?> { [Hl7Floor.ConnectionVariable] = await PostgresCluster.CreateDatabaseAsync("hl7_floor") }, "/ready", Console.Error.WriteLine);
            var floorSeconds = Math.Min(seconds, 20);
            floor = await DriveHl7Async(floorProcess.Pid, floorPort, connections, floorSeconds, floorSeconds / 4.0, "floor process");
            Console.WriteLine($"floor (MLLP, one INSERT and COMMIT per message, ACK from MSH-10), {connections} connections, {floor.Elapsed.TotalSeconds:F1} s: " +
                $"{floor.Rate:F0} messages/s after {floorSeconds / 4.0:F0} s; latency p50 {floor.P50:F1} ms, p99 {floor.P99:F1} ms");
            Console.WriteLine($"  CPU per message after {floorSeconds / 4.0:F0} s: {floor.Cpu}");
        }

        var port = FreePort();
        using var hub = await StartHubAsync(storeName, port);
        var run = await DriveHl7Async(hub.Pid, port, connections, seconds, warmup, "hub");
        // The rate is taken over the same window as the CPU and the latency, once the hub's code is compiled; the whole run's too.
        Console.WriteLine($"HL7 v2 ADT^A04 over MLLP, {storeName}, {connections} connections, {run.Elapsed.TotalSeconds:F1} s: " +
            $"{run.Rate:F0} AA messages/s after a warm-up of {warmup:F0} s " +
            (floor is null ? "" : $"({run.Rate / floor.Rate:P0} of the floor) ") +
            $"({run.Accepted / run.Elapsed.TotalSeconds:F0}/s over the whole run; {run.Accepted} AA, {run.Refused} not AA); " +
            $"latency p50 {run.P50:F1} ms, p99 {run.P99:F1} ms");
        using var client = new HttpClient { BaseAddress = hub.BaseAddress };
        var shared = JsonDocument.Parse(await client.GetStringAsync(new Uri("/adapters/status", UriKind.Relative))).RootElement.GetProperty("hisSharedTransactions");
        Console.WriteLine($"  CPU per message after the warm-up: {run.Cpu}");
        Console.WriteLine($"  group commit: {shared.GetProperty("messages").GetInt64()} messages in {shared.GetProperty("transactions").GetInt64()} shared transactions " +
            $"({shared.GetProperty("failed").GetInt64()} failed); the others alone");
    }

    private sealed record Hl7Load(TimeSpan Elapsed, double Rate, long Accepted, long Refused, double P50, double P99, string Cpu);

    /// <summary>
    /// ADT^A04 messages from the generator over N MLLP connections, one in flight each, for the given time; rate,
    /// latency and CPU are measured from the end of the warm-up on.
    /// </summary>
    private static async Task<Hl7Load> DriveHl7Async(int serverPid, int port, int connections, int seconds, double warmupSeconds, string server)
    {
        var counter = 0;
        long accepted = 0, refused = 0;
        var latencies = new List<double>[connections];
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var clock = Stopwatch.StartNew();
        // The CPU is counted from the end of the warm-up on, once the server's code is compiled and its pools are full.
        var warmup = TimeSpan.FromSeconds(warmupSeconds);
        var metered = Task.Run(async () =>
        {
            await Task.Delay(warmup);
            return (Meter: CpuMeter.Start(serverPid), Count: Interlocked.Read(ref accepted) + Interlocked.Read(ref refused),
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
                var ack = await mllp.ReadAsync(CancellationToken.None) ?? throw new InvalidOperationException("The server closed the connection.");
                if (clock.Elapsed >= warmup)
                {
                    latencies[c].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
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
        return new Hl7Load(clock.Elapsed, (accepted - acceptedBefore) / (clock.Elapsed - from).TotalSeconds, accepted, refused,
            all.Count == 0 ? double.NaN : all[all.Count / 2], all.Count == 0 ? double.NaN : all[Math.Min(all.Count - 1, all.Count * 99 / 100)], cpu.PerUnit(accepted + refused - before, server));
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

        var rate = await PostTownshipAsync(client, hub, storeName, zip, "measured");
        if (storeName == "postgres")
        {
            var floor = await TownshipFloorAsync(zip, await PostgresCluster.CreateDatabaseAsync("township_floor"));
            Console.WriteLine($"floor (unzip, split each CSV line, one binary COPY into an unindexed table): {floor:F0} rows/s; " +
                $"the measured batch ran at {rate / floor:P0} of it");
        }
    }

    /// <summary>
    /// The floor of the <c>township</c> benchmark: the batch unzipped, each CSV line split into its fields and the rows
    /// written raw by one binary COPY into a table without index, in one transaction. Rows/s.
    /// </summary>
    private static async Task<double> TownshipFloorAsync(byte[] zip, string connectionString)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var create = dataSource.CreateCommand("CREATE TABLE floor_row (file text NOT NULL, line integer NOT NULL, fields text[] NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var clock = Stopwatch.StartNew();
        var rows = 0;
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        using (var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        await using (var copy = await connection.BeginBinaryImportAsync("COPY floor_row (file, line, fields) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var entry in archive.Entries.Where(e => e.Name.EndsWith(".csv", StringComparison.Ordinal)))
            {
                using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
                var line = 1;
                await reader.ReadLineAsync();
                while (await reader.ReadLineAsync() is { } text)
                {
                    line++;
                    await copy.StartRowAsync();
                    await copy.WriteAsync(entry.Name, NpgsqlDbType.Text);
                    await copy.WriteAsync(line, NpgsqlDbType.Integer);
                    await copy.WriteAsync(text.Split(','), NpgsqlDbType.Array | NpgsqlDbType.Text);
                    rows++;
                }
            }

            await copy.CompleteAsync();
        }

        await transaction.CommitAsync();
        return rows / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Posts a batch, prints its figures and returns its rows/s.</summary>
    private static async Task<double> PostTownshipAsync(HttpClient client, ChildProcess hub, string storeName, byte[] zip, string label)
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
        return rows / clock.Elapsed.TotalSeconds;
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

        // Runtime settings for the hub's process alone, "NAME=value;NAME=value" (the load generator keeps its own).
        foreach (var setting in (Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_HUB_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var (name, value) = (setting[..setting.IndexOf('=')], setting[(setting.IndexOf('=') + 1)..]);
            environment[name] = value;
        }

        if (storeName == "postgres")
        {
            environment["InteropHub__Storage__Provider"] = "Postgres";
            environment["ConnectionStrings__Postgres"] = Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_POSTGRES") is { } server
                ? await NewDatabaseAsync(server)
                : await PostgresCluster.CreateDatabaseAsync("legacybench");
        }
        else
        {
            environment["InteropHub__Storage__Provider"] = "Sqlite";
            environment["InteropHub__Storage__Sqlite__Path"] = Path.Combine(Directory.CreateTempSubdirectory("interophub-legacy-bench-").FullName, "hub.db");
        }

        return await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata", Console.Error.WriteLine);
    }

    /// <summary>
    /// A new database on the server <c>INTEROPHUB_BENCH_POSTGRES</c> names: every run needs one, as a second run on the
    /// same database would send message ids already stored (answered as duplicates, not applied) and persons already known.
    /// </summary>
    private static async Task<string> NewDatabaseAsync(string server)
    {
        var name = $"legacybench_{DateTime.UtcNow:yyyyMMddHHmmss}_{Environment.ProcessId}";
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await create.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
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
