using System.Reflection;
using InteropHub.Fhir.Conformance;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Server.Endpoints;

/// <summary>The CapabilityStatement, built and serialised once at start-up.</summary>
public sealed class CapabilityStatementDocument(FhirSerializers serializers, TimeProvider clock)
{
    private readonly Lazy<byte[]> _json = new(() =>
    {
        var version = typeof(CapabilityStatementDocument).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        return serializers.ToJsonBytes(CapabilityStatementBuilder.Build(version.Split('+')[0], clock.GetUtcNow()));
    });

    public byte[] Json => _json.Value;
}
