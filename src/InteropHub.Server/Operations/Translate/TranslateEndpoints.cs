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

    /// <summary>
    /// The parameters taken and their R4 types (OperationDefinition ConceptMap-translate); <c>conceptMap</c> is a resource.
    /// <c>dependency</c> is not taken: the hub does not evaluate a target's <c>dependsOn</c>.
    /// </summary>
    private static readonly Dictionary<string, string> Types = new(StringComparer.Ordinal)
    {
        ["url"] = "uri", ["conceptMapVersion"] = "string", ["code"] = "code", ["system"] = "uri", ["version"] = "string", ["source"] = "uri",
        ["coding"] = "Coding", ["codeableConcept"] = "CodeableConcept", ["target"] = "uri", ["targetsystem"] = "uri", ["reverse"] = "boolean",
        ["_format"] = "string", ["_pretty"] = "string",
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

        foreach (var parameter in parameters.Parameter)
        {
            EnsureTyped(parameter);
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

    /// <summary>A parameter the operation takes, with a value of its type: else a 400 naming it.</summary>
    private static void EnsureTyped(Parameters.ParameterComponent parameter)
    {
        var name = parameter.Name ?? "";
        if (name == "conceptMap")
        {
            if (parameter.Resource is not ConceptMap)
            {
                throw new InvalidInputException($"The {Operation} parameter 'conceptMap' is a ConceptMap resource, not {parameter.Resource?.TypeName ?? parameter.Value?.TypeName ?? "empty"}.", name);
            }

            return;
        }

        if (name == "dependency")
        {
            throw new FhirException(System.Net.HttpStatusCode.BadRequest, OperationOutcome.IssueType.NotSupported,
                $"The {Operation} parameter 'dependency' is not supported: this hub does not evaluate a target's dependsOn.", name);
        }

        if (!Types.TryGetValue(name, out var type))
        {
            throw new InvalidInputException($"{Operation} has no parameter '{name}'.", name);
        }

        if (parameter.Value?.TypeName != type)
        {
            var given = parameter.Value is { } value ? $"a {value.TypeName}" : parameter.Resource is { } resource ? $"a {resource.TypeName} resource" : "no value";
            throw new InvalidInputException($"The {Operation} parameter '{name}' is a {type} (value{char.ToUpperInvariant(type[0])}{type[1..]}), not {given}.", name);
        }
    }

    /// <summary>The query as Parameters, each value of its parameter's type (<c>coding</c> written <c>system|code</c>).</summary>
    private static Parameters FromQuery(HttpRequest request)
    {
        var parameters = new Parameters();
        foreach (var (name, values) in request.Query)
        {
            foreach (var value in values.OfType<string>())
            {
                var bar = value.IndexOf('|', StringComparison.Ordinal);
                parameters.Add(name, Types.GetValueOrDefault(name) switch
                {
                    "Coding" => bar < 0 ? new Coding(null, value) : new Coding(value[..bar], value[(bar + 1)..]),
                    "code" => new Code(value),
                    "uri" => new FhirUri(value),
                    "boolean" => value switch
                    {
                        "true" => new FhirBoolean(true),
                        "false" => new FhirBoolean(false),
                        _ => throw new InvalidInputException($"{name} must be true or false, not '{value}'.", name),
                    },
                    _ => new FhirString(value),
                });
            }
        }

        return parameters;
    }

    private static async Task<Parameters> FromBodyAsync(HttpRequest request, FhirRequestReader reader, CancellationToken ct)
    {
        OperationParameters.EnsureNoneInQuery(request, Operation);
        return await reader.ReadResourceAsync(request, ct) as Parameters
            ?? throw new InvalidInputException($"POST {Operation} takes a Parameters resource.", "Parameters");
    }
}
