using System.Reflection;
using InteropHub.Fhir.Conformance;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Server.Endpoints;

/// <summary>
/// The CapabilityStatement, serialised once and again whenever the custom search parameters change (a SearchParameter
/// written or deleted), so it always lists what a search accepts.
/// </summary>
public sealed class CapabilityStatementDocument(FhirSerializers serializers, SearchParameterRegistry registry, TimeProvider clock)
{
    private readonly DateTimeOffset _startedAt = clock.GetUtcNow();
    private Built? _built;

    public byte[] Json
    {
        get
        {
            var version = registry.Version;
            if (_built is { } built && built.Version == version)
            {
                return built.Json;
            }

            var software = typeof(CapabilityStatementDocument).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            var json = serializers.ToJsonBytes(CapabilityStatementBuilder.Build(software.Split('+')[0], _startedAt, registry));
            _built = new Built(version, json);
            return json;
        }
    }

    private sealed record Built(int Version, byte[] Json);
}
