using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Translate;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Translate;

/// <summary>
/// <c>[base]/ConceptMap/$translate</c> and <c>[base]/ConceptMap/[id]/$translate</c>, GET with the parameters in the query
/// (<c>coding</c> as <c>system|code</c>) or POST with a Parameters body (<c>coding</c>, <c>codeableConcept</c> and
/// <c>conceptMap</c> too). The answer is the operation's Parameters: <c>result</c>, <c>message</c>, <c>match</c>es.
/// </summary>
public static class TranslateEndpoints
{
    private const string Operation = "$translate";

    /// <summary>
    /// The parameters taken and their R4 types (OperationDefinition ConceptMap-translate). <c>dependency</c> is not taken:
    /// the hub does not evaluate a target's <c>dependsOn</c>.
    /// </summary>
    private static readonly OperationSignature Signature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["url"] = "uri", ["conceptMap"] = "ConceptMap", ["conceptMapVersion"] = "string", ["code"] = "code", ["system"] = "uri", ["version"] = "string",
        ["source"] = "uri", ["coding"] = "Coding", ["codeableConcept"] = "CodeableConcept", ["target"] = "uri", ["targetsystem"] = "uri", ["reverse"] = "boolean",
    }, new Dictionary<string, string>(StringComparer.Ordinal) { ["dependency"] = "this hub does not evaluate a target's dependsOn." });

    public static IEndpointRouteBuilder MapTranslateEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/ConceptMap/$translate", (HttpRequest request, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(null, Signature.FromQuery(request), handler, serializers, ct));
        app.MapGet("/fhir/ConceptMap/{id}/$translate", (string id, HttpRequest request, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(id, Signature.FromQuery(request), handler, serializers, ct));
        app.MapPost("/fhir/ConceptMap/$translate", async (HttpRequest request, FhirRequestReader reader, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(null, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        app.MapPost("/fhir/ConceptMap/{id}/$translate", async (string id, HttpRequest request, FhirRequestReader reader, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(id, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string? id, Parameters parameters, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct)
    {
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        var codings = new List<Coding>();
        var code = parameters.Text("code", Operation);
        if (code is not null)
        {
            codings.Add(new Coding(parameters.Text("system", Operation), code) { Version = parameters.Text("version", Operation) });
        }

        if (parameters.One("coding", Operation)?.Value is Coding coding)
        {
            codings.Add(coding);
        }

        if (parameters.One("codeableConcept", Operation)?.Value is CodeableConcept concept)
        {
            codings.AddRange(concept.Coding);
        }

        var answer = await handler.HandleAsync(new TranslateRequest(codings, id, parameters.One("conceptMap", Operation)?.Resource as ConceptMap,
            parameters.Text("url", Operation), parameters.Text("conceptMapVersion", Operation), parameters.Text("source", Operation),
            parameters.Text("target", Operation), parameters.Text("targetsystem", Operation),
            (parameters.One("reverse", Operation)?.Value as FhirBoolean)?.Value ?? false), ct);
        return FhirResults.Json(serializers.ToJsonBytes(answer));
    }
}
