using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Fhir.BulkData.Import;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Import;

/// <summary>
/// Bulk import (the Bulk Data import draft, HAPI FHIR's <c>$import</c> shape): <c>POST [base]/$import</c> with
/// <c>Prefer: respond-async</c> and a Parameters body (<c>inputFormat</c> application/fhir+ndjson, one <c>input</c>
/// part per file, folder or URL with <c>type</c> and <c>url</c>) → 202 and a status URL; polling → 202 with
/// <c>X-Progress</c> until a 200 result with the counts per type and a link to the failed lines (OperationOutcome
/// NDJSON naming input and line); DELETE on the status URL stops the job and removes it.
/// </summary>
public static class ImportEndpoints
{
    private const string NdjsonFormat = "application/fhir+ndjson";

    public static IEndpointRouteBuilder MapImportEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/fhir/$import", KickOffAsync);
        app.MapGet("/fhir/$import-status/{job}", StatusAsync);
        app.MapDelete("/fhir/$import-status/{job}", CancelAsync);
        app.MapGet("/fhir/$import-errors/{job}", ErrorsAsync);
        return app;
    }

    private static async Task<IResult> KickOffAsync(HttpRequest request, FhirRequestReader reader, ImportJobs jobs, CancellationToken ct)
    {
        if (!request.Headers["Prefer"].ToString().Contains("respond-async", StringComparison.Ordinal))
        {
            throw new InvalidInputException("A bulk import runs asynchronously: send the header 'Prefer: respond-async'.", "Prefer");
        }

        if (await reader.ReadResourceAsync(request, ct) is not Parameters parameters)
        {
            throw new InvalidInputException("The $import body must be a Parameters resource with inputFormat and input parts.");
        }

        var inputs = new List<ImportInput>();
        foreach (var parameter in parameters.Parameter)
        {
            switch (parameter.Name)
            {
                case "inputFormat":
                    var format = parameter.Value?.ToString();
                    if (format is not (NdjsonFormat or "application/ndjson" or "ndjson"))
                    {
                        throw new InvalidInputException($"inputFormat '{format}' is not supported; inputs are {NdjsonFormat}.", "inputFormat");
                    }

                    break;
                case "input":
                    var type = parameter.Part.FirstOrDefault(p => p.Name == "type")?.Value?.ToString();
                    var url = parameter.Part.FirstOrDefault(p => p.Name == "url")?.Value?.ToString();
                    if (string.IsNullOrWhiteSpace(url))
                    {
                        throw new InvalidInputException($"Input {inputs.Count + 1} has no url part.", "input.url");
                    }

                    inputs.Add(new ImportInput(string.IsNullOrWhiteSpace(type) ? null : type, url));
                    break;
                case "inputSource" or "storageDetail" or "mode":
                    break;
                default:
                    throw new InvalidInputException($"$import parameter '{parameter.Name}' is not supported; use inputFormat and input.", parameter.Name);
            }
        }

        var job = await jobs.StartAsync(new ImportRequest(jobs.Resolve(inputs), $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}",
            Client: true, Caller: CallerContext.Organization), ct);
        request.HttpContext.Response.Headers.ContentLocation = $"{FhirResults.BaseUrl(request)}/$import-status/{job.Id}";
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> StatusAsync(string job, HttpRequest request, ImportJobs jobs, CancellationToken ct)
    {
        var status = await jobs.GetAsync(job, ct);
        var progress = status.Progress;
        var response = request.HttpContext.Response;
        switch (status.State)
        {
            case ImportState.Running:
                response.Headers["X-Progress"] =
                    $"{progress.Imported} resources imported, {progress.Errors} lines failed, at line {progress.Line} of input {progress.Input + 1} of {status.Request.Inputs.Count}";
                response.Headers.RetryAfter = "1";
                return Results.StatusCode(StatusCodes.Status202Accepted);
            case ImportState.Failed:
                return FhirResults.Outcome(FhirException.Issue(OperationOutcome.IssueType.Exception, $"The import failed: {status.Error}"),
                    StatusCodes.Status500InternalServerError);
            default:
                var result = new
                {
                    transactionTime = status.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                    request = status.Request.RequestUrl,
                    requiresAccessToken = false,
                    output = progress.Counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => new { type = c.Key, count = c.Value }),
                    error = progress.Errors == 0
                        ? []
                        : new[] { new { type = "OperationOutcome", count = progress.Errors, url = $"{FhirResults.BaseUrl(request)}/$import-errors/{status.Id}" } },
                };
                return Results.Json(result, new JsonSerializerOptions { Encoder = FhirSerializers.Encoder });
        }
    }

    private static async Task<IResult> CancelAsync(string job, ImportJobs jobs, CancellationToken ct)
    {
        await jobs.DeleteAsync(job, ct);
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    /// <summary>A file under the import folder as the client names it (relative to the folder), not by the server's own path.</summary>
    private static string Shown(string input, string root) =>
        Path.IsPathFullyQualified(input) && Path.GetRelativePath(root, input) is var relative && !relative.StartsWith("..", StringComparison.Ordinal)
            && !Path.IsPathFullyQualified(relative)
            ? relative.Replace(Path.DirectorySeparatorChar, '/')
            : input;

    /// <summary>One OperationOutcome per failed line, naming the input and the line, streamed page by page from the store.</summary>
    private static async Task ErrorsAsync(string job, HttpContext context, ImportJobs jobs, FhirSerializers serializers, CancellationToken ct)
    {
        var status = await jobs.GetAsync(job, ct);
        context.Response.ContentType = NdjsonFormat;
        var (input, line) = (-1, 0L);
        while (true)
        {
            var errors = await jobs.ErrorsAsync(job, input, line, 1000, ct);
            foreach (var error in errors)
            {
                var where = $"{Shown(status.Request.Inputs[error.Input].Url, jobs.Root)} line {error.Line}";
                var outcome = FhirException.Issue(OperationOutcome.IssueType.Invalid, $"{where}: {error.Message}");
                outcome.Issue[0].Location = [where];
                await context.Response.Body.WriteAsync(serializers.ToJsonBytes(outcome), ct);
                await context.Response.Body.WriteAsync("\n"u8.ToArray(), ct);
            }

            if (errors.Count < 1000)
            {
                return;
            }

            (input, line) = (errors[^1].Input, errors[^1].Line);
        }
    }
}
