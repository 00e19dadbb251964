using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Everything;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Everything;

/// <summary><c>GET [base]/Patient/[id]/$everything</c>, mapped literally so the compartment-search route does not take it.</summary>
public static class EverythingEndpoints
{
    private static readonly HashSet<string> Parameters = new(StringComparer.Ordinal) { "_since", "_type", "_count", "_format", "_pretty", Paging.CursorParameter };

    public static IEndpointRouteBuilder MapEverythingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/Patient/{id}/$everything", Everything);
        return app;
    }

    private static async Task<IResult> Everything(string id, HttpRequest request, PatientEverything handler, CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        foreach (var name in request.Query.Keys.Where(k => !Parameters.Contains(k)))
        {
            throw new InvalidInputException($"$everything parameter '{name}' is not supported; use _since, _type, _count.", name);
        }

        var page = await handler.HandleAsync(new EverythingRequest(id, request.Query["_since"], request.Query["_type"], request.Query["_count"],
            request.Query[Paging.CursorParameter]), ct);
        return FhirResults.Json(BundleWriter.SearchSet(page, request));
    }
}
