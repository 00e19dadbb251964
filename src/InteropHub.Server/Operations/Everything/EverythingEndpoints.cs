using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Everything;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Everything;

/// <summary>
/// <c>[base]/Patient/[id]/$everything</c>, by GET with the parameters in the query or by POST with a Parameters body
/// (operations.html), mapped literally so the compartment-search route does not take it.
/// </summary>
public static class EverythingEndpoints
{
    /// <summary>_since read as history and $export read it, handed on as an instant.</summary>
    private static string? Since(string? raw) =>
        SinceParameter.Parse(raw)?.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffzzz", CultureInfo.InvariantCulture);

    private static readonly HashSet<string> Parameters = new(StringComparer.Ordinal) { "_since", "_type", "_count", "start", "end", "_format", "_pretty", Paging.CursorParameter };

    public static IEndpointRouteBuilder MapEverythingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/Patient/{id}/$everything", Everything);
        app.MapPost("/fhir/Patient/{id}/$everything", EverythingByPost);
        return app;
    }

    private static async Task<IResult> Everything(string id, HttpRequest request, PatientEverything handler, CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        foreach (var name in request.Query.Keys.Where(k => !Parameters.Contains(k)))
        {
            throw Unsupported(name);
        }

        var page = await handler.HandleAsync(new EverythingRequest(id, Since(request.Query["_since"]), request.Query["_type"], request.Query["_count"],
            request.Query[Paging.CursorParameter], request.Query["start"], request.Query["end"]), ct);
        return FhirResults.Json(BundleWriter.SearchSet(page, request));
    }

    /// <summary>The parameters in a Parameters body; the next page's link is a GET with them in its query.</summary>
    private static async Task<IResult> EverythingByPost(string id, HttpRequest request, FhirRequestReader reader, PatientEverything handler,
        CancellationToken ct)
    {
        ResourceTypes.EnsureValidId(id);
        OperationParameters.EnsureNoneInQuery(request, "$everything");

        // No body at all: no parameters.
        var parameters = request.ContentLength == 0 || request.ContentLength is null && request.ContentType is null ? new Parameters() : await reader.ReadResourceAsync(request, ct) as Parameters
            ?? throw new InvalidInputException("POST $everything takes a Parameters resource (or use GET with the parameters in the query).", "resourceType");
        foreach (var name in parameters.Parameter.Select(p => p.Name ?? "").Where(n => n is not ("_since" or "_type" or "_count" or "start" or "end")))
        {
            throw Unsupported(name);
        }

        var since = parameters.One("_since", "$everything")?.Value switch
        {
            null => null,
            Instant { Value: { } instant } => instant.ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture),
            PrimitiveType primitive => Since(primitive.ToString()),
            _ => throw new InvalidInputException("The $everything parameter '_since' is an instant.", "_since"),
        };
        var types = parameters.Parameter.Where(p => p.Name == "_type").Select(p => p.Value is FhirString or Code { Value: not null } ? ((PrimitiveType)p.Value).ToString()!
            : throw new InvalidInputException("The $everything parameter '_type' is a string of resource types (valueString).", "_type")).ToList();
        var page = await handler.HandleAsync(new EverythingRequest(id, since, types.Count == 0 ? null : string.Join(',', types),
            parameters.Text("_count", "$everything"), null, CareDate(parameters, "start"), CareDate(parameters, "end")), ct);
        return FhirResults.Json(BundleWriter.SearchSet(page, request));
    }

    /// <summary><c>start</c> or <c>end</c>: a valueDate (the operation's type), or a valueDateTime.</summary>
    private static string? CareDate(Parameters parameters, string name) => parameters.One(name, "$everything")?.Value switch
    {
        null => null,
        Date date => date.Value,
        FhirDateTime dateTime => dateTime.Value,
        _ => throw new InvalidInputException($"The $everything parameter '{name}' is a date (valueDate).", name),
    };

    private static InvalidInputException Unsupported(string name) =>
        new($"$everything parameter '{name}' is not supported; use _since, _type, _count, start, end.", name);
}
