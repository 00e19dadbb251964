using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using InteropHub.Testing;

// Modes: (default) single-resource HTTP; `export` bulk export (see ExportBenchmark.cs); `import` bulk import and
// export at a million resources (ImportBenchmark.cs); `hl7` HL7 v2 over MLLP and `township` township batches
// (LegacyBenchmark.cs); `search` index extraction and search latency at a million resources (see SearchBenchmark.cs);
// `recognized` $recognized-results latency for a patient with 5,000 Observations (RecognizedResultsBenchmark.cs).
// Single-resource create and read over HTTP on both stores, at several concurrencies, next to a floor: a
// minimal ASP.NET Core endpoint returning the same bytes from memory, measured in the same run on the same
// machine; then transaction Bundles (resources/s). Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks --
//   [--stores sqlite,postgres] [--concurrency 1,8,32] [--seconds 5] [--transaction-concurrency 4] [--bundle-size 100]
// The hub and the floor run as child processes (the hub's own binary, configured through the environment),
// so the load generator does not share their process.

if (args.Length > 0 && args[0] == "floor")
{
    Floor.Run(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "hl7-floor")
{
    Hl7Floor.Run(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "hl7")
{
    await LegacyBenchmark.RunHl7Async(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "township")
{
    await LegacyBenchmark.RunTownshipAsync(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "search")
{
    await SearchBenchmark.RunAsync(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "import")
{
    await ImportBenchmark.RunAsync(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "recognized")
{
    await RecognizedResultsBenchmark.RunAsync(args[1..]);
    return;
}

if (args.Length > 0 && args[0] == "export")
{
    await ExportBenchmark.RunAsync(args[1..]);
    return;
}

var options = BenchmarkOptions.Parse(args);
var patients = PatientData.Load();
var transactions = TransactionData.Build(patients, options.BundleSize);
Console.WriteLine($"InteropHub HTTP benchmark: {patients.Count} Synthea patients, {Environment.ProcessorCount} cores, " +
    $"{options.Seconds} s per measurement, concurrency {string.Join(',', options.Concurrency)}");
Console.WriteLine();

var results = new List<Result>();
using (var floor = await ChildProcess.StartAsync(typeof(Floor).Assembly.Location, ["floor"], new Dictionary<string, string?>(), "/fhir/metadata", Console.Error.WriteLine))
{
    foreach (var c in options.Concurrency)
    {
        results.Add(await Load.ReadAsync("floor", floor.BaseAddress, patients, c, options.Seconds));
    }
}

foreach (var store in options.Stores)
{
    var environment = new Dictionary<string, string?>
    {
        ["InteropHub__Seeds__Load"] = "false",
        ["Logging__LogLevel__Default"] = "Warning",
    };
    if (store == "postgres")
    {
        environment["InteropHub__Storage__Provider"] = "Postgres";
        environment["ConnectionStrings__Postgres"] = Environment.GetEnvironmentVariable("INTEROPHUB_BENCH_POSTGRES")
            ?? await PostgresCluster.CreateDatabaseAsync("bench");
    }
    else
    {
        var dir = Directory.CreateTempSubdirectory("interophub-bench-");
        environment["InteropHub__Storage__Provider"] = "Sqlite";
        environment["InteropHub__Storage__Sqlite__Path"] = Path.Combine(dir.FullName, "hub.db");
    }

    using var hub = await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata", Console.Error.WriteLine);
    await Load.PutAllAsync(hub.BaseAddress, patients);
    foreach (var c in options.Concurrency)
    {
        results.Add(await Load.ReadAsync(store, hub.BaseAddress, patients, c, options.Seconds));
    }

    foreach (var c in options.Concurrency)
    {
        results.Add(await Load.CreateAsync(store, hub.BaseAddress, patients, c, options.Seconds));
    }

    foreach (var c in options.TransactionConcurrency)
    {
        results.Add(await Load.TransactionAsync(store, hub.BaseAddress, hub.Pid, transactions, c, options.Seconds));
    }
}

Report.Print(results);

internal sealed record BenchmarkOptions(IReadOnlyList<string> Stores, IReadOnlyList<int> Concurrency, int Seconds,
    IReadOnlyList<int> TransactionConcurrency, int BundleSize)
{
    public static BenchmarkOptions Parse(string[] args)
    {
        string Value(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        return new BenchmarkOptions(
            Value("--stores", "sqlite,postgres").Split(',', StringSplitOptions.RemoveEmptyEntries),
            Value("--concurrency", "1,8,32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList(),
            int.Parse(Value("--seconds", "5"), CultureInfo.InvariantCulture),
            Value("--transaction-concurrency", "4").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList(),
            int.Parse(Value("--bundle-size", "100"), CultureInfo.InvariantCulture));
    }
}

internal sealed record Patient(string Id, byte[] Json);

internal static class PatientData
{
    /// <summary>The Synthea patients of Data/ (see Data/README.md), keyed by their own ids.</summary>
    public static IReadOnlyList<Patient> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Data", "synthea-100-Patient.ndjson");
        return File.ReadLines(path)
            .Where(line => line.Length > 0)
            .Select(line => new Patient(JsonNode.Parse(line)!["id"]!.GetValue<string>(), Encoding.UTF8.GetBytes(line)))
            .ToList();
    }
}

internal sealed record Result(string Target, string Operation, int Concurrency, int Requests, int Errors, double Seconds, double P50Ms, double P99Ms,
    int ResourcesPerRequest = 1)
{
    public double Throughput => Requests / Seconds;

    public double ResourcesPerSecond => Requests * ResourcesPerRequest / Seconds;
}

/// <summary>
/// Transaction Bundles shaped like Synthea's: per bundle, a fifth of the entries are patients created with a
/// <c>urn:uuid</c> fullUrl and the rest observations whose subject is one of those placeholders, so every
/// bundle exercises id assignment, placeholder resolution and index writes. A few distinct bodies are built
/// once; posting one again creates new resources (the server assigns the ids).
/// </summary>
internal static class TransactionData
{
    public static IReadOnlyList<byte[]> Build(IReadOnlyList<Patient> patients, int size)
    {
        var serializers = new InteropHub.Fhir.Serialization.FhirSerializers();
        var bodies = new List<byte[]>();
        var next = 0;
        for (var b = 0; b < 8; b++)
        {
            var bundle = new Hl7.Fhir.Model.Bundle { Type = Hl7.Fhir.Model.Bundle.BundleType.Transaction };
            var placeholders = new List<string>();
            for (var i = 0; i < Math.Max(1, size / 5); i++)
            {
                var patient = serializers.ParseJson(patients[next++ % patients.Count].Json);
                patient.Id = null;
                var fullUrl = $"urn:uuid:{Guid.NewGuid()}";
                placeholders.Add(fullUrl);
                bundle.Entry.Add(new() { FullUrl = fullUrl, Resource = patient, Request = new() { Method = Hl7.Fhir.Model.Bundle.HTTPVerb.POST, Url = "Patient" } });
            }

            for (var i = bundle.Entry.Count; i < size; i++)
            {
                var observation = new Hl7.Fhir.Model.Observation
                {
                    Status = Hl7.Fhir.Model.ObservationStatus.Final,
                    Code = new Hl7.Fhir.Model.CodeableConcept("http://loinc.org", "8867-4", "Heart rate"),
                    Subject = new Hl7.Fhir.Model.ResourceReference(placeholders[i % placeholders.Count]),
                    Effective = new Hl7.Fhir.Model.FhirDateTime(2024, 1, 1 + i % 28),
                    Value = new Hl7.Fhir.Model.Quantity(60 + i % 40, "/min", "http://unitsofmeasure.org"),
                    Identifier = [new Hl7.Fhir.Model.Identifier("urn:oid:2.16.156.10011.1.99", Guid.NewGuid().ToString())],
                };
                bundle.Entry.Add(new() { Resource = observation, Request = new() { Method = Hl7.Fhir.Model.Bundle.HTTPVerb.POST, Url = "Observation" } });
            }

            bodies.Add(serializers.ToJsonBytes(bundle));
        }

        return bodies;
    }
}

internal static class Load
{
    public static async Task PutAllAsync(Uri baseAddress, IReadOnlyList<Patient> patients)
    {
        using var client = Client(baseAddress, 8);
        foreach (var patient in patients)
        {
            using var content = Content(patient.Json);
            var response = await client.PutAsync($"/fhir/Patient/{patient.Id}", content);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"loading Patient/{patient.Id} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }
    }

    public static Task<Result> ReadAsync(string target, Uri baseAddress, IReadOnlyList<Patient> patients, int concurrency, int seconds) =>
        RunAsync(target, "read", baseAddress, concurrency, seconds, (client, i) =>
            client.GetAsync($"/fhir/Patient/{patients[i % patients.Count].Id}", HttpCompletionOption.ResponseContentRead));

    public static Task<Result> CreateAsync(string target, Uri baseAddress, IReadOnlyList<Patient> patients, int concurrency, int seconds) =>
        RunAsync(target, "create", baseAddress, concurrency, seconds, async (client, i) =>
        {
            using var content = Content(patients[i % patients.Count].Json);
            return await client.PostAsync("/fhir/Patient", content);
        });

    /// <summary>Also prints the CPU each resource cost (hub, PostgreSQL, load generator) over the measured part.</summary>
    public static async Task<Result> TransactionAsync(string target, Uri baseAddress, int hubPid, IReadOnlyList<byte[]> bundles, int concurrency, int seconds)
    {
        CpuMeter? meter = null;
        var result = await RunAsync(target, "tx", baseAddress, concurrency, seconds, async (client, i) =>
        {
            using var content = Content(bundles[i % bundles.Count]);
            return await client.PostAsync("/fhir", content);
        }, () => meter = CpuMeter.Start(hubPid));
        meter!.Stop();
        var resources = CountEntries(bundles[0]);
        Console.WriteLine($"{target} tx at concurrency {concurrency}, CPU per resource: {meter.PerUnit((long)result.Requests * resources)}");
        return result with { ResourcesPerRequest = resources };
    }

    private static int CountEntries(byte[] bundle) => JsonNode.Parse(bundle)!["entry"]!.AsArray().Count;

    private static async Task<Result> RunAsync(string target, string operation, Uri baseAddress, int concurrency, int seconds,
        Func<HttpClient, int, Task<HttpResponseMessage>> send, Action? measuring = null)
    {
        using var client = Client(baseAddress, concurrency);
        // Warm-up: JIT, connection pool, caches.
        await Workers(client, concurrency, TimeSpan.FromSeconds(1), send, null);
        measuring?.Invoke();
        var latencies = new List<double>[concurrency];
        for (var w = 0; w < concurrency; w++)
        {
            latencies[w] = new List<double>(100_000);
        }

        var clock = Stopwatch.StartNew();
        var errors = await Workers(client, concurrency, TimeSpan.FromSeconds(seconds), send, latencies);
        var elapsed = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new Result(target, operation, concurrency, all.Length, errors, elapsed, Percentile(all, 0.50), Percentile(all, 0.99));
    }

    private static async Task<int> Workers(HttpClient client, int concurrency, TimeSpan duration,
        Func<HttpClient, int, Task<HttpResponseMessage>> send, List<double>[]? latencies)
    {
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var errors = 0;
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async w =>
        {
            while (Stopwatch.GetTimestamp() < end)
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await send(client, Interlocked.Increment(ref next));
                await response.Content.LoadIntoBufferAsync();
                var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref errors);
                }
                else
                {
                    latencies?[w].Add(ms);
                }
            }
        }));
        return errors;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static HttpClient Client(Uri baseAddress, int connections) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseCookies = false, AutomaticDecompression = DecompressionMethods.None })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };

    private static ByteArrayContent Content(byte[] json)
    {
        var content = new ByteArrayContent(json);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/fhir+json");
        return content;
    }
}

internal static class Report
{
    public static void Print(IReadOnlyList<Result> results)
    {
        Console.WriteLine($"{"target",-9} {"op",-7} {"conc",4} {"req/s",9} {"res/s",9} {"p50 ms",8} {"p99 ms",8} {"errors",6} {"vs floor",8}");
        foreach (var r in results)
        {
            var floor = results.FirstOrDefault(f => f.Target == "floor" && f.Concurrency == r.Concurrency);
            var ratio = r.Operation == "read" && r.Target != "floor" && floor is not null ? $"{r.Throughput / floor.Throughput:P0}" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Target,-9} {r.Operation,-7} {r.Concurrency,4} {r.Throughput,9:F0} {r.ResourcesPerSecond,9:F0} {r.P50Ms,8:F2} {r.P99Ms,8:F2} {r.Errors,6} {ratio,8}"));
        }

        Console.WriteLine();
        Console.WriteLine("Targets (issue 2): reads >= 50% of the floor; p99 read latency < 10 ms at concurrency 8 on PostgreSQL.");
        Console.WriteLine("Target (issue 4): transaction Bundles of 100 entries >= 5,000 resources/s at concurrency 4 on PostgreSQL (tx rows, res/s).");
    }
}

/// <summary>The floor: Kestrel and a minimal endpoint answering a read with the same bytes, from memory.</summary>
internal static class Floor
{
    public static void Run(string[] args)
    {
        var patients = PatientData.Load().ToDictionary(p => p.Id, p => p.Json);
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/fhir/metadata", () => Results.Ok());
        app.MapGet("/fhir/Patient/{id}", (string id) =>
            patients.TryGetValue(id, out var json) ? Results.Bytes(json, "application/fhir+json") : Results.NotFound());
        app.Run();
    }
}
