using Hl7.Fhir.Model;
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
    UpdateResource update, ILogger<SeedLoader> logger)
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

        return written;
    }
}
