using Hl7.Fhir.Model;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Security;
using Microsoft.AspNetCore.WebUtilities;

namespace InteropHub.Server.Endpoints;

/// <summary>
/// The entries of a batch that are operations (<c>Patient/1/$everything</c>, <c>ConceptMap/$translate?…</c>, a
/// <c>POST Patient/$validate</c> with its resource) or read the capability statement (<c>metadata</c>): each runs as a
/// request of its own through the hub's whole pipeline, as the client would have sent it alone (its
/// <c>X-Organization</c> included), and its answer becomes the entry's (http.html#transaction: a batch may hold
/// operations). The bulk-data operations are not run there: they answer 202 and are polled.
/// </summary>
public sealed class BatchOperations(FhirSerializers serializers)
{
    /// <summary>The pipeline after its first middleware, kept when the app is built (Program.cs).</summary>
    public RequestDelegate? Pipeline { get; set; }

    public async Task<EntryResponse> RunAsync(HttpRequest outer, Bundle.EntryComponent entry, string url, int index, CancellationToken ct)
    {
        var where = $"Bundle.entry[{index}]";
        var path = url.Split('?')[0];
        if (entry.Request!.Method is not (Bundle.HTTPVerb.GET or Bundle.HTTPVerb.POST))
        {
            return Refused(400, $"{where}: an operation in a batch is invoked with GET or POST, not {entry.Request.Method}.", $"{where}.request.method");
        }

        if (path.Split('/').Any(s => s is "$export" or "$import"))
        {
            return Refused(400, $"{where}: the bulk-data operations answer 202 and are polled for their result; start them on their own, not in a batch.",
                $"{where}.request.url");
        }

        if (Pipeline is not { } pipeline)
        {
            throw new InvalidOperationException("The request pipeline was not kept when the app was built.");
        }

        var context = new DefaultHttpContext { RequestServices = outer.HttpContext.RequestServices, RequestAborted = ct };
        var request = context.Request;
        request.Method = entry.Request.Method == Bundle.HTTPVerb.GET ? HttpMethods.Get : HttpMethods.Post;
        request.Scheme = outer.Scheme;
        request.Host = outer.Host;
        request.PathBase = outer.PathBase;
        request.Path = $"/fhir/{path}";
        // The batch-response is JSON, whatever _format the entry names: the answer is embedded in it.
        var query = QueryHelpers.ParseQuery(url.Contains('?', StringComparison.Ordinal) ? url[url.IndexOf('?', StringComparison.Ordinal)..] : "")
            .Where(p => p.Key is not ("_format" or "_pretty"));
        request.QueryString = QueryString.Create(query.SelectMany(p => p.Value.Select(v => KeyValuePair.Create(p.Key, v))));
        request.Headers.Accept = "application/fhir+json";
        if (outer.Headers.TryGetValue(CallerOrganizationMiddleware.Header, out var caller))
        {
            request.Headers[CallerOrganizationMiddleware.Header] = caller;
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
        var json = answer.Length > 0 && context.Response.ContentType?.Contains("json", StringComparison.Ordinal) == true ? answer.ToArray() : null;
        var location = context.Response.Headers.Location.FirstOrDefault() ?? context.Response.Headers.ContentLocation.FirstOrDefault();
        if (status >= 400)
        {
            var outcome = json is not null && serializers.ParseJson(json) is OperationOutcome given
                ? given
                : FhirException.Issue(OperationOutcome.IssueType.Processing, $"{where}: {request.Method} {url} answered {status}.", where);
            return new EntryResponse(status, Location: location, Outcome: outcome);
        }

        return new EntryResponse(status, Location: location, IsRead: true, Json: json);
    }

    private static EntryResponse Refused(int status, string why, string where) =>
        new(status, Outcome: FhirException.Issue(OperationOutcome.IssueType.NotSupported, why, where));
}
