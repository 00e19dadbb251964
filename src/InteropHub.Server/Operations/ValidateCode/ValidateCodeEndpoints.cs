using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.ValidateCode;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.ValidateCode;

/// <summary>
/// <c>[base]/ValueSet/$validate-code</c> and <c>[base]/CodeSystem/$validate-code</c>, at type and instance level, GET
/// with the parameters in the query (<c>coding</c> as <c>system|code</c>) or POST with a Parameters body
/// (<c>codeableConcept</c>, <c>valueSet</c> / <c>codeSystem</c> too). The answer is Parameters: result, message, display.
/// </summary>
public static class ValidateCodeEndpoints
{
    private const string Operation = "$validate-code";

    private static readonly Dictionary<string, string> NotSupported = new(StringComparer.Ordinal)
    {
        ["date"] = "the hub checks codes against the terminology as stored now.",
        ["displayLanguage"] = "displays are checked against the code's display and all its designations.",
    };

    private static readonly OperationSignature ValueSetSignature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["url"] = "uri", ["valueSet"] = "ValueSet", ["valueSetVersion"] = "string", ["code"] = "code", ["system"] = "uri", ["systemVersion"] = "string",
        ["display"] = "string", ["coding"] = "Coding", ["codeableConcept"] = "CodeableConcept", ["abstract"] = "boolean",
    }, new Dictionary<string, string>(NotSupported, StringComparer.Ordinal) { ["context"] = "the hub checks codes against ValueSets, not the bindings of elements." });

    private static readonly OperationSignature CodeSystemSignature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["url"] = "uri", ["codeSystem"] = "CodeSystem", ["version"] = "string", ["code"] = "code", ["display"] = "string", ["coding"] = "Coding",
        ["codeableConcept"] = "CodeableConcept", ["abstract"] = "boolean",
    }, NotSupported);

    public static IEndpointRouteBuilder MapValidateCodeEndpoints(this IEndpointRouteBuilder app)
    {
        foreach (var type in new[] { "ValueSet", "CodeSystem" })
        {
            var signature = type == "ValueSet" ? ValueSetSignature : CodeSystemSignature;
            app.MapGet($"/fhir/{type}/$validate-code", (HttpRequest request, ValidateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
                HandleAsync(type, null, signature.FromQuery(request), handler, serializers, ct));
            app.MapGet($"/fhir/{type}/{{id}}/$validate-code", (string id, HttpRequest request, ValidateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
                HandleAsync(type, id, signature.FromQuery(request), handler, serializers, ct));
            app.MapPost($"/fhir/{type}/$validate-code", async (HttpRequest request, FhirRequestReader reader, ValidateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
                await HandleAsync(type, null, await signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
            app.MapPost($"/fhir/{type}/{{id}}/$validate-code", async (string id, HttpRequest request, FhirRequestReader reader, ValidateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
                await HandleAsync(type, id, await signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        }

        return app;
    }

    private static async Task<IResult> HandleAsync(string type, string? id, Parameters parameters, ValidateConcept handler, FhirSerializers serializers, CancellationToken ct)
    {
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        var inValueSet = type == "ValueSet";
        var codings = new List<Coding>();
        var (coding, _) = parameters.Concept("code", "system", inValueSet ? "systemVersion" : "version", "coding", Operation);
        if (coding.Code is not null)
        {
            if (!inValueSet && parameters.Text("code", Operation) is not null)
            {
                // CodeSystem/$validate-code's version is the code system's, named with url below; the code is of that system.
                coding.Version = null;
            }

            coding.Display ??= parameters.Text("display", Operation);
            codings.Add(coding);
        }
        else if (parameters.Text("display", Operation) is not null)
        {
            throw new InteropHub.Fhir.Errors.InvalidInputException("A display is checked with its code: give code (or coding) too.", "display");
        }

        var concept = parameters.One("codeableConcept", Operation)?.Value as CodeableConcept;
        if (concept is not null && codings.Count > 0)
        {
            throw new InteropHub.Fhir.Errors.InvalidInputException($"{Operation} checks one concept: code, coding or codeableConcept, not several.", "codeableConcept");
        }

        codings.AddRange(concept?.Coding ?? []);
        var request = new ValidateCodeRequest(codings, concept is not null, id, parameters.Text("url", Operation),
            parameters.Text(inValueSet ? "valueSetVersion" : "version", Operation),
            parameters.One(inValueSet ? "valueSet" : "codeSystem", Operation)?.Resource, parameters.Flag("abstract", Operation));
        var answer = inValueSet ? await handler.InValueSetAsync(request, ct) : await handler.InCodeSystemAsync(request, ct);
        return FhirResults.Json(serializers.ToJsonBytes(answer));
    }
}
