using System.Globalization;
using System.Text.Json;
using InteropHub.Fhir.BulkData.Export;
using InteropHub.Fhir.Errors;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Export;

/// <summary>
/// Bulk Data export (FHIR Bulk Data Access IG v2, export.html): kick-off with <c>Prefer: respond-async</c> → 202 and
/// a status URL; polling → 202 with <c>X-Progress</c> until the 200 manifest; the NDJSON files are served here;
/// DELETE on the status URL cancels and removes the job.
/// </summary>
public static partial class ExportEndpoints
{
    private static readonly HashSet<string> KickOffParameters = new(StringComparer.Ordinal) { "_type", "_since", "_outputFormat", "_typeFilter" };

    public static IEndpointRouteBuilder MapExportEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/$export", (HttpRequest request, ExportJobs jobs, CancellationToken ct) => KickOffAsync(request, jobs, ExportLevel.System, null, ct));
        app.MapGet("/fhir/Patient/$export", (HttpRequest request, ExportJobs jobs, CancellationToken ct) => KickOffAsync(request, jobs, ExportLevel.Patient, null, ct));
        app.MapGet("/fhir/Group/{id}/$export", (string id, HttpRequest request, ExportJobs jobs, CancellationToken ct) =>
            KickOffAsync(request, jobs, ExportLevel.Group, id, ct));
        app.MapGet("/fhir/$export-status/{job}", Status);
        app.MapDelete("/fhir/$export-status/{job}", Cancel);
        app.MapGet("/fhir/$export-file/{job}/{file}", File);
        return app;
    }

    private static async Task<IResult> KickOffAsync(HttpRequest request, ExportJobs jobs, ExportLevel level, string? groupId, CancellationToken ct)
    {
        var prefer = request.Headers["Prefer"].ToString();
        if (!prefer.Contains("respond-async", StringComparison.Ordinal))
        {
            throw new InvalidInputException("A bulk export runs asynchronously: send the header 'Prefer: respond-async'.", "Prefer");
        }

        foreach (var name in request.Query.Keys.Where(k => !KickOffParameters.Contains(k)))
        {
            throw new InvalidInputException($"Export parameter '{name}' is not supported; use _type, _since, _typeFilter, _outputFormat.", name);
        }

        var format = request.Query["_outputFormat"].ToString();
        // "application/fhir ndjson": the '+' sent unencoded, which a query string reads as a space.
        if (format.Length > 0 && format is not ("application/fhir+ndjson" or "application/fhir ndjson" or "application/ndjson" or "ndjson"))
        {
            throw new InvalidInputException($"_outputFormat '{format}' is not supported; exports are application/fhir+ndjson.", "_outputFormat");
        }

        var types = request.Query["_type"].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToList();
        var typeFilters = request.Query["_typeFilter"].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        var job = await jobs.StartAsync(new ExportRequest(types, Since(request.Query["_since"]),
            $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}{request.QueryString}", level, groupId, typeFilters), ct);
        request.HttpContext.Response.Headers.ContentLocation = $"{FhirResults.BaseUrl(request)}/$export-status/{job.Id}";
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    private static IResult Status(string job, HttpRequest request, ExportJobs jobs)
    {
        var state = jobs.Get(job);
        var response = request.HttpContext.Response;
        switch (state.State)
        {
            case ExportState.InProgress:
                response.Headers["X-Progress"] = $"{state.Exported} resources exported" + (state.CurrentType is null ? "" : $", at {state.CurrentType}");
                response.Headers.RetryAfter = "1";
                return Results.StatusCode(StatusCodes.Status202Accepted);
            case ExportState.Failed:
                return FhirResults.Outcome(FhirException.Issue(Hl7.Fhir.Model.OperationOutcome.IssueType.Exception, $"The export failed: {state.Error}"),
                    StatusCodes.Status500InternalServerError);
            default:
                var baseUrl = FhirResults.BaseUrl(request);
                var manifest = new
                {
                    transactionTime = state.TransactionTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                    request = state.Request.RequestUrl,
                    requiresAccessToken = false,
                    output = state.Output.Select(f => new { type = f.Type, url = $"{baseUrl}/$export-file/{state.Id}/{f.FileName}", count = f.Count }),
                    error = Array.Empty<object>(),
                };
                return Results.Json(manifest, new JsonSerializerOptions { Encoder = Fhir.Serialization.FhirSerializers.Encoder });
        }
    }

    private static async Task<IResult> Cancel(string job, ExportJobs jobs)
    {
        await jobs.DeleteAsync(job);
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    private static IResult File(string job, string file, ExportJobs jobs) =>
        Results.File(jobs.FilePath(job, file), "application/fhir+ndjson");

    private static DateTimeOffset? Since(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return null;
        }

        // A FHIR instant; an offset's '+' sent unencoded arrives as a space, and is read as the '+' it was.
        var text = raw.Length > 6 && raw[^6] == ' ' ? string.Concat(raw.AsSpan(0, raw.Length - 6), "+", raw.AsSpan(raw.Length - 5)) : raw;
        return Instant().IsMatch(text) && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var since)
            ? since
            : throw new InvalidInputException($"_since must be an instant such as 2024-01-31T08:00:00Z, not '{raw}'.", "_since");
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")]
    private static partial System.Text.RegularExpressions.Regex Instant();
}
