using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Testing;
using Npgsql;
using NpgsqlTypes;

/// <summary>
/// Bulk import and export throughput on PostgreSQL (or SQLite). Writes the Synthea-shaped world of
/// <see cref="SearchData"/> (ten resources per patient) as NDJSON files, then in the same run measures:
/// <list type="bullet">
/// <item>the import's own work without a database: parse, stamp, serialise and extract the index rows of every line;</item>
/// <item>a floor: parse every line with the SDK (both cores) and binary COPY the bytes into one table with no index,
/// in a database of its own;</item>
/// <item><c>$import</c> of the folder into a hub started on an empty database (kick-off to the completed result);</item>
/// <item><c>$export</c> of everything imported, with the hub's peak working set before and after.</item>
/// </list>
/// Usage: dotnet run -c Release --project tests/InteropHub.Benchmarks -- import [--patients 100000] [--store postgres|sqlite]
/// </summary>
internal static class ImportBenchmark
{
    public static async System.Threading.Tasks.Task RunAsync(string[] args)
    {
        string Value(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var patients = int.Parse(Value("--patients", "100000"), CultureInfo.InvariantCulture);
        var storeName = Value("--store", "postgres");
        var folder = Directory.CreateTempSubdirectory("interophub-import-bench-").FullName;
        var clock = Stopwatch.StartNew();
        var total = Generate(folder, patients);
        Console.WriteLine($"generated {total:N0} resources ({patients:N0} patients) as NDJSON in {clock.Elapsed.TotalSeconds:F1} s, " +
            $"{Directory.GetFiles(folder).Sum(f => new FileInfo(f).Length) / (1024 * 1024):N0} MiB; {Environment.ProcessorCount} cores");

        var environment = new Dictionary<string, string?>
        {
            ["InteropHub__Seeds__Load"] = "false",
            ["Logging__LogLevel__Default"] = "Warning",
            ["InteropHub__Import__Root"] = folder,
            ["InteropHub__Export__Folder"] = Directory.CreateTempSubdirectory("interophub-import-bench-export-").FullName,
        };
        var prepare = Prepare(folder);
        Console.WriteLine($"parse + prepare (stamp meta, serialise, extract index rows) on {Environment.ProcessorCount} cores, no database: " +
            $"{prepare.TotalSeconds:F1} s = {total / prepare.TotalSeconds:N0} resources/s");
        double? floorRate = null;
        if (storeName == "postgres")
        {
            var floor = await FloorAsync(folder, await PostgresCluster.CreateDatabaseAsync("import_floor"));
            floorRate = total / floor.TotalSeconds;
            Console.WriteLine($"floor (SDK parse on {Environment.ProcessorCount} cores + binary COPY into one unindexed table): " +
                $"{floor.TotalSeconds:F1} s = {floorRate:N0} resources/s");
            environment["InteropHub__Storage__Provider"] = "Postgres";
            environment["ConnectionStrings__Postgres"] = await PostgresCluster.CreateDatabaseAsync("import_bench");
        }
        else
        {
            environment["InteropHub__Storage__Provider"] = "Sqlite";
            environment["InteropHub__Storage__Sqlite__Path"] = Path.Combine(Directory.CreateTempSubdirectory("interophub-import-bench-").FullName, "hub.db");
        }

        using var hub = await ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata",
            Console.Error.WriteLine);
        using var client = new HttpClient { BaseAddress = hub.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };

        var parameters = new Parameters();
        parameters.Add("inputFormat", new Code("application/fhir+ndjson"));
        parameters.Parameter.Add(new Parameters.ParameterComponent { Name = "input", Part = [new() { Name = "url", Value = new FhirUri(folder) }] });
        using var kickOff = new HttpRequestMessage(HttpMethod.Post, "/fhir/$import")
        {
            Content = new ByteArrayContent(new FhirSerializers().ToJsonBytes(parameters)) { Headers = { ContentType = new("application/fhir+json") } },
        };
        kickOff.Headers.Add("Prefer", "respond-async");
        clock.Restart();
        var result = await WaitAsync(client, await client.SendAsync(kickOff));
        var importTime = clock.Elapsed;
        var imported = result.GetProperty("output").EnumerateArray().Sum(o => o.GetProperty("count").GetInt64());
        var importRate = imported / importTime.TotalSeconds;
        Console.WriteLine($"$import: {imported:N0} resources in {importTime.TotalSeconds:F1} s = {importRate:N0} resources/s" +
            (floorRate is { } f ? $" ({importRate / f:P0} of the floor)" : ""));

        var peakBefore = PeakWorkingSet(hub.Pid);
        using var export = new HttpRequestMessage(HttpMethod.Get, "/fhir/$export");
        export.Headers.Add("Prefer", "respond-async");
        clock.Restart();
        var manifest = await WaitAsync(client, await client.SendAsync(export));
        var exportTime = clock.Elapsed;
        var exported = manifest.GetProperty("output").EnumerateArray().Sum(o => o.GetProperty("count").GetInt64());
        Console.WriteLine($"$export: {exported:N0} resources in {exportTime.TotalSeconds:F1} s = {exported / exportTime.TotalSeconds:N0} resources/s");
        Console.WriteLine($"hub peak working set: {peakBefore / (1024 * 1024):N0} MiB before the export, {PeakWorkingSet(hub.Pid) / (1024 * 1024):N0} MiB after");
        Console.WriteLine("Targets (issue 4): $import >= 20,000 resources/s, export >= 50,000 resources/s.");
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>One NDJSON file per type; returns the number of resources.</summary>
    private static long Generate(string folder, int patients)
    {
        var data = new SearchData();
        var serializers = new FhirSerializers();
        var files = new Dictionary<string, FileStream>(StringComparer.Ordinal);
        long count = 0;
        void Write(Resource resource)
        {
            if (!files.TryGetValue(resource.TypeName, out var file))
            {
                files[resource.TypeName] = file = new FileStream(Path.Combine(folder, $"{resource.TypeName}.ndjson"), FileMode.Create, FileAccess.Write,
                    FileShare.None, 1 << 20);
            }

            file.Write(serializers.ToJsonBytes(resource));
            file.WriteByte((byte)'\n');
            count++;
        }

        foreach (var organization in SearchData.OrganizationResources())
        {
            Write(organization);
        }

        for (var i = 0; i < patients; i++)
        {
            foreach (var resource in data.ForPatient(i))
            {
                Write(resource);
            }
        }

        foreach (var file in files.Values)
        {
            file.Dispose();
        }

        return count;
    }

    /// <summary>The import's work before the database: what share of its time the hub spends outside PostgreSQL.</summary>
    private static TimeSpan Prepare(string folder)
    {
        var serializers = new FhirSerializers();
        var writer = new InteropHub.Fhir.Resources.VersionWriter(serializers, TimeProvider.System);
        var clock = Stopwatch.StartNew();
        foreach (var path in Directory.GetFiles(folder, "*.ndjson").Order(StringComparer.Ordinal))
        {
            foreach (var chunk in File.ReadLines(path).Chunk(5000))
            {
                Parallel.For(0, chunk.Length, i =>
                {
                    var resource = serializers.ParseJson(System.Text.Encoding.UTF8.GetBytes(chunk[i]));
                    writer.Prepare(resource, resource.Id!, 1, "PUT");
                });
            }
        }

        return clock.Elapsed;
    }

    /// <summary>Parse every line with the SDK in parallel and COPY the raw bytes into one table without any index.</summary>
    private static async System.Threading.Tasks.Task<TimeSpan> FloorAsync(string folder, string connectionString)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        await using (var create = source.CreateCommand("CREATE TABLE floor_resource (resource_type text, id text, content bytea)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var serializers = new FhirSerializers();
        var clock = Stopwatch.StartNew();
        await using var connection = await source.OpenConnectionAsync();
        foreach (var path in Directory.GetFiles(folder, "*.ndjson").Order(StringComparer.Ordinal))
        {
            foreach (var chunk in File.ReadLines(path).Chunk(5000))
            {
                var rows = new (string Type, string Id, byte[] Json)[chunk.Length];
                Parallel.For(0, chunk.Length, i =>
                {
                    var bytes = System.Text.Encoding.UTF8.GetBytes(chunk[i]);
                    var resource = serializers.ParseJson(bytes);
                    rows[i] = (resource.TypeName, resource.Id!, bytes);
                });
                await using var copy = await connection.BeginBinaryImportAsync("COPY floor_resource (resource_type, id, content) FROM STDIN (FORMAT BINARY)");
                foreach (var (type, id, json) in rows)
                {
                    await copy.StartRowAsync();
                    await copy.WriteAsync(type, NpgsqlDbType.Text);
                    await copy.WriteAsync(id, NpgsqlDbType.Text);
                    await copy.WriteAsync(json, NpgsqlDbType.Bytea);
                }

                await copy.CompleteAsync();
            }
        }

        return clock.Elapsed;
    }

    private static async System.Threading.Tasks.Task<JsonElement> WaitAsync(HttpClient client, HttpResponseMessage kickOff)
    {
        if (kickOff.StatusCode != System.Net.HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"kick-off answered {(int)kickOff.StatusCode}: {await kickOff.Content.ReadAsStringAsync()}");
        }

        var status = kickOff.Content.Headers.ContentLocation!.PathAndQuery;
        var lastReport = Stopwatch.StartNew();
        while (true)
        {
            var response = await client.GetAsync(status);
            if (response.StatusCode == System.Net.HttpStatusCode.OK)
            {
                return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
            }

            if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
            {
                throw new InvalidOperationException($"status answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }

            if (lastReport.Elapsed > TimeSpan.FromSeconds(30))
            {
                Console.Error.WriteLine($"  {response.Headers.GetValues("X-Progress").FirstOrDefault()}");
                lastReport.Restart();
            }

            await System.Threading.Tasks.Task.Delay(200);
        }
    }

    /// <summary>Process.PeakWorkingSet64 of the hub (VmHWM on Linux).</summary>
    private static long PeakWorkingSet(int pid)
    {
        using var process = Process.GetProcessById(pid);
        return process.PeakWorkingSet64;
    }
}
