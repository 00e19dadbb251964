using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources.Lookup;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Lookup;

/// <summary>
/// <c>[base]/CodeSystem/$lookup</c>, GET with the parameters in the query (<c>coding</c> as <c>system|code</c>) or POST
/// with a Parameters body. The answer is the operation's Parameters: name, version, display, designations, properties.
/// </summary>
public static class LookupEndpoints
{
    private const string Operation = "$lookup";

    private static readonly OperationSignature Signature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["code"] = "code", ["system"] = "uri", ["version"] = "string", ["coding"] = "Coding", ["property"] = "code",
    }, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["date"] = "the hub looks codes up in the code systems as stored now.",
        ["displayLanguage"] = "the display is the code system's own; the designations carry the others.",
    });

    public static IEndpointRouteBuilder MapLookupEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/CodeSystem/$lookup", (HttpRequest request, LookupCode handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(Signature.FromQuery(request), handler, serializers, ct));
        app.MapPost("/fhir/CodeSystem/$lookup", async (HttpRequest request, FhirRequestReader reader, LookupCode handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(Parameters parameters, LookupCode handler, FhirSerializers serializers, CancellationToken ct)
    {
        var (coding, parameter) = parameters.Concept("code", "system", "version", "coding", Operation);
        var properties = parameters.Parameter.Where(p => p.Name == "property").Select(p => p.Value?.ToString() ?? "").ToList();
        var answer = await handler.HandleAsync(new LookupRequest(coding, parameter, properties), ct);
        return FhirResults.Json(serializers.ToJsonBytes(answer));
    }
}
