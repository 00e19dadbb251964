using Hl7.Fhir.Model;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Expand;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Expand;

/// <summary>
/// <c>[base]/ValueSet/$expand</c> and <c>[base]/ValueSet/[id]/$expand</c>, GET with the parameters in the query or POST
/// with a Parameters body (<c>valueSet</c>, a ValueSet resource, too). The answer is the ValueSet with its expansion.
/// </summary>
public static class ExpandEndpoints
{
    private const string Operation = "$expand";

    /// <summary>The parameters taken, with their R4 types (OperationDefinition ValueSet-expand), and those refused as not supported.</summary>
    private static readonly OperationSignature Signature = new(Operation, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["url"] = "uri", ["valueSet"] = "ValueSet", ["valueSetVersion"] = "string", ["filter"] = "string", ["offset"] = "integer", ["count"] = "integer",
        ["includeDesignations"] = "boolean", ["activeOnly"] = "boolean",
        // The hub's expansions are flat lists: asking for no nesting changes nothing.
        ["excludeNested"] = "boolean",
    }, new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["context"] = "the hub expands ValueSets, not the bindings of elements.",
        ["contextDirection"] = "the hub expands ValueSets, not the bindings of elements.",
        ["date"] = "the hub expands with the code systems as stored now.",
        ["displayLanguage"] = "displays are the code systems' own; ask includeDesignations for the others.",
        ["designation"] = "includeDesignations gives every designation.",
        ["includeDefinition"] = "the answer is the ValueSet as stored, with its expansion.",
        ["excludeNotForUI"] = "abstract codes are marked, not left out.",
        ["excludePostCoordinated"] = "the hub has no post-coordinated codes.",
        ["exclude-system"] = "the hub expands with the code systems stored here.",
        ["system-version"] = "name a code system's version in the ValueSet's compose.",
        ["check-system-version"] = "name a code system's version in the ValueSet's compose.",
        ["force-system-version"] = "name a code system's version in the ValueSet's compose.",
    });

    public static IEndpointRouteBuilder MapExpandEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/ValueSet/$expand", (HttpRequest request, ExpandValueSet handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(null, Signature.FromQuery(request), handler, serializers, ct));
        app.MapGet("/fhir/ValueSet/{id}/$expand", (string id, HttpRequest request, ExpandValueSet handler, FhirSerializers serializers, CancellationToken ct) =>
            HandleAsync(id, Signature.FromQuery(request), handler, serializers, ct));
        app.MapPost("/fhir/ValueSet/$expand", async (HttpRequest request, FhirRequestReader reader, ExpandValueSet handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(null, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        app.MapPost("/fhir/ValueSet/{id}/$expand", async (string id, HttpRequest request, FhirRequestReader reader, ExpandValueSet handler, FhirSerializers serializers, CancellationToken ct) =>
            await HandleAsync(id, await Signature.FromBodyAsync(request, reader, ct), handler, serializers, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string? id, Parameters parameters, ExpandValueSet handler, FhirSerializers serializers, CancellationToken ct)
    {
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        var expanded = await handler.HandleAsync(new ExpandRequest(
            id,
            parameters.Text("url", Operation),
            parameters.One("valueSet", Operation)?.Resource as ValueSet,
            parameters.Text("valueSetVersion", Operation),
            parameters.Text("filter", Operation),
            (parameters.One("offset", Operation)?.Value as Integer)?.Value,
            (parameters.One("count", Operation)?.Value as Integer)?.Value,
            parameters.Flag("includeDesignations", Operation),
            parameters.Flag("activeOnly", Operation)), ct);
        return FhirResults.Json(serializers.ToJsonBytes(expanded));
    }
}
