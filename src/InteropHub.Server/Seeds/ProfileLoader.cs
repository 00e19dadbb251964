using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search.Custom;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Options;

namespace InteropHub.Server.Seeds;

/// <summary><c>InteropHub:Profiles</c>.</summary>
public sealed class ProfileOptions
{
    /// <summary>The profiles folder; by default the <c>profiles</c> folder copied beside the server's binaries.</summary>
    public string? Path { get; set; }
}

/// <summary>
/// Installs the SearchParameter resources of <c>profiles/</c> at start-up through the normal update path: a
/// parameter missing from the store, or stored with another definition, is written, which registers it and starts
/// the re-index of the resources it applies to (see <see cref="SearchParameterCatalog"/>). An unchanged one is left alone.
/// </summary>
public sealed class ProfileLoader(IOptions<ProfileOptions> options, FhirSerializers serializers, IResourceStore store, UpdateResource update,
    ILogger<ProfileLoader> logger)
{
    public async Task<int> LoadAsync(CancellationToken ct)
    {
        var folder = options.Value.Path ?? System.IO.Path.Combine(AppContext.BaseDirectory, "profiles");
        if (!Directory.Exists(folder))
        {
            return 0;
        }

        var written = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (serializers.ParseJson(await File.ReadAllBytesAsync(file, ct)) is not SearchParameter parameter)
            {
                continue;
            }

            if (string.IsNullOrEmpty(parameter.Id))
            {
                logger.LogWarning("Profile {File}: a SearchParameter without id is skipped (profiles need fixed ids).", file);
                continue;
            }

            var definition = CustomSearchParameter.From(parameter).DefinitionKey;
            if (await store.ReadAsync("SearchParameter", parameter.Id, ct) is { IsDeleted: false } stored
                && serializers.ParseStored(stored.Json) is SearchParameter current
                && StoredDefinition(current) == definition)
            {
                continue;
            }

            await update.HandleAsync(new UpdateRequest("SearchParameter", parameter.Id, null, parameter, null), ct);
            written++;
        }

        if (written > 0)
        {
            logger.LogInformation("Installed {Count} search parameters from {Folder}.", written, folder);
        }

        return written;
    }

    private static string? StoredDefinition(SearchParameter stored)
    {
        try
        {
            return CustomSearchParameter.From(stored).DefinitionKey;
        }
        catch (Fhir.Errors.FhirException)
        {
            return null;
        }
    }
}
