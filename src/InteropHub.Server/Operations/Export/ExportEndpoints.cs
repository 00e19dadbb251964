using System.Globalization;
using System.Text.Json;
using InteropHub.Fhir.BulkData.Export;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Server.Formatting;

namespace InteropHub.Server.Operations.Export;

/// <summary>
/// Bulk Data export (FHIR Bulk Data Access IG v2, export.html): kick-off with <c>Prefer: respond-async</c> → 202 and
/// a status URL; polling → 202 with <c>X-Progress</c> until the 200 manifest; the NDJSON files are served here;
/// DELETE on the status URL cancels and removes the job.
/// </summary>
public static class ExportEndpoints
{
    private static readonly HashSet<string> KickOffParameters = new(StringComparer.Ordinal) { "_type", "_since", "_outputFormat", "_typeFilter", "patient", "_elements" };

    public static IEndpointRouteBuilder MapExportEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/fhir/$export", (HttpRequest request, ExportJobs jobs, CancellationToken ct) =>
            KickOffAsync(request, QueryParameters(request), jobs, ExportLevel.System, null, ct));
        app.MapGet("/fhir/Patient/$export", (HttpRequest request, ExportJobs jobs, CancellationToken ct) =>
            KickOffAsync(request, QueryParameters(request), jobs, ExportLevel.Patient, null, ct));
        app.MapGet("/fhir/Group/{id}/$export", (string id, HttpRequest request, ExportJobs jobs, CancellationToken ct) =>
            KickOffAsync(request, QueryParameters(request), jobs, ExportLevel.Group, id, ct));
        app.MapPost("/fhir/$export", async (HttpRequest request, FhirRequestReader reader, ExportJobs jobs, CancellationToken ct) =>
            await KickOffAsync(request, await BodyParametersAsync(request, reader, ct), jobs, ExportLevel.System, null, ct));
        app.MapPost("/fhir/Patient/$export", async (HttpRequest request, FhirRequestReader reader, ExportJobs jobs, CancellationToken ct) =>
            await KickOffAsync(request, await BodyParametersAsync(request, reader, ct), jobs, ExportLevel.Patient, null, ct));
        app.MapPost("/fhir/Group/{id}/$export", async (string id, HttpRequest request, FhirRequestReader reader, ExportJobs jobs, CancellationToken ct) =>
            await KickOffAsync(request, await BodyParametersAsync(request, reader, ct), jobs, ExportLevel.Group, id, ct));
        app.MapGet("/fhir/$export-status/{job}", Status);
        app.MapDelete("/fhir/$export-status/{job}", Cancel);
        app.MapGet("/fhir/$export-file/{job}/{file}", File);
        return app;
    }

    /// <param name="parameters">The kick-off's parameters, from the query (GET) or a Parameters body (POST), in order.</param>
    private static async Task<IResult> KickOffAsync(HttpRequest request, List<KeyValuePair<string, string>> parameters, ExportJobs jobs,
        ExportLevel level, string? groupId, CancellationToken ct)
    {
        var prefer = request.Headers["Prefer"].ToString();
        if (!prefer.Contains("respond-async", StringComparison.Ordinal))
        {
            throw new InvalidInputException("A bulk export runs asynchronously: send the header 'Prefer: respond-async'.", "Prefer");
        }

        // export.html: a parameter the server does not support is an error, unless the client asked for lenient handling.
        var lenient = prefer.Contains("handling=lenient", StringComparison.Ordinal);
        if (!lenient && parameters.Select(p => p.Key).FirstOrDefault(k => !KickOffParameters.Contains(k)) is { } unsupported)
        {
            throw new InvalidInputException(
                $"Export parameter '{unsupported}' is not supported; use _type, _since, _typeFilter, _elements, _outputFormat, patient (or send Prefer: handling=lenient to have it ignored).",
                unsupported);
        }

        string[] Values(string name) => parameters.Where(p => p.Key == name).Select(p => p.Value).ToArray();
        string Single(string name) => Values(name) switch
        {
            [] => "",
            [var one] => one,
            _ => throw new InvalidInputException($"Export parameter '{name}' is given more than once.", name),
        };
        var format = Single("_outputFormat");
        // "application/fhir ndjson": the '+' sent unencoded, which a query string reads as a space.
        if (format.Length > 0 && format is not ("application/fhir+ndjson" or "application/fhir ndjson" or "application/ndjson" or "ndjson"))
        {
            throw new InvalidInputException($"_outputFormat '{format}' is not supported; exports are application/fhir+ndjson.", "_outputFormat");
        }

        var types = Values("_type").SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToList();
        var typeFilters = Values("_typeFilter").SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        // Given at all, patient narrows the export: a value that names no patient is refused, never read as "every patient".
        var baseUrl = FhirResults.BaseUrl(request);
        var patientValues = Values("patient");
        var patients = patientValues.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries))
            .Select(v => PatientId(v, baseUrl)).Distinct(StringComparer.Ordinal).ToList();
        var job = await jobs.StartAsync(new ExportRequest(types, SinceParameter.Parse(Single("_since")),
            $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}{request.QueryString}", level, groupId, typeFilters,
            patientValues.Length > 0 ? patients : null,
            Values("_elements").SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct(StringComparer.Ordinal).ToList()), ct);
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
                object[] Files(IEnumerable<ExportFile> files) =>
                    [.. files.Select(f => new { type = f.Type, url = $"{baseUrl}/$export-file/{state.Id}/{f.FileName}", count = f.Count })];
                var manifest = new
                {
                    transactionTime = state.TransactionTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                    request = state.Request.RequestUrl,
                    requiresAccessToken = false,
                    output = Files(state.Output),
                    // With _since, the deletions since then (export.html, "deleted"); without, no key.
                    deleted = state.Request.Since is null ? null : Files(state.Deleted ?? []),
                    error = Array.Empty<object>(),
                };
                return Results.Json(manifest, new JsonSerializerOptions
                {
                    Encoder = Fhir.Serialization.FhirSerializers.Encoder,
                    DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
                });
        }
    }

    private static async Task<IResult> Cancel(string job, ExportJobs jobs)
    {
        await jobs.DeleteAsync(job);
        return Results.StatusCode(StatusCodes.Status202Accepted);
    }

    private static IResult File(string job, string file, ExportJobs jobs) =>
        Results.File(jobs.FilePath(job, file), "application/fhir+ndjson");

    private static List<KeyValuePair<string, string>> QueryParameters(HttpRequest request) =>
        request.Query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList();

    /// <summary>
    /// A POST kick-off's Parameters (export.html, "POST"): each parameter as the text a query would give it; a
    /// <c>patient</c> is a valueReference.
    /// </summary>
    private static async Task<List<KeyValuePair<string, string>>> BodyParametersAsync(HttpRequest request, FhirRequestReader reader, CancellationToken ct)
    {
        OperationParameters.EnsureNoneInQuery(request, "$export");
        var parameters = await reader.ReadResourceAsync(request, ct) as Hl7.Fhir.Model.Parameters
            ?? throw new InvalidInputException("POST $export takes a Parameters resource (or use GET with the parameters in the query).", "resourceType");
        return parameters.Parameter.Select((p, i) => new KeyValuePair<string, string>(p.Name ?? "", p.Value switch
        {
            Hl7.Fhir.Model.ResourceReference { Reference: { } reference } => reference,
            Hl7.Fhir.Model.ResourceReference => throw new InvalidInputException(
                $"Parameters.parameter[{i}] ('{p.Name}') names no resource: give its reference, Patient/[id] (a reference by identifier is not supported).",
                $"Parameters.parameter[{i}]"),
            Hl7.Fhir.Model.Instant { Value: { } instant } => instant.ToString("o", CultureInfo.InvariantCulture),
            Hl7.Fhir.Model.PrimitiveType primitive => primitive.ToString() ?? "",
            null when p.Name is "_outputFormat" or "_since" or "_type" or "_typeFilter" or "_elements" or "patient" =>
                throw new InvalidInputException($"Parameters.parameter[{i}] ('{p.Name}') has no value.", $"Parameters.parameter[{i}]"),
            _ => "",
        })).ToList();
    }

    /// <summary>A <c>patient</c> value: <c>Patient/[id]</c>, or that on this server's base.</summary>
    private static string PatientId(string reference, string baseUrl)
    {
        var relative = reference.StartsWith(baseUrl + "/", StringComparison.OrdinalIgnoreCase) ? reference[(baseUrl.Length + 1)..] : reference;
        var id = relative.StartsWith("Patient/", StringComparison.Ordinal) ? relative["Patient/".Length..] : "";
        if (id.Length == 0 || id.Contains('/', StringComparison.Ordinal))
        {
            throw new InvalidInputException($"patient '{reference}' must be a reference Patient/[id].", "patient");
        }

        return id;
    }
}
