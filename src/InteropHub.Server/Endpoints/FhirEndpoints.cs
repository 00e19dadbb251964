using Hl7.Fhir.Model;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Create;
using InteropHub.Fhir.Resources.Delete;
using InteropHub.Fhir.Resources.History;
using InteropHub.Fhir.Resources.Patch;
using InteropHub.Fhir.Resources.Read;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using InteropHub.Fhir.Serialization;
using InteropHub.Server.Formatting;
using Microsoft.AspNetCore.Routing.Patterns;

namespace InteropHub.Server.Endpoints;

/// <summary>The FHIR REST interactions (http.html) under <c>/fhir</c>. Each endpoint turns HTTP into a request record and back.</summary>
public static class FhirEndpoints
{
    public static IEndpointRouteBuilder MapFhirEndpoints(this IEndpointRouteBuilder app)
    {
        var fhir = app.MapGroup("/fhir");
        fhir.MapGet("/metadata", Metadata);
        fhir.MapGet("/_history", SystemHistory);
        // Another method on these would reach the [type] routes below as a type named "metadata" or "_history" (a 404):
        // what is there does not take that method, a 405 with Allow (RFC 9110 §15.5.6).
        fhir.MapMethods("/metadata", [HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete], MethodNotAllowed);
        fhir.MapMethods("/_history", [HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete], MethodNotAllowed);
        fhir.MapGet("/", SystemSearch);
        fhir.MapPost("/_search", SystemSearchByForm);
        fhir.MapPost("/", BatchOrTransaction);

        var type = fhir.MapGroup("/{type}").AddEndpointFilter(async (context, next) =>
        {
            ResourceTypes.EnsureKnown((string)context.HttpContext.Request.RouteValues["type"]!);
            return await next(context);
        });
        type.MapPost("/", Create);
        type.MapGet("/", Search);
        type.MapPost("/_search", SearchByForm);
        type.MapPut("/", ConditionalUpdate);
        type.MapDelete("/", ConditionalDelete);
        type.MapPatch("/", ConditionalPatch);
        type.MapGet("/_history", TypeHistory);
        type.MapGet("/{id}", Read);
        type.MapPut("/{id}", Update);
        type.MapDelete("/{id}", Delete);
        type.MapPatch("/{id}", Patch);
        type.MapGet("/{id}/_history", InstanceHistory);
        type.MapGet("/{id}/_history/{vid}", ReadVersion);
        type.MapGet("/{id}/{compartmentType}", CompartmentSearch);
        type.MapPost("/{id}/_search", (string type, string id, HttpRequest request, SearchResources handler, CancellationToken ct) =>
            CompartmentSearchByForm(type, id, "*", request, handler, ct));
        type.MapPost("/{id}/{compartmentType}/_search", CompartmentSearchByForm);
        return app;
    }

    /// <summary>
    /// Middleware, after routing: a <c>$name</c> segment under <c>/fhir</c> that is not, exactly, a literal of the route
    /// taken is an operation this hub does not have at that level or with that method: said so (a 400 naming it), not
    /// read as a resource type, id or compartment, nor a 405 because another method has a route there. Exactly, as
    /// routing matches literals ignoring case and operation names are case-sensitive: <c>$Translate</c> is not <c>$translate</c>.
    /// </summary>
    public static Task EnsureKnownOperationAsync(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path.Value ?? "";
        if (path.StartsWith("/fhir/", StringComparison.Ordinal) && path.Contains('$', StringComparison.Ordinal))
        {
            var segments = path["/fhir/".Length..].Split('/');
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.PathSegments;
            for (var i = 0; i < segments.Length; i++)
            {
                // The route's segments start with "fhir".
                if (segments[i].StartsWith('$')
                    && !(route is not null && route.Count > i + 1 && route[i + 1].Parts is [RoutePatternLiteralPart { Content: var literal }] && literal == segments[i]))
                {
                    var level = i switch
                    {
                        0 => "the system level",
                        1 => $"the {segments[0]} type",
                        _ => $"a {segments[0]} instance",
                    };
                    throw new FhirException(System.Net.HttpStatusCode.BadRequest, OperationOutcome.IssueType.NotSupported,
                        $"Operation '{segments[i]}' is not supported at {level} with {context.Request.Method}; the operations this hub has are listed in its CapabilityStatement (GET [base]/metadata).",
                        segments[i]);
                }
            }
        }

        return next(context);
    }

    /// <summary>
    /// A query string is percent-encoded UTF-8 (RFC 3986 §2.5; FHIR exchanges UTF-8): an escape that does not decode
    /// to UTF-8 (<c>family=M%FCller</c>, Latin-1) is a 400 naming its parameter, where the web server would pass it on
    /// as the literal text <c>%FC</c> and a search would quietly look for that.
    /// </summary>
    public static Task EnsureUtf8QueryAsync(HttpContext context, RequestDelegate next)
    {
        var query = context.Request.QueryString.Value;
        if (query is { Length: > 1 } && (context.Request.Path.Value ?? "").StartsWith("/fhir", StringComparison.Ordinal)
            && NotUtf8Escaped(query[1..]) is { } refused)
        {
            throw new InvalidInputException(
                $"The query parameter '{refused}' has a %-escape that is not UTF-8: non-ASCII characters in a URL are sent as the percent-encoded bytes of their UTF-8 form (e.g. ü as %C3%BC).",
                refused);
        }

        return next(context);
    }

    /// <summary>The name of the first parameter of a query string or form whose %-escapes do not decode to UTF-8, or null.</summary>
    private static string? NotUtf8Escaped(string pairs)
    {
        if (!pairs.Contains('%', StringComparison.Ordinal))
        {
            return null;
        }

        foreach (var pair in pairs.Split('&'))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? pair : pair[..equals];
            if (!IsUtf8Escaped(name) || (equals >= 0 && !IsUtf8Escaped(pair[(equals + 1)..])))
            {
                return Uri.UnescapeDataString(name.Replace('+', ' '));
            }
        }

        return null;
    }

    private static bool IsUtf8Escaped(string text)
    {
        if (!text.Contains('%', StringComparison.Ordinal))
        {
            return true;
        }

        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '%' && i + 2 < text.Length && Uri.IsHexDigit(text[i + 1]) && Uri.IsHexDigit(text[i + 2]))
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }

        return System.Text.Unicode.Utf8.IsValid(bytes.ToArray());
    }

    /// <summary>
    /// The CapabilityStatement, or with <c>mode=terminology</c> the TerminologyCapabilities (capabilitystatement.html#mode);
    /// <c>normative</c> is answered with the whole statement, which holds its normative parts.
    /// </summary>
    private static async Task<IResult> Metadata(HttpRequest request, CapabilityStatementDocument capabilities, TerminologyCapabilitiesDocument terminology,
        CancellationToken ct) => request.Query["mode"].ToString() switch
    {
        "" or "full" or "normative" => FhirResults.Json(capabilities.Json),
        "terminology" => FhirResults.Json(await terminology.JsonAsync(ct)),
        var other => throw new InvalidInputException($"metadata mode '{other}' is not one of full, normative, terminology.", "mode"),
    };

    /// <summary>A 405 for a path only read (<see cref="FhirErrorMiddleware.StatusCodeOutcome"/> gives it its outcome).</summary>
    private static IResult MethodNotAllowed(HttpResponse response)
    {
        response.Headers.Allow = HttpMethods.Get;
        return Results.StatusCode(StatusCodes.Status405MethodNotAllowed);
    }

    /// <summary>search.html#errors: <c>Prefer: handling=lenient</c> ignores what the server does not understand (and says so).</summary>
    private static bool Lenient(HttpRequest request) =>
        request.Headers["Prefer"].Any(p => p is not null && p.Contains("handling=lenient", StringComparison.Ordinal));

    private static async Task<IResult> BatchOrTransaction(HttpRequest request, FhirRequestReader reader, ProcessBundle handler,
        BatchOperations operations, FhirSerializers serializers, CancellationToken ct)
    {
        var refused = new Dictionary<int, OperationOutcome>();
        var bundle = await reader.ReadResourceAsync(request, ct, refusedEntries: refused) as Bundle
            ?? throw new InvalidInputException("POST [base] takes a Bundle of type batch or transaction.", "resourceType");
        var result = await handler.HandleAsync(new BundleRequest(bundle, FhirResults.BaseUrl(request),
            Forward: (entry, url, index, token) => operations.RunAsync(request, entry, url, index, token), Lenient: Lenient(request),
            RefusedEntries: refused), ct);
        return FhirResults.Json(BundleWriter.Response(result, request, serializers));
    }

    private static async Task<IResult> Create(string type, HttpRequest request, FhirRequestReader reader, CreateResource handler, CancellationToken ct)
    {
        var resource = await reader.ReadResourceAsync(request, ct, type);
        LocalReferences.Prepare(resource, FhirResults.BaseUrl(request));
        var ifNoneExist = request.Headers["If-None-Exist"].ToString();
        var criteria = ifNoneExist.Length > 0 ? await ConditionalAsync(type, ifNoneExist, request, ct) : null;
        return FhirResults.Written(await handler.HandleAsync(new CreateRequest(type, resource, criteria), ct));
    }

    private static async Task<IResult> Update(string type, string id, HttpRequest request, FhirRequestReader reader, UpdateResource handler, CancellationToken ct)
    {
        var resource = await reader.ReadResourceAsync(request, ct, type);
        // A Binary sent as its own content (binary.html#rest) carries no id: it is the URL's.
        if (resource is Binary { Id: null } && ResponseFormat.IsNativeBody(request))
        {
            resource.Id = id;
        }

        LocalReferences.Prepare(resource, FhirResults.BaseUrl(request));
        var update = new UpdateRequest(type, id, null, resource, Preconditions.IfMatch(request), Preconditions.IfNoneMatch(request));
        return FhirResults.Written(await handler.HandleAsync(update, ct));
    }

    private static async Task<IResult> ConditionalUpdate(string type, HttpRequest request, FhirRequestReader reader, UpdateResource handler, CancellationToken ct)
    {
        var criteria = await CriteriaAsync(type, request, ct);
        var resource = await reader.ReadResourceAsync(request, ct, type);
        LocalReferences.Prepare(resource, FhirResults.BaseUrl(request));
        var update = new UpdateRequest(type, null, criteria, resource, Preconditions.IfMatch(request), Preconditions.IfNoneMatch(request));
        return FhirResults.Written(await handler.HandleAsync(update, ct));
    }

    private static async Task<IResult> Delete(string type, string id, HttpRequest request, DeleteResource handler, CancellationToken ct) =>
        FhirResults.Written(await handler.HandleAsync(new DeleteRequest(type, id, null, Preconditions.IfMatch(request)), ct));

    private static async Task<IResult> ConditionalDelete(string type, HttpRequest request, DeleteResource handler, CancellationToken ct) =>
        FhirResults.Written(await handler.HandleAsync(new DeleteRequest(type, null, await CriteriaAsync(type, request, ct), Preconditions.IfMatch(request)), ct));

    private static async Task<IResult> Patch(string type, string id, HttpRequest request, FhirRequestReader reader, PatchResource handler, CancellationToken ct)
    {
        var patch = await reader.ReadPatchAsync(request, ct);
        return FhirResults.Written(await handler.HandleAsync(new PatchRequest(type, id, null, patch, Preconditions.IfMatch(request)), ct));
    }

    private static async Task<IResult> ConditionalPatch(string type, HttpRequest request, FhirRequestReader reader, PatchResource handler, CancellationToken ct)
    {
        var criteria = await CriteriaAsync(type, request, ct);
        var patch = await reader.ReadPatchAsync(request, ct);
        return FhirResults.Written(await handler.HandleAsync(new PatchRequest(type, null, criteria, patch, Preconditions.IfMatch(request)), ct));
    }

    private static async Task<IResult> Read(string type, string id, HttpRequest request, ReadResource handler, FhirSerializers serializers, CancellationToken ct)
    {
        var resource = await handler.ReadAsync(type, id, ct);
        if (resource.IsDeleted)
        {
            return FhirResults.Gone(resource);
        }

        return Preconditions.NotModified(request, resource)
            ? FhirResults.NotModified(resource)
            : ResourceOrContent(resource, request, serializers);
    }

    /// <summary>The resource, or for a Binary read by a client that asks for no FHIR format, its content (binary.html#rest).</summary>
    private static IResult ResourceOrContent(Fhir.Storage.StoredResource resource, HttpRequest request, FhirSerializers serializers) =>
        resource.ResourceType == "Binary" && ResponseFormat.WantsNativeBinary(request)
            ? FhirResults.BinaryContent(resource, (Binary)serializers.ParseStored(resource.Json))
            : FhirResults.Resource(ReadResource.Subset(resource, request.Query["_summary"], request.Query["_elements"], serializers));

    private static async Task<IResult> ReadVersion(string type, string id, string vid, HttpRequest request, ReadResource handler, FhirSerializers serializers,
        CancellationToken ct)
    {
        var resource = await handler.ReadVersionAsync(type, id, vid, ct);
        return resource.IsDeleted ? FhirResults.Gone(resource) : ResourceOrContent(resource, request, serializers);
    }

    private static Task<IResult> InstanceHistory(string type, string id, HttpRequest request, ReadHistory handler, CancellationToken ct) =>
        History(new HistoryRequest(type, id, request.Query["_since"], request.Query["_count"], request.Query[Paging.CursorParameter],
            request.Query["_at"]), request, handler, ct);

    private static Task<IResult> TypeHistory(string type, HttpRequest request, ReadHistory handler, CancellationToken ct) =>
        History(new HistoryRequest(type, null, request.Query["_since"], request.Query["_count"], request.Query[Paging.CursorParameter],
            request.Query["_at"]), request, handler, ct);

    private static Task<IResult> SystemHistory(HttpRequest request, ReadHistory handler, CancellationToken ct) =>
        History(new HistoryRequest(null, null, request.Query["_since"], request.Query["_count"], request.Query[Paging.CursorParameter],
            request.Query["_at"]), request, handler, ct);

    private static async Task<IResult> History(HistoryRequest history, HttpRequest request, ReadHistory handler, CancellationToken ct)
    {
        HistoryParameters.EnsureKnown(request);
        return FhirResults.Json(BundleWriter.History(await handler.HandleAsync(history, ct), request));
    }

    private static Task<IResult> Search(string type, HttpRequest request, SearchResources handler, CancellationToken ct) =>
        SearchAsync(type, null, QueryPairs(request.Query), request, handler, ct);

    private static async Task<IResult> SearchByForm(string type, HttpRequest request, SearchResources handler, CancellationToken ct) =>
        await SearchAsync(type, null, await FormPairsAsync(request, ct), request, handler, ct);

    private static Task<IResult> SystemSearch(HttpRequest request, SearchResources handler, CancellationToken ct) =>
        SearchAsync(null, null, QueryPairs(request.Query), request, handler, ct);

    private static async Task<IResult> SystemSearchByForm(HttpRequest request, SearchResources handler, CancellationToken ct) =>
        await SearchAsync(null, null, await FormPairsAsync(request, ct), request, handler, ct);

    /// <summary><c>GET [base]/Patient/123/Encounter</c>, or <c>…/Patient/123/*</c> for every type in the compartment (narrowed by <c>_type</c>).</summary>
    private static Task<IResult> CompartmentSearch(string type, string id, string compartmentType, HttpRequest request, SearchResources handler,
        CancellationToken ct) =>
        InCompartment(type, id, compartmentType, QueryPairs(request.Query), request, handler, ct);

    /// <summary><c>POST [base]/Patient/123/Encounter/_search</c>, or <c>POST [base]/Patient/123/_search</c> for every type (http.html#search).</summary>
    private static async Task<IResult> CompartmentSearchByForm(string type, string id, string compartmentType, HttpRequest request, SearchResources handler,
        CancellationToken ct) =>
        await InCompartment(type, id, compartmentType, await FormPairsAsync(request, ct), request, handler, ct);

    private static Task<IResult> InCompartment(string type, string id, string compartmentType, List<KeyValuePair<string, string>> query, HttpRequest request,
        SearchResources handler, CancellationToken ct)
    {
        if (compartmentType == "*")
        {
            ResourceTypes.EnsureKnown(type);
            return SearchAsync(null, new Fhir.Storage.ResourceKey(type, id), query, request, handler, ct);
        }

        ResourceTypes.EnsureKnown(compartmentType);
        return SearchAsync(compartmentType, new Fhir.Storage.ResourceKey(type, id), query, request, handler, ct);
    }

    private static async Task<IResult> SearchAsync(string? type, Fhir.Storage.ResourceKey? compartment, List<KeyValuePair<string, string>> query,
        HttpRequest request, SearchResources handler, CancellationToken ct)
    {
        // search.html#errors: Prefer: handling=lenient ignores what the server does not understand (and says so).
        var lenient = Lenient(request);
        var page = await handler.HandleAsync(new SearchRequest(type, query, lenient, compartment, FhirResults.BaseUrl(request)), ct);
        return FhirResults.Json(BundleWriter.SearchSet(page, request));
    }

    private static List<KeyValuePair<string, string>> QueryPairs(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> query) =>
        query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList();

    private static async Task<List<KeyValuePair<string, string>>> FormPairsAsync(HttpRequest request, CancellationToken ct)
    {
        if (!request.HasFormContentType)
        {
            // Without a body, the parameters are the URL's alone.
            return request.ContentLength is 0 || (request.ContentLength is null && string.IsNullOrEmpty(request.ContentType))
                ? QueryPairs(request.Query)
                : throw new Fhir.Errors.UnsupportedMediaTypeException("POST …/_search takes an application/x-www-form-urlencoded body.");
        }

        if (request.Headers.ContentType.ToString().Split(';').Skip(1).Select(p => p.Trim())
                .FirstOrDefault(p => p.StartsWith("charset=", StringComparison.OrdinalIgnoreCase)) is { } charset
            && !charset["charset=".Length..].Trim('"').Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            throw new Fhir.Errors.UnsupportedMediaTypeException($"POST …/_search takes its form in UTF-8, not {charset[8..]}.");
        }

        // The form reader would keep an escape that is not UTF-8 as its literal text, and decode a raw byte that is not
        // UTF-8 to U+FFFD: either way not the value meant. The raw body is checked as a query string is.
        request.EnableBuffering();
        using (var raw = new MemoryStream())
        {
            await request.Body.CopyToAsync(raw, ct);
            request.Body.Position = 0;
            var bytes = raw.ToArray();
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                throw new InvalidInputException("The form body is not UTF-8: non-ASCII characters in a form are sent as the percent-encoded bytes of their UTF-8 form (e.g. ü as %C3%BC).");
            }

            if (NotUtf8Escaped(System.Text.Encoding.UTF8.GetString(bytes)) is { } refused)
            {
                throw new InvalidInputException($"The form parameter '{refused}' is not UTF-8: non-ASCII characters in a form are sent as the percent-encoded bytes of their UTF-8 form (e.g. ü as %C3%BC).", refused);
            }
        }

        var form = await request.ReadFormAsync(ct);
        return QueryPairs(request.Query.Concat(form));
    }

    private static Task<SearchCriteria> CriteriaAsync(string type, HttpRequest request, CancellationToken ct) =>
        ConditionalAsync(type, request.QueryString.Value ?? "", request, ct);

    /// <summary>
    /// Conditional criteria, parsed by this hub's parser so its custom search parameters count too, with <c>:in</c>,
    /// <c>:above</c> and <c>:below</c> expanded from its terminology.
    /// </summary>
    private static Task<SearchCriteria> ConditionalAsync(string type, string query, HttpRequest request, CancellationToken ct)
    {
        var services = request.HttpContext.RequestServices;
        var criteria = services.GetRequiredService<SearchParser>().ParseCriteria(type, SearchParser.SplitQueryString(type, query));
        return services.GetRequiredService<LocalTerminology>().ExpandAsync(criteria, ct);
    }
}

/// <summary>History takes <see cref="ReadHistory.Parameters"/> and the formatting ones; anything else is named in a 400.</summary>
internal static class HistoryParameters
{
    public static void EnsureKnown(HttpRequest request)
    {
        foreach (var key in request.Query.Keys)
        {
            if (!ReadHistory.Parameters.Contains(key) && key is not ("_format" or "_pretty"))
            {
                throw ReadHistory.Unsupported(key);
            }
        }
    }
}
