using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Validate;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Validate;

/// <summary>
/// <c>POST [base]/[type]/$validate</c> and <c>POST [base]/[type]/[id]/$validate</c>: the body is the resource, or a
/// Parameters with <c>resource</c> (and <c>mode</c>); <c>mode</c> is create (default), update or delete. The answer is
/// 200 with an OperationOutcome whether or not the resource is valid, as the operation defines; a body that does not
/// parse is reported the same way, with where it fails. <c>profile</c> (query or parameter) names a profile to check
/// the resource against besides its type's definition and its own <c>meta.profile</c>.
/// </summary>
public static class ValidateEndpoints
{
    public static IEndpointRouteBuilder MapValidateEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/fhir/{type}/$validate", (string type, HttpRequest request, FhirRequestReader reader, ValidateResource handler, CancellationToken ct) =>
            HandleAsync(type, null, request, reader, handler, ct));
        app.MapPost("/fhir/{type}/{id}/$validate", (string type, string id, HttpRequest request, FhirRequestReader reader, ValidateResource handler, CancellationToken ct) =>
            HandleAsync(type, id, request, reader, handler, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(string type, string? id, HttpRequest request, FhirRequestReader reader, ValidateResource handler,
        CancellationToken ct)
    {
        ResourceTypes.EnsureKnown(type);
        if (id is not null)
        {
            ResourceTypes.EnsureValidId(id);
        }

        string? mode = request.Query["mode"];
        string? profile = request.Query["profile"];
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
            resource = parameters.One("resource", "$validate")?.Resource;
            mode = parameters.Text("mode", "$validate") ?? mode;
            profile = parameters.Text("profile", "$validate") ?? profile;
        }

        var validationMode = mode switch
        {
            null or "" or "create" => ValidationMode.Create,
            "update" => ValidationMode.Update,
            "delete" => ValidationMode.Delete,
            _ => throw new InvalidInputException($"mode must be create, update or delete, not '{mode}'.", "mode"),
        };
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
}
