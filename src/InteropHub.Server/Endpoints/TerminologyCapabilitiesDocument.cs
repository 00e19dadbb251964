using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Server.Endpoints;

/// <summary>
/// <c>GET [base]/metadata?mode=terminology</c> (capabilitystatement.html#mode): a TerminologyCapabilities naming the code
/// systems stored in the hub (which token <c>:in</c>, <c>:above</c> and <c>:below</c> and the ValueSets they compose
/// draw on), its expansion (<c>ValueSet/$expand</c>: flat, paged, with a text filter), code validation
/// (<c>$validate-code</c>) and translation (<c>ConceptMap/$translate</c>, which needs no map named: without one it reads
/// every stored map of the code's system, so <c>needsMap</c> is false). Built at each request: code
/// systems are data, written over REST like any resource.
/// </summary>
public sealed class TerminologyCapabilitiesDocument(IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock)
{
    /// <summary>The <c>$expand</c> parameters the hub takes (Operations/Expand).</summary>
    private static readonly string[] ExpandParameters = ["url", "valueSet", "valueSetVersion", "filter", "offset", "count", "includeDesignations", "activeOnly", "excludeNested"];

    public async Task<byte[]> JsonAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var systems = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("CodeSystem", null, now.AddTicks(1), ct))
        {
            if (!stored.IsDeleted && serializers.ParseStored(stored.Json) is CodeSystem { Url: { Length: > 0 } url } system)
            {
                if (!systems.TryGetValue(url, out var versions))
                {
                    systems[url] = versions = new SortedSet<string>(StringComparer.Ordinal);
                }

                if (system.Version is { Length: > 0 } version)
                {
                    versions.Add(version);
                }
            }
        }

        var capabilities = new TerminologyCapabilities
        {
            Status = PublicationStatus.Active,
            DateElement = new FhirDateTime(now),
            Kind = CapabilityStatementKind.Instance,
            Name = "InteropHubTerminology",
            Title = "InteropHub terminology capabilities",
            Implementation = new TerminologyCapabilities.ImplementationComponent { Description = "InteropHub health-information interoperability hub" },
            CodeSystem = [.. systems.Select(s => new TerminologyCapabilities.CodeSystemComponent
            {
                Uri = s.Key,
                Version = [.. s.Value.Select(v => new TerminologyCapabilities.VersionComponent { Code = v })],
            })],
            Expansion = new TerminologyCapabilities.ExpansionComponent
            {
                Hierarchical = false,
                Paging = true,
                Incomplete = false,
                TextFilter = "Every word of filter (split at white space) must be found in the code or its display, ignoring case.",
                Parameter = [.. ExpandParameters.Select(name => new TerminologyCapabilities.ParameterComponent { Name = name })],
            },
            ValidateCode = new TerminologyCapabilities.ValidateCodeComponent { Translations = false },
            Translation = new TerminologyCapabilities.TranslationComponent { NeedsMap = false },
        };
        return serializers.ToJsonBytes(capabilities);
    }
}
