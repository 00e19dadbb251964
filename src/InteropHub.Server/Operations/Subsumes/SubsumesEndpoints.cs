using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Subsumes;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Subsumes;

/// <summary>
/// <c>[base]/CodeSystem/$subsumes</c> and <c>[base]/CodeSystem/[id]/$subsumes</c>, GET with the parameters in the query
/// (<c>codingA</c>/<c>codingB</c> as <c>system|code</c>) or POST with a Parameters body. The answer is Parameters with <c>outcome</c>.
/// </summary>
public static class SubsumesEndpoints
{
    private const string Operation = "$subsumes";

    private static readonly OperationSignature Signature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["codeA"] = "code", ["codeB"] = "code", ["system"] = "uri", ["version"] = "string", ["codingA"] = "Coding", ["codingB"] = "Coding",
    });

    public static IEndpointRouteBuilder MapSubsumesEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/CodeSystem/$subsumes", (HttpRequest request, CheckSubsumption handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(null, Signature.FromQuery(request), handler, serializers, ct));
        app.MapGet("/fhir/CodeSystem/{id}/$subsumes", (string id, HttpRequest request, CheckSubsumption handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(id, Signature.FromQuery(request), handler, serializers, ct));
        app.MapPost("/fhir/CodeSystem/$subsumes", async (HttpRequest request, FhirRequestReader reader, CheckSubsumption handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(null, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        app.MapPost("/fhir/CodeSystem/{id}/$subsumes", async (string id, HttpRequest request, FhirRequestReader reader, CheckSubsumption handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(id, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string? id, Parameters parameters, CheckSubsumption handler, FhirSerializers serializers, CancellationToken ct)
    {
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        var system = parameters.Text("system", Operation);
        var (a, aParameter) = parameters.Concept("codeA", "system", "version", "codingA", Operation);
        var (b, bParameter) = parameters.Concept("codeB", "system", "version", "codingB", Operation);
        var answer = await handler.HandleAsync(new SubsumesRequest(a, aParameter, b, bParameter, id, system, parameters.Text("version", Operation)), ct);
        return FhirResults.Json(serializers.ToJsonBytes(answer));
    }
}
