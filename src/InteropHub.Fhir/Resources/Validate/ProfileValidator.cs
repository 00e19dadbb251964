using Firely.Fhir.Validation;
using Firely.Fhir.Validation.Compilation;
using Hl7.Fhir.Model;
using Hl7.Fhir.Specification.Source;
using Hl7.Fhir.Specification.Terminology;
using InteropHub.Fhir.Search.Terminology;

namespace InteropHub.Fhir.Resources.Validate;

/// <summary>
/// The structural half of <c>$validate</c>: a resource against the FHIR R4 definition of its type, the profiles of its
/// <c>meta.profile</c> and the <c>profile</c> asked for, with Firely's validator (cardinality, required bindings,
/// invariants such as pat-1 or obs-6, fixed values, slices). Definitions come from the R4 specification package (the
/// core types and the profiles it publishes: vitalsigns, heartrate, bp…) and from the StructureDefinitions, ValueSets
/// and CodeSystems stored in the hub, read afresh at each validation, so a profile just written counts at once (one
/// with only a differential gets its snapshot generated). The package's compiled schemas are kept for the hub's life:
/// the first validation takes seconds, the next ones milliseconds.
/// </summary>
public sealed class ProfileValidator(LocalTerminology stored)
{
    // The schema resolvers are marked experimental by the validator's authors; the package version is pinned, and
    // without a cache of the package's schemas every validation would compile the core types again (about 100 ms).
#pragma warning disable ExperimentalApi
    private readonly Lazy<(IAsyncResourceResolver Definitions, IElementSchemaResolver Schemas)> _package = new(() =>
    {
        var definitions = new CachedResolver(ZipSource.CreateValidationSource());
        return (definitions, StructureDefinitionToElementSchemaResolver.CreatedCached(definitions));
    });

    /// <summary>The validator's issues, each with the FHIRPath of where it is; empty when the resource conforms.</summary>
    public Task<OperationOutcome> ValidateAsync(Resource resource, string? profile, CancellationToken ct) =>
        // The validator reads definitions synchronously; it runs off the request's thread.
        System.Threading.Tasks.Task.Run(() =>
        {
            var (package, packageSchemas) = _package.Value;
            var definitions = new SnapshotSource(new MultiResolver(package, new CachedResolver(new StoredDefinitions(stored, ct))));
            var schemas = new MultiElementSchemaResolver(packageSchemas, StructureDefinitionToElementSchemaResolver.Create(definitions));
            var validator = new Validator(definitions, new LocalTerminologyService(definitions), null, null, schemas);
            try
            {
                return profile is null ? validator.Validate(resource) : validator.Validate(resource, profile);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A stored definition the validator cannot use (a broken snapshot, an unknown base): said, not a 500.
                return Errors.FhirException.Issue(OperationOutcome.IssueType.Exception,
                    $"The resource could not be validated against its profiles: {e.Message}");
            }
        }, ct);
#pragma warning restore ExperimentalApi

    /// <summary>Whether a profile's definition is at hand: in the R4 package or stored in the hub.</summary>
    public async Task<bool> KnowsAsync(string profile, CancellationToken ct) =>
        (await ((CachedResolver)_package.Value.Definitions).TryResolveByCanonicalUriAsync(profile)).Value is not null
        || await new StoredDefinitions(stored, ct).ResolveByCanonicalUriAsync(profile) is StructureDefinition;

    /// <summary>The hub's stored conformance resources by canonical URL (<c>url|version</c> for a version).</summary>
    private sealed class StoredDefinitions(LocalTerminology stored, CancellationToken ct) : IAsyncResourceResolver
    {
        public async Task<Resource?> ResolveByCanonicalUriAsync(string uri)
        {
            var bar = uri.LastIndexOf('|');
            var (url, version) = bar < 0 ? (uri, null) : (uri[..bar], uri[(bar + 1)..]);
            return await stored.ByUrlAsync<StructureDefinition>("StructureDefinition", url, version, ct) as Resource
                ?? await stored.ByUrlAsync<ValueSet>("ValueSet", url, version, ct) as Resource
                ?? await stored.ByUrlAsync<CodeSystem>("CodeSystem", url, version, ct);
        }

        public Task<Resource?> ResolveByUriAsync(string uri) => ResolveByCanonicalUriAsync(uri);
    }
}
