using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search.Custom;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Reindex;

/// <summary>
/// Re-index jobs: <c>GET [base]/$reindex</c> lists them with their progress (a Parameters resource, one <c>job</c>
/// part each, newest first); <c>POST [base]/$reindex[?_type=A,B]</c> starts a re-index of every live resource (of
/// those types), e.g. for resources stored by a hub older than its search index, and answers 202 with the job.
/// Jobs for added or changed SearchParameters start by themselves.
/// </summary>
public static class ReindexEndpoints
{
    public static IEndpointRouteBuilder MapReindexEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/$reindex", ListAsync);
        app.MapPost("/fhir/$reindex", StartAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(IReindexStore jobs, FhirSerializers serializers, CancellationToken ct) =>
        FhirResults.Json(serializers.ToJsonBytes(Describe(await jobs.ReadReindexJobsAsync(ct))));

    private static async Task<IResult> StartAsync(HttpRequest request, SearchParameterCatalog catalog, FhirSerializers serializers, CancellationToken ct)
    {
        foreach (var name in request.Query.Keys.Where(k => k != "_type"))
        {
            throw new InvalidInputException($"$reindex parameter '{name}' is not supported; use _type.", name);
        }

        var types = request.Query["_type"].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToList();
        foreach (var type in types.Where(t => !ResourceTypes.IsKnown(t)))
        {
            throw new InvalidInputException($"'{type}' in _type is not a resource type.", "_type");
        }

        var job = await catalog.StartAsync(types, ct);
        request.HttpContext.Response.Headers.ContentLocation = $"{FhirResults.BaseUrl(request)}/$reindex";
        return FhirResults.Json(serializers.ToJsonBytes(Describe([job])), StatusCodes.Status202Accepted);
    }

    private static Parameters Describe(IEnumerable<ReindexJob> jobs)
    {
        var parameters = new Parameters();
        foreach (var job in jobs)
        {
            var part = new Parameters.ParameterComponent { Name = "job" };
            part.Part.Add(new() { Name = "id", Value = new FhirString(job.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)) });
            part.Part.Add(new() { Name = "reason", Value = new FhirString(job.Reason) });
            part.Part.Add(new() { Name = "status", Value = new Code(job.Status.ToString().ToLowerInvariant()) });
            foreach (var type in job.ResourceTypes)
            {
                part.Part.Add(new() { Name = "type", Value = new Code(type) });
            }

            part.Part.Add(new() { Name = "done", Value = Count(job.Done) });
            part.Part.Add(new() { Name = "total", Value = Count(job.Total) });
            part.Part.Add(new() { Name = "created", Value = new FhirDateTime(job.Created) });
            part.Part.Add(new() { Name = "updated", Value = new FhirDateTime(job.Updated) });
            if (job.Error is { } error)
            {
                part.Part.Add(new() { Name = "error", Value = new FhirString(error) });
            }

            parameters.Parameter.Add(part);
        }

        return parameters;
    }

    /// <summary>R4 Parameters have no integer64 value: counts are integers (capped, far beyond any real store).</summary>
    private static Integer Count(long value) => new((int)Math.Min(value, int.MaxValue));
}
