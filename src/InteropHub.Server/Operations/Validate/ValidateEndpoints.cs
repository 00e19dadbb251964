using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Validate;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Validate;

/// <summary>
/// <c>POST [base]/[type]/$validate</c> and <c>POST [base]/[type]/[id]/$validate</c>: the body is the resource, or a
/// Parameters with <c>resource</c> (and <c>mode</c>, <c>profile</c>); <c>mode</c> is create (the default at type level),
/// update (the default on an instance) or delete. <c>GET [base]/[type]/[id]/$validate</c> validates the stored version.
/// The answer is 200 with an OperationOutcome whether or not the resource is valid, as the operation defines; a body
/// that does not parse is reported the same way, with where it fails. A request the operation cannot run (an unknown
/// or repeated parameter, an unknown mode, a delete without an instance) is a 400. <c>profile</c> (query or parameter)
/// names a profile to check the resource against besides its type's definition and its own <c>meta.profile</c>.
/// </summary>
public static class ValidateEndpoints
{
    /// <summary>The parameters of Resource-validate (operation-resource-validate).</summary>
    private static readonly string[] Parameters = ["resource", "mode", "profile"];

    public static IEndpointRouteBuilder MapValidateEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/fhir/{type}/$validate", (string type, HttpRequest request, FhirRequestReader reader, ValidateResource handler, CancellationToken ct) =>
            HandleAsync(type, null, request, reader, handler, ct));
        app.MapPost("/fhir/{type}/{id}/$validate", (string type, string id, HttpRequest request, FhirRequestReader reader, ValidateResource handler, CancellationToken ct) =>
            HandleAsync(type, id, request, reader, handler, ct));
        app.MapGet("/fhir/{type}/{id}/$validate", ValidateStoredAsync);
        return app;
    }

    /// <summary>The stored current version, checked as an update of itself would be, or with <c>mode=delete</c> as its deletion.</summary>
    private static async Task<IResult> ValidateStoredAsync(string type, string id, HttpRequest request, Fhir.Resources.Read.ReadResource read,
        Fhir.Serialization.FhirSerializers serializers, ValidateResource handler, CancellationToken ct)
    {
        ResourceTypes.EnsureKnown(type);
        var (mode, profile) = QueryParameters(request);
        var validationMode = Mode(mode, id, ValidationMode.Update);
        Resource? resource = null;
        if (validationMode != ValidationMode.Delete)
        {
            var stored = await read.ReadAsync(type, id, ct);
            if (stored.IsDeleted)
            {
                return FhirResults.Gone(stored);
            }

            resource = serializers.ParseStored(stored.Json);
        }

        return FhirResults.Outcome(await handler.HandleAsync(new ValidateRequest(type, id, resource, validationMode, profile), ct), StatusCodes.Status200OK);
    }

    private static async Task<IResult> HandleAsync(string type, string? id, HttpRequest request, FhirRequestReader reader, ValidateResource handler,
        CancellationToken ct)
    {
        ResourceTypes.EnsureKnown(type);
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        var (mode, profile) = QueryParameters(request);
        Resource? resource = null;
        if (mode != "delete" || request.ContentLength > 0)
        {
            try
            {
                resource = await reader.ReadResourceAsync(request, ct);
            }
            catch (InvalidInputException e)
            {
                // The resource is not valid FHIR: that is the validation's answer.
                return FhirResults.Outcome(e.Outcome, StatusCodes.Status200OK);
            }
        }

        if (resource is Parameters parameters && type != "Parameters")
        {
            if (parameters.Parameter.FirstOrDefault(p => !Parameters.Contains(p.Name)) is { } unknown)
            {
                throw new InvalidInputException($"$validate has no parameter '{unknown.Name}'; it takes {string.Join(", ", Parameters)}.", unknown.Name);
            }

            resource = parameters.One("resource", "$validate")?.Resource;
            mode = parameters.Text("mode", "$validate") ?? mode;
            profile = parameters.Text("profile", "$validate") ?? profile;
        }

        // On an instance, the question is whether the resource may replace it.
        var validationMode = Mode(mode, id, id is null ? ValidationMode.Create : ValidationMode.Update);
        if (resource is not null && validationMode != ValidationMode.Delete)
        {
            try
            {
                // The reference rules of a create or update (a conditional reference is refused outside a transaction).
                LocalReferences.Prepare(resource, FhirResults.BaseUrl(request));
            }
            catch (InvalidInputException e)
            {
                return FhirResults.Outcome(e.Outcome, StatusCodes.Status200OK);
            }
        }

        return FhirResults.Outcome(await handler.HandleAsync(new ValidateRequest(type, id, resource, validationMode, string.IsNullOrEmpty(profile) ? null : profile), ct), StatusCodes.Status200OK);
    }

    /// <summary><c>mode</c> and <c>profile</c> of the query, each at most once; any other parameter but the formatting ones is a 400.</summary>
    private static (string? Mode, string? Profile) QueryParameters(HttpRequest request)
    {
        foreach (var (key, values) in request.Query)
        {
            if (key is "_format" or "_pretty")
            {
                continue;
            }

            if (key is not ("mode" or "profile"))
            {
                throw new InvalidInputException($"$validate has no parameter '{key}'; it takes {string.Join(", ", Parameters)}.", key);
            }

            if (values.Count > 1)
            {
                throw new InvalidInputException($"The $validate parameter '{key}' is given more than once.", key);
            }
        }

        string? profile = request.Query["profile"];
        return (request.Query["mode"], string.IsNullOrEmpty(profile) ? null : profile);
    }

    private static ValidationMode Mode(string? mode, string? id, ValidationMode absent)
    {
        var validationMode = mode switch
        {
            null or "" => absent,
            "create" => ValidationMode.Create,
            "update" => ValidationMode.Update,
            "delete" => ValidationMode.Delete,
            _ => throw new InvalidInputException($"mode must be create, update or delete, not '{mode}'.", "mode"),
        };
        return validationMode == ValidationMode.Delete && id is null
            ? throw new InvalidInputException("A delete is validated on an instance: POST [base]/[type]/[id]/$validate?mode=delete.", "mode")
            : validationMode;
    }
}
