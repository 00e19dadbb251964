using System.IO.Compression;
using Hl7.Fhir.Model;
using InteropHub.Adapters.Ingest;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Options;

namespace InteropHub.Server.Seeds;

/// <summary><c>InteropHub:Seeds</c>.</summary>
public sealed class SeedOptions
{
    public bool Load { get; set; } = true;

    /// <summary>The seeds folder; by default the <c>seeds</c> folder copied beside the server's binaries.</summary>
    public string? Path { get; set; }
}

/// <summary>
/// Loads the demo data of <c>seeds/</c> through the normal update path. A resource is written only when its id
/// does not exist yet, so restarting the hub adds no versions and never overwrites a user's edits.
/// </summary>
public sealed class SeedLoader(IOptions<SeedOptions> options, FhirSerializers serializers, IResourceStore store,
    UpdateResource update, IInboxStore inbox, IngestPipeline pipeline, ILogger<SeedLoader> logger)
{
    public async Task<int> LoadAsync(CancellationToken ct)
    {
        if (!options.Value.Load)
        {
            return 0;
        }

        var folder = options.Value.Path ?? System.IO.Path.Combine(AppContext.BaseDirectory, "seeds");
        if (!Directory.Exists(folder))
        {
            logger.LogWarning("Seed folder {Folder} not found; no demo data loaded.", folder);
            return 0;
        }

        return await LoadFolderAsync(folder, ct);
    }

    /// <summary>
    /// The code mappings and rule tables of <c>mappings/</c> (ConceptMaps, the recognition catalogue): the hub's
    /// configuration as FHIR data, loaded on every start when absent, demo data or not; edits made over FHIR stay.
    /// </summary>
    public Task<int> LoadMappingsAsync(CancellationToken ct)
    {
        var folder = System.IO.Path.Combine(AppContext.BaseDirectory, "mappings");
        return Directory.Exists(folder) ? LoadFolderAsync(folder, ct) : Task.FromResult(0);
    }

    /// <summary>Writes each resource of the folder's JSON files (resources or collection Bundles) whose id is not stored yet.</summary>
    public async Task<int> LoadFolderAsync(string folder, CancellationToken ct)
    {
        var written = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal))
        {
            var parsed = serializers.ParseJson(await File.ReadAllBytesAsync(file, ct));
            var resources = parsed is Bundle { Type: Bundle.BundleType.Collection } bundle
                ? bundle.Entry.Select(e => e.Resource).OfType<Resource>()
                : [parsed];
            foreach (var resource in resources)
            {
                if (string.IsNullOrEmpty(resource.Id))
                {
                    logger.LogWarning("Seed {File}: a {Type} without id is skipped (seeds need fixed ids).", file, resource.TypeName);
                    continue;
                }

                if (await store.ReadAsync(resource.TypeName, resource.Id, ct) is not null)
                {
                    continue;
                }

                await update.HandleAsync(new UpdateRequest(resource.TypeName, resource.Id, null, resource, null), ct);
                written++;
            }
        }

        if (written > 0)
        {
            logger.LogInformation("Loaded {Count} resources from {Folder}.", written, folder);
        }

        return written + await LoadLegacyAsync(System.IO.Path.Combine(folder, "legacy"), ct);
    }

    /// <summary>
    /// Feeds the sample legacy files through the adapters, as the county's systems would send them (samples/README.md
    /// order: HIS, township batches, certificates), once: only while the inbox is empty. The deliberately invalid
    /// samples are left out; their rejections are shown by the tests.
    /// </summary>
    private async Task<int> LoadLegacyAsync(string folder, CancellationToken ct)
    {
        if (!Directory.Exists(folder) || (await inbox.CountsAsync(ct)).Count > 0)
        {
            return 0;
        }

        var messages = 0;
        foreach (var file in Directory.EnumerateFiles(System.IO.Path.Combine(folder, "his"), "*.hl7").Order(StringComparer.Ordinal))
        {
            await pipeline.ReceiveHl7Async(await File.ReadAllBytesAsync(file, ct), ct);
            messages++;
        }

        foreach (var batch in Directory.EnumerateDirectories(System.IO.Path.Combine(folder, "township")).Order(StringComparer.Ordinal))
        {
            await pipeline.ReceiveTownshipAsync(Zip(batch), ct);
            messages++;
        }

        foreach (var file in Directory.EnumerateFiles(System.IO.Path.Combine(folder, "birth-certificate"), "*.xml").Order(StringComparer.Ordinal))
        {
            await pipeline.ReceiveCertificatesAsync(await File.ReadAllBytesAsync(file, ct), ct);
            messages++;
        }

        logger.LogInformation("Fed {Count} sample legacy messages and batches from {Folder} through the adapters.", messages, folder);
        return messages;
    }

    /// <summary>A township batch folder as the zip the export tool uploads.</summary>
    public static byte[] Zip(string batchFolder)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var file in Directory.EnumerateFiles(batchFolder).Order(StringComparer.Ordinal))
            {
                using var entry = zip.CreateEntry(System.IO.Path.GetFileName(file)).Open();
                entry.Write(File.ReadAllBytes(file));
            }
        }

        return buffer.ToArray();
    }
}
