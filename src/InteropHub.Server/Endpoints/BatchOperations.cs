using Hl7.Fhir.Model;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Security;

namespace InteropHub.Server.Endpoints;

/// <summary>
/// The entries of a batch that the FHIR layer does not answer itself (<see cref="EntryPlan.IsForwarded"/>): operations
/// (<c>Patient/1/$everything</c>, <c>ConceptMap/$translate?…</c>, a <c>POST Patient/$validate</c> with its resource), the
/// capability statement (<c>metadata</c>) and reads with parameters (<c>Patient/1?_elements=gender</c>,
/// <c>Patient/1/*</c>). Each runs as a request of its own through the hub's whole pipeline, as the client would have sent
/// it alone (its <c>X-Organization</c> and <c>Prefer</c>, the entry's <c>ifNoneMatch</c> and <c>ifModifiedSince</c>
/// included), and its answer becomes the entry's (http.html#transaction: a batch may hold operations). HEAD answers
/// without the body. The bulk-data operations are not run there: they answer 202 and are polled.
/// </summary>
public sealed class BatchOperations(FhirSerializers serializers)
{
    /// <summary>The pipeline after its first middleware, kept when the app is built (Program.cs).</summary>
    public RequestDelegate? Pipeline { get; set; }

    /// <summary>The largest answer embedded in a batch-response; a larger one is refused for the entry, not buffered.</summary>
    private const int MaxAnswer = 64 * 1024 * 1024;

    public async Task<EntryResponse> RunAsync(HttpRequest outer, Bundle.EntryComponent entry, string url, int index, CancellationToken ct)
    {
        var where = $"Bundle.entry[{index}]";
        var question = url.IndexOf('?', StringComparison.Ordinal);
        var path = question < 0 ? url : url[..question];
        var method = entry.Request!.Method;
        if (method is not (Bundle.HTTPVerb.GET or Bundle.HTTPVerb.HEAD or Bundle.HTTPVerb.POST))
        {
            return Refused(400, $"{where}: an operation in a batch is invoked with GET, HEAD or POST, not {method}.", $"{where}.request.method");
        }

        if (path.Split('/').Any(s => s.StartsWith("$export", StringComparison.Ordinal) || s.StartsWith("$import", StringComparison.Ordinal)))
        {
            return Refused(400, $"{where}: the bulk-data operations answer 202 and are polled for their result; start and poll them on their own, not in a batch.",
                $"{where}.request.url");
        }

        if (Pipeline is not { } pipeline)
        {
            throw new InvalidOperationException("The request pipeline was not kept when the app was built.");
        }

        var context = new DefaultHttpContext { RequestServices = outer.HttpContext.RequestServices, RequestAborted = ct };
        var request = context.Request;
        request.Method = method == Bundle.HTTPVerb.POST ? HttpMethods.Post : HttpMethods.Get;
        request.Scheme = outer.Scheme;
        request.Host = outer.Host;
        request.PathBase = outer.PathBase;
        request.Path = PathString.FromUriComponent($"/fhir/{path}");
        // The batch-response is JSON, whatever _format the entry names: the answer is embedded in it.
        request.QueryString = question < 0 ? QueryString.Empty : new QueryString("?" + string.Join('&', url[(question + 1)..].Split('&')
            .Where(p => Uri.UnescapeDataString(p.Split('=')[0]) is var name && !name.Equals("_format", StringComparison.OrdinalIgnoreCase)
                && !name.Equals("_pretty", StringComparison.OrdinalIgnoreCase))));
        request.Headers.Accept = "application/fhir+json";
        foreach (var header in new[] { CallerOrganizationMiddleware.Header, "Prefer" })
        {
            if (outer.Headers.TryGetValue(header, out var value))
            {
                request.Headers[header] = value;
            }
        }

        if (entry.Request.IfNoneMatch is { Length: > 0 } noneMatch)
        {
            request.Headers.IfNoneMatch = noneMatch;
        }

        if (entry.Request.IfModifiedSince is { } since)
        {
            request.Headers.IfModifiedSince = since.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        }

        if (request.Method == HttpMethods.Post && entry.Resource is { } resource)
        {
            var body = serializers.ToJsonBytes(resource);
            request.ContentType = "application/fhir+json";
            request.ContentLength = body.Length;
            request.Body = new MemoryStream(body);
        }

        using var answer = new MemoryStream();
        context.Response.Body = answer;
        await pipeline(context);

        var status = context.Response.StatusCode;
        var location = context.Response.Headers.Location.FirstOrDefault() ?? context.Response.Headers.ContentLocation.FirstOrDefault();
        var resourceJson = answer.Length is > 0 and <= MaxAnswer && context.Response.ContentType?.StartsWith("application/fhir+json", StringComparison.Ordinal) == true
            ? answer.ToArray()
            : null;
        if (status >= 400)
        {
            var outcome = resourceJson is not null && serializers.ParseJson(resourceJson) is OperationOutcome given
                ? given
                : FhirException.Issue(OperationOutcome.IssueType.Processing, $"{where}: {request.Method} {url} answered {status}.", where);
            return new EntryResponse(status, Location: location, Outcome: outcome);
        }

        if (answer.Length > 0 && resourceJson is null)
        {
            return Refused(500, $"{where}: {request.Method} {url} answered {context.Response.ContentType} of {answer.Length} bytes, which a batch-response cannot hold.", where);
        }

        return new EntryResponse(status, Location: location, WithBody: method != Bundle.HTTPVerb.HEAD, IsRead: true, Json: resourceJson);
    }

    private static EntryResponse Refused(int status, string why, string where) =>
        new(status, Outcome: FhirException.Issue(status >= 500 ? OperationOutcome.IssueType.TooCostly : OperationOutcome.IssueType.NotSupported, why, where));
}
