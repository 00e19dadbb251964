using InteropHub.Adapters.Ingest;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Seeds;

namespace InteropHub.Server.Adapters;

/// <summary><c>InteropHub:Township</c>.</summary>
public sealed class TownshipOptions
{
    /// <summary>A folder the township exporters drop batches into (a zip, or a batch folder with its manifest); empty: off.</summary>
    public string? DropFolder { get; set; }

    public double PollSeconds { get; set; } = 5;

    /// <summary>A drop is taken once it has not changed for this long, so a batch still being copied is left alone.</summary>
    public double SettleSeconds { get; set; } = 2;
}

/// <summary>
/// The township adapter's drop folder (issue 5): each batch dropped there, as <c>*.zip</c> or as a folder holding
/// <c>manifest.json</c>, goes through the same ingest as an HTTP upload and is then moved to <c>done/</c>. A batch is
/// moved only after the inbox has stored it, so a crash in between makes the hub see it again at the next poll,
/// which the inbox answers as the same batch (keyed by its batch id) without applying anything twice.
/// </summary>
internal sealed class TownshipDropFolder(TownshipOptions options, IngestPipeline pipeline, TimeProvider clock, ILogger<TownshipDropFolder> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrWhiteSpace(options.DropFolder))
        {
            return;
        }

        var drop = Path.GetFullPath(options.DropFolder);
        Directory.CreateDirectory(drop);
        logger.LogInformation("Watching {Folder} for township batches.", drop);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.PollSeconds), clock);
        do
        {
            try
            {
                await PollAsync(drop, stoppingToken);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning(e, "The township drop folder {Folder} could not be read; trying again at the next poll.", drop);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Ingests every settled batch in the folder, oldest first; returns how many were taken.</summary>
    public async Task<int> PollAsync(string drop, CancellationToken ct)
    {
        var settled = clock.GetUtcNow().UtcDateTime - TimeSpan.FromSeconds(options.SettleSeconds);
        // A link to nothing is not a batch (its time would put it first forever).
        var batches = Directory.EnumerateFiles(drop, "*.zip").Where(File.Exists).Select(f => (Path: f, Zip: true))
            .Concat(Directory.EnumerateDirectories(drop).Where(d => File.Exists(Path.Combine(d, "manifest.json"))).Select(d => (Path: d, Zip: false)))
            .Select(b => (b.Path, b.Zip, Changed: LastChange(b.Path, b.Zip)))
            .Where(b => b.Changed <= settled)
            .OrderBy(b => b.Changed).ThenBy(b => b.Path, StringComparer.Ordinal)
            .ToList();
        var taken = 0;
        foreach (var (path, zip, _) in batches)
        {
            byte[] bytes;
            try
            {
                bytes = zip ? await File.ReadAllBytesAsync(path, ct) : SeedLoader.Zip(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // One entry that cannot be read (no permission, gone meanwhile) holds up no other batch.
                logger.LogWarning(e, "The township drop {Path} could not be read; trying again at the next poll.", path);
                continue;
            }

            var result = await pipeline.ReceiveTownshipAsync(bytes, ct);
            logger.LogInformation("Township batch {Path} stored as inbox message {Id}: {Status}.", path, result.Message.Id, result.Message.Status);

            // A batch that became a dead letter (refused whole, as not a zip or for its manifest, or with a row the hub could
            // not apply) goes to failed/, so the folder shows which need a look.
            var moved = Path.Combine(drop, result.Message.Status == InboxStatus.Failed ? "failed" : "done");
            Directory.CreateDirectory(moved);
            var target = FreeName(Path.Combine(moved, $"{result.Message.Id}-{Path.GetFileName(path)}"));
            if (zip)
            {
                File.Move(path, target);
            }
            else
            {
                Directory.Move(path, target);
            }

            taken++;
        }

        return taken;
    }

    /// <summary>
    /// The path, or the path with ".2", ".3"… before its extension when taken: a batch dropped again after it was done
    /// (the inbox answers it as the same message) is moved beside the first copy instead of jamming the folder.
    /// </summary>
    private static string FreeName(string path)
    {
        var candidate = path;
        for (var n = 2; File.Exists(candidate) || Directory.Exists(candidate); n++)
        {
            candidate = Path.Combine(Path.GetDirectoryName(path)!, $"{Path.GetFileNameWithoutExtension(path)}.{n}{Path.GetExtension(path)}");
        }

        return candidate;
    }

    private static DateTime LastChange(string path, bool zip) =>
        zip ? File.GetLastWriteTimeUtc(path)
            : Directory.EnumerateFiles(path).Select(File.GetLastWriteTimeUtc).Append(Directory.GetLastWriteTimeUtc(path)).Max();
}
