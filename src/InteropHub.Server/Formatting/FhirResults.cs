using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Server.Formatting;

/// <summary>
/// The responses of the FHIR endpoints. Stored resources are JSON bytes and are written unchanged; XML or
/// <c>_pretty</c> output is produced from them only when asked for.
/// </summary>
public static class FhirResults
{
    public static IResult Resource(StoredResource resource, int status = StatusCodes.Status200OK) => new ResourceResult(resource, status);

    public static IResult Json(byte[] json, int status = StatusCodes.Status200OK) => new BodyResult(json, status, null);

    /// <summary>A body written into pooled arrays, returned to the pool once it is sent.</summary>
    public static IResult Json(PooledJson json, int status = StatusCodes.Status200OK) => new PooledBodyResult(json, status);

    public static IResult Outcome(OperationOutcome outcome, int status) => new OutcomeResult(outcome, status);

    /// <summary>
    /// A Binary's own content with its <c>contentType</c> (<c>application/octet-stream</c> when it states none) and its
    /// <c>securityContext</c> as <c>X-Security-Context</c> (binary.html#rest), with the version's ETag.
    /// </summary>
    public static IResult BinaryContent(StoredResource resource, Binary binary) => new BinaryContentResult(resource, binary);

    public static IResult NotModified(StoredResource resource) => new HeadersOnlyResult(resource, StatusCodes.Status304NotModified, null);

    /// <summary>410 for a deleted resource, carrying the deletion version's ETag (http.html#read).</summary>
    public static IResult Gone(StoredResource resource) => new GoneResult(resource);

    /// <summary>A create/update/delete answer honouring <c>Prefer: return=</c> (http.html#ops).</summary>
    public static IResult Written(WriteOutcome outcome) => new WrittenResult(outcome);

    internal static string BaseUrl(HttpRequest request) => $"{request.Scheme}://{request.Host}{request.PathBase}/fhir";

    private static void SetVersionHeaders(HttpResponse response, StoredResource resource)
    {
        response.Headers.ETag = resource.ETag;
        response.Headers.LastModified = resource.LastUpdated.ToString("R", CultureInfo.InvariantCulture);
    }

    private static async Task WriteJsonAsync(HttpContext context, ReadOnlyMemory<byte> json, int status)
    {
        var format = ResponseFormat.For(context.Request);
        var serializers = context.RequestServices.GetRequiredService<FhirSerializers>();
        ReadOnlyMemory<byte> body;
        if (format.Format == FhirFormat.Xml)
        {
            body = serializers.ToXmlBytes(serializers.ParseStored(json.Span), format.Pretty);
        }
        else
        {
            body = format.Pretty ? FhirSerializers.Indent(json.Span) : json;
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = format.ContentType + "; charset=utf-8";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>Writes an OperationOutcome; used for errors too, so it falls back to JSON when the Accept header is the problem.</summary>
    internal static async Task WriteOutcomeAsync(HttpContext context, OperationOutcome outcome, int status)
    {
        var serializers = context.RequestServices.GetRequiredService<FhirSerializers>();
        ResponseFormat format;
        try
        {
            format = ResponseFormat.For(context.Request);
        }
        catch (NotAcceptableException)
        {
            format = ResponseFormat.DefaultJson;
        }

        var body = format.Format == FhirFormat.Xml ? serializers.ToXmlBytes(outcome, format.Pretty) : serializers.ToJsonBytes(outcome, format.Pretty);
        context.Response.StatusCode = status;
        context.Response.ContentType = format.ContentType + "; charset=utf-8";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    private sealed class ResourceResult(StoredResource resource, int status) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            SetVersionHeaders(context.Response, resource);
            return WriteJsonAsync(context, resource.Json, status);
        }
    }

    private sealed class BodyResult(byte[] json, int status, string? location) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            if (location is not null)
            {
                context.Response.Headers.Location = location;
            }

            return WriteJsonAsync(context, json, status);
        }
    }

    private sealed class PooledBodyResult(PooledJson json, int status) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            using (json)
            {
                await WriteJsonAsync(context, json.Written, status);
            }
        }
    }

    private sealed class BinaryContentResult(StoredResource resource, Binary binary) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            SetVersionHeaders(context.Response, resource);
            if (binary.SecurityContext?.Reference is { Length: > 0 } securityContext)
            {
                context.Response.Headers["X-Security-Context"] = securityContext;
            }

            // Stored content may be HTML or script from anyone who can write a Binary: a browser opening it must not
            // run it as this origin's page nor guess another type for it.
            context.Response.Headers.XContentTypeOptions = "nosniff";
            context.Response.Headers.ContentSecurityPolicy = "sandbox";
            var content = binary.Data ?? [];
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = string.IsNullOrEmpty(binary.ContentType) ? "application/octet-stream" : binary.ContentType;
            context.Response.ContentLength = content.Length;
            await context.Response.Body.WriteAsync(content, context.RequestAborted);
        }
    }

    private sealed class OutcomeResult(OperationOutcome outcome, int status) : IResult
    {
        public Task ExecuteAsync(HttpContext context) => WriteOutcomeAsync(context, outcome, status);
    }

    private sealed class HeadersOnlyResult(StoredResource resource, int status, string? location) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            SetVersionHeaders(context.Response, resource);
            if (location is not null)
            {
                context.Response.Headers.Location = location;
            }

            context.Response.StatusCode = status;
            return Task.CompletedTask;
        }
    }

    private sealed class GoneResult(StoredResource resource) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            SetVersionHeaders(context.Response, resource);
            var outcome = FhirException.Issue(OperationOutcome.IssueType.Deleted,
                $"{resource.ResourceType}/{resource.Id} was deleted (version {resource.VersionId}, {resource.LastUpdated:O}).");
            return WriteOutcomeAsync(context, outcome, StatusCodes.Status410Gone);
        }
    }

    private sealed class WrittenResult(WriteOutcome outcome) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            var response = context.Response;
            var resource = outcome.Resource;
            if (outcome.Status is WriteStatus.Deleted or WriteStatus.NothingToDelete)
            {
                if (resource is not null && outcome.Status == WriteStatus.Deleted)
                {
                    response.Headers.ETag = resource.ETag;
                }

                await WriteBodylessOrOutcomeAsync(context, StatusCodes.Status204NoContent, outcome.Status == WriteStatus.Deleted
                    ? $"Deleted {resource!.ResourceType}/{resource.Id} (version {resource.VersionId})."
                    : "Nothing to delete: no live resource matched.");
                return;
            }

            var status = outcome.Status == WriteStatus.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK;
            SetVersionHeaders(response, resource!);
            var location = $"{BaseUrl(context.Request)}/{resource!.ResourceType}/{resource.Id}/_history/{resource.VersionId}";
            if (outcome.Status == WriteStatus.Existing)
            {
                response.Headers.ContentLocation = location;
            }
            else
            {
                response.Headers.Location = location;
            }

            switch (Prefer(context.Request))
            {
                case "minimal":
                    response.StatusCode = status;
                    return;
                case "OperationOutcome":
                    var what = outcome.Status switch
                    {
                        WriteStatus.Created => "Created",
                        WriteStatus.Existing => "Found existing",
                        _ => "Updated",
                    };
                    await WriteOutcomeAsync(context, FhirException.Issue(OperationOutcome.IssueType.Informational,
                        $"{what} {resource.ResourceType}/{resource.Id} version {resource.VersionId}.", severity: OperationOutcome.IssueSeverity.Information), status);
                    return;
                default:
                    await WriteJsonAsync(context, resource.Json, status);
                    return;
            }
        }

        private static async Task WriteBodylessOrOutcomeAsync(HttpContext context, int status, string message)
        {
            if (Prefer(context.Request) == "OperationOutcome")
            {
                await WriteOutcomeAsync(context, FhirException.Issue(OperationOutcome.IssueType.Informational, message,
                    severity: OperationOutcome.IssueSeverity.Information), StatusCodes.Status200OK);
                return;
            }

            context.Response.StatusCode = status;
        }
    }

    /// <summary>The <c>return</c> preference of the Prefer header: minimal, representation (default) or OperationOutcome.</summary>
    internal static string Prefer(HttpRequest request)
    {
        foreach (var part in request.Headers["Prefer"].ToString().Split([',', ';'], StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("return=", StringComparison.Ordinal))
            {
                return part["return=".Length..].Trim('"');
            }
        }

        return "representation";
    }
}
