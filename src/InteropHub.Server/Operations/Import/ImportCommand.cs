using System.Diagnostics;
using System.Globalization;
using InteropHub.Fhir.BulkData.Import;
using InteropHub.Fhir.Search.Custom;
using InteropHub.Fhir.Storage;
using InteropHub.Fhir.Subscriptions;
using InteropHub.Server.Seeds;

namespace InteropHub.Server.Operations.Import;

/// <summary>
/// <c>import &lt;folder&gt; [--Setting=value …]</c>: imports every <c>*.ndjson</c> file of the folder into the configured
/// store by the same code as <c>$import</c>, with a progress bar. Run again on the same folder after a stop or a crash,
/// it continues the unfinished job after its last committed batch. Exit code 0 when every line was imported, 1 when
/// some lines failed (listed) or the import failed, 2 on wrong usage.
/// </summary>
public static class ImportCommand
{
    private const int ListedErrors = 20;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 1 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("usage: import <folder> [--InteropHub:Storage:Provider=Postgres --ConnectionStrings:Postgres=… …]");
            return 2;
        }

        var builder = Host.CreateApplicationBuilder(args[1..]);
        // The console belongs to the progress bar: only warnings and errors are logged there.
        builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(level => level >= LogLevel.Warning);
        builder.Services.AddInteropHub(builder.Configuration);
        using var host = builder.Build();
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // Stop after rolling back the batch in flight; the next run continues from the last committed one.
            e.Cancel = true;
            cancel.Cancel();
        };
        var ct = cancel.Token;
        var services = host.Services;
        await services.GetRequiredService<IResourceStore>().MigrateAsync(ct);
        await services.GetRequiredService<ProfileLoader>().LoadAsync(ct);
        await services.GetRequiredService<SearchParameterCatalog>().ReconcileAsync(ct);
        // No host runs here, so no delivery worker loads the active Subscriptions: without them what the import writes
        // would queue no notification. The hub delivers what it queues.
        await services.GetRequiredService<ActiveSubscriptions>().ReloadAsync(services.GetRequiredService<IResourceStore>(), ct);
        var jobs = services.GetRequiredService<ImportJobs>();

        IReadOnlyList<ImportInput> inputs;
        try
        {
            inputs = jobs.Resolve([new ImportInput(null, Path.GetFullPath(args[0]))], anyLocalPath: true);
        }
        catch (Fhir.Errors.FhirException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var job = await jobs.FindUnfinishedAsync(inputs, ct);
        if (job is null)
        {
            job = await jobs.CreateAsync(new ImportRequest(inputs, $"import {args[0]}"), ct);
        }
        else
        {
            Console.WriteLine($"Continuing import {job.Id}: {job.Progress.Imported:N0} resources were imported before it stopped.");
        }

        var bar = new ProgressBar(inputs, job.Progress.Imported);
        ImportStatus status;
        try
        {
            status = await jobs.RunAsync(job.Id, bar.Show, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.WriteLine();
            Console.WriteLine($"Stopped; run the same command again to continue import {job.Id}.");
            return 1;
        }

        bar.Done(status.Progress);
        foreach (var (type, count) in status.Progress.Counts.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            Console.WriteLine($"  {type,-28} {count,12:N0}");
        }

        if (status.State == ImportState.Failed)
        {
            Console.Error.WriteLine($"The import failed: {status.Error}");
            return 1;
        }

        if (status.Progress.Errors == 0)
        {
            return 0;
        }

        Console.Error.WriteLine($"{status.Progress.Errors:N0} lines were not imported:");
        foreach (var error in await jobs.ErrorsAsync(status.Id, -1, 0, ListedErrors, CancellationToken.None))
        {
            Console.Error.WriteLine($"  {Path.GetFileName(inputs[error.Input].Url)}:{error.Line}: {error.Message}");
        }

        if (status.Progress.Errors > ListedErrors)
        {
            Console.Error.WriteLine($"  … and {status.Progress.Errors - ListedErrors:N0} more (GET /fhir/$import-errors/{status.Id} on a running hub lists them all).");
        }

        return 1;
    }

    /// <summary>One console line redrawn in place: share of the input bytes read, resources imported, resources per second.</summary>
    private sealed class ProgressBar(IReadOnlyList<ImportInput> inputs, long importedBefore)
    {
        private const int Width = 30;
        private readonly long[] _sizes = inputs.Select(i => new FileInfo(i.Url).Length).ToArray();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan? _drawn;

        public void Show(ImportProgress progress)
        {
            var now = _clock.Elapsed;
            if (_drawn is { } drawn && now - drawn < TimeSpan.FromMilliseconds(Console.IsOutputRedirected ? 5000 : 200))
            {
                return;
            }

            _drawn = now;
            Draw(progress, Console.IsOutputRedirected ? "\n" : "");
        }

        public void Done(ImportProgress progress)
        {
            Draw(progress with { Input = inputs.Count, Offset = 0 }, "\n");
        }

        private void Draw(ImportProgress progress, string end)
        {
            var total = Math.Max(1, _sizes.Sum());
            var read = _sizes.Take(progress.Input).Sum() + progress.Offset;
            var share = Math.Min(1.0, (double)read / total);
            var filled = (int)(share * Width);
            var imported = progress.Imported - importedBefore;
            var rate = imported / Math.Max(0.001, _clock.Elapsed.TotalSeconds);
            Console.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r[{new string('#', filled)}{new string('.', Width - filled)}] {share,4:P0} {progress.Imported,12:N0} resources {rate,9:N0}/s {progress.Errors:N0} failed{end}"));
        }
    }
}
