using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
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

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "url", "conceptMap", "conceptMapVersion", "code", "system", "version", "source", "coding", "codeableConcept", "target",
        "targetsystem", "reverse", "_format", "_pretty",
    };

    public static IEndpointRouteBuilder MapTranslateEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/ConceptMap/$translate", (HttpRequest request, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(null, FromQuery(request), handler, serializers, ct));
        app.MapGet("/fhir/ConceptMap/{id}/$translate", (string id, HttpRequest request, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(id, FromQuery(request), handler, serializers, ct));
        app.MapPost("/fhir/ConceptMap/$translate", async (HttpRequest request, FhirRequestReader reader, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(null, await FromBodyAsync(request, reader, ct), handler, serializers, ct));
        app.MapPost("/fhir/ConceptMap/{id}/$translate", async (string id, HttpRequest request, FhirRequestReader reader, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(id, await FromBodyAsync(request, reader, ct), handler, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string? id, Parameters parameters, TranslateConcept handler, FhirSerializers serializers, CancellationToken ct)
    {
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        foreach (var unknown in parameters.Parameter.Select(p => p.Name ?? "").Where(n => !Known.Contains(n)))
        {
            throw new InvalidInputException($"$translate has no parameter '{unknown}'.", unknown);
        }

        var codings = new List<Coding>();
        var code = parameters.Text("code", Operation);
        if (code is not null)
        {
            codings.Add(new Coding(parameters.Text("system", Operation), code) { Version = parameters.Text("version", Operation) });
        }

        if (parameters.One("coding", Operation)?.Value is { } coding)
        {
            codings.Add(coding as Coding ?? throw new InvalidInputException("coding must be a Coding.", "coding"));
        }

        if (parameters.One("codeableConcept", Operation)?.Value is { } concept)
        {
            codings.AddRange((concept as CodeableConcept ?? throw new InvalidInputException("codeableConcept must be a CodeableConcept.", "codeableConcept")).Coding);
        }

        var reverse = parameters.Text("reverse", Operation) switch
        {
            null or "false" => false,
            "true" => true,
            var other => throw new InvalidInputException($"reverse must be true or false, not '{other}'.", "reverse"),
        };
        var map = parameters.One("conceptMap", Operation)?.Resource switch
        {
            null => null,
            ConceptMap given => given,
            var other => throw new InvalidInputException($"conceptMap must be a ConceptMap, not a {other.TypeName}.", "conceptMap"),
        };
        var answer = await handler.HandleAsync(new TranslateRequest(codings, id, map, parameters.Text("url", Operation), parameters.Text("conceptMapVersion", Operation),
            parameters.Text("source", Operation), parameters.Text("target", Operation), parameters.Text("targetsystem", Operation), reverse), ct);
        return FhirResults.Json(serializers.ToJsonBytes(answer));
    }

    /// <summary>The query as Parameters: every parameter a primitive, <c>coding</c> written <c>system|code</c>.</summary>
    private static Parameters FromQuery(HttpRequest request)
    {
        var parameters = new Parameters();
        foreach (var (name, values) in request.Query)
        {
            foreach (var value in values.OfType<string>())
            {
                if (name == "coding")
                {
                    var bar = value.IndexOf('|', StringComparison.Ordinal);
                    parameters.Add(name, bar < 0 ? new Coding(null, value) : new Coding(value[..bar], value[(bar + 1)..]));
                }
                else
                {
                    parameters.Add(name, new FhirString(value));
                }
            }
        }

        return parameters;
    }

    private static async Task<Parameters> FromBodyAsync(HttpRequest request, FhirRequestReader reader, CancellationToken ct) =>
        await reader.ReadResourceAsync(request, ct) as Parameters
        ?? throw new InvalidInputException("POST $translate takes a Parameters resource.", "Parameters");
}
