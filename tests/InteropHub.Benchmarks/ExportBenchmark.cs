using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using FhirPatient = Hl7.Fhir.Model.Patient;
using Hl7.Fhir.Serialization;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Storage.Postgres;
using InteropHub.Storage.Sqlite;
using InteropHub.Testing;

/// <summary>
/// Bulk export throughput and the hub's peak memory. Loads N patients (the Synthea patients of Data/ cloned
/// with new ids and identifiers) straight into the store, starts the hub on it, runs GET /fhir/$export?_type=Patient
/// and reports resources/s from kick-off to the completed manifest, next to a floor: reading the same rows with
/// the store's own scan and writing them to a file in this process, with no HTTP and no job.
/// Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks -- export [--store postgres|sqlite] [--count 100000]
/// </summary>
internal static class ExportBenchmark
{
    public static async System.Threading.Tasks.Task RunAsync(string[] args)
    {
        string Value(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var storeName = Value("--store", "postgres");
        var count = int.Parse(Value("--count", "100000"), CultureInfo.InvariantCulture);
        var environment = new Dictionary<string, string?>
        {
            ["InteropHub__Seeds__Load"] = "false",
            ["Logging__LogLevel__Default"] = "Warning",
            ["InteropHub__Export__Folder"] = Directory.CreateTempSubdirectory("interophub-export-bench-").FullName,
        };
        IResourceStore store;
        if (storeName == "postgres")
        {
            var connection = Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_POSTGRES") ?? await PostgresCluster.CreateDatabaseAsync("export_bench");
            environment["InteropHub__Storage__Provider"] = "Postgres";
            environment["ConnectionStrings__Postgres"] = connection;
            store = new PostgresResourceStore(new PostgresStoreOptions { ConnectionString = connection });
        }
        else
        {
            var path = Path.Combine(Directory.CreateTempSubdirectory("interophub-export-bench-").FullName, "hub.db");
            environment["InteropHub__Storage__Provider"] = "Sqlite";
            environment["InteropHub__Storage__Sqlite__Path"] = path;
            store = new SqliteResourceStore(new SqliteStoreOptions { Path = path });
        }

        await store.MigrateAsync(CancellationToken.None);
        var loadClock = Stopwatch.StartNew();
        await LoadAsync(store, count, storeName == "postgres" ? 4 : 1);
        Console.WriteLine($"loaded {count} patients into {storeName} in {loadClock.Elapsed.TotalSeconds:F1} s ({count / loadClock.Elapsed.TotalSeconds:F0}/s)");

        // Twice, keeping the faster: the first pass also warms the database's cache for the export after it.
        var floor = TimeSpan.FromTicks(Math.Min((await FloorAsync((IResourceScanner)store)).Ticks, (await FloorAsync((IResourceScanner)store)).Ticks));
        Console.WriteLine($"floor (store scan to a file, in process): {count / floor.TotalSeconds:F0} resources/s");

        using var hub = await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata", Console.Error.WriteLine);
        var rssBefore = PeakRssKb(hub.Pid);
        using var client = new HttpClient { BaseAddress = hub.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        var clock = Stopwatch.StartNew();
        using var kickOff = new HttpRequestMessage(HttpMethod.Get, "/fhir/$export?_type=Patient");
        kickOff.Headers.Add("Prefer", "respond-async");
        var status = (await client.SendAsync(kickOff)).Content.Headers.ContentLocation!.PathAndQuery;
        JsonElement manifest;
        while (true)
        {
            var response = await client.GetAsync(status);
            if (response.StatusCode == System.Net.HttpStatusCode.OK)
            {
                manifest = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
                break;
            }

            await System.Threading.Tasks.Task.Delay(20);
        }

        var elapsed = clock.Elapsed;
        var exported = manifest.GetProperty("output").EnumerateArray().Sum(o => o.GetProperty("count").GetInt64());
        var rssAfter = PeakRssKb(hub.Pid);
        Console.WriteLine($"export: {exported} resources in {elapsed.TotalSeconds:F2} s = {exported / elapsed.TotalSeconds:F0} resources/s " +
            $"({exported / elapsed.TotalSeconds / (count / floor.TotalSeconds):P0} of the floor)");
        Console.WriteLine($"hub peak RSS: {rssBefore / 1024} MiB before the export, {rssAfter / 1024} MiB after (target: bounded, independent of the count)");
        Console.WriteLine("Target (issue 4): export >= 50,000 resources/s.");
        if (store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }

    private static async System.Threading.Tasks.Task LoadAsync(IResourceStore store, int count, int writers)
    {
        var templates = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Data", "synthea-100-Patient.ndjson"))
            .Where(l => l.Length > 0)
            .Select(l => new FhirJsonDeserializer(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable)).Deserialize<FhirPatient>(l))
            .ToList();
        var writer = new VersionWriter(new FhirSerializers(), TimeProvider.System);
        var next = -1;
        await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, writers).Select(_ => System.Threading.Tasks.Task.Run(async () =>
        {
            while (true)
            {
                var start = Interlocked.Add(ref next, 200) - 199;
                if (start >= count)
                {
                    return;
                }

                await using var session = await store.BeginWriteAsync(CancellationToken.None);
                for (var i = start; i < Math.Min(start + 200, count); i++)
                {
                    var patient = (FhirPatient)templates[i % templates.Count].DeepCopy();
                    patient.Identifier.Add(new Identifier("urn:interophub:bench", i.ToString(CultureInfo.InvariantCulture)));
                    await writer.SaveAsync(session, patient, $"bench-{i}", null, "PUT", CancellationToken.None);
                }

                await session.CommitAsync(CancellationToken.None);
            }
        })));
    }

    private static async System.Threading.Tasks.Task<TimeSpan> FloorAsync(IResourceScanner scanner)
    {
        var path = Path.GetTempFileName();
        var clock = Stopwatch.StartNew();
        await using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await foreach (var resource in scanner.ScanAsync("Patient", null, DateTimeOffset.UtcNow.AddMinutes(1), CancellationToken.None))
            {
                await file.WriteAsync(resource.Json);
                await file.WriteAsync("\n"u8.ToArray());
            }
        }

        var elapsed = clock.Elapsed;
        File.Delete(path);
        return elapsed;
    }

    /// <summary>VmHWM: the peak resident set size of the process so far, in KiB (Linux).</summary>
    private static long PeakRssKb(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
