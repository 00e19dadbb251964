using InteropHub.Fhir.Errors;
using Microsoft.Net.Http.Headers;

namespace InteropHub.Server.Formatting;

public enum FhirFormat
{
    Json,
    Xml,
}

/// <summary>The representation a response is written in: format, the media type echoed to the client, and <c>_pretty</c>.</summary>
public sealed record ResponseFormat(FhirFormat Format, string ContentType, bool Pretty)
{
    public static readonly ResponseFormat DefaultJson = new(FhirFormat.Json, "application/fhir+json", false);

    /// <summary>
    /// <c>_format</c> wins over <c>Accept</c> (http.html#mime-type); with no preference (or <c>*/*</c>) the answer is
    /// in the request body's format, else JSON. A media type naming a <c>fhirVersion</c> other than R4's (4.0) is not
    /// one this hub produces (http.html#version-parameter). A request for a representation it cannot produce is 406.
    /// </summary>
    public static ResponseFormat For(HttpRequest request)
    {
        var pretty = string.Equals(request.Query["_pretty"], "true", StringComparison.OrdinalIgnoreCase);
        // "_format=application/fhir+json" typed into a URL arrives with the '+' read as a space.
        var format = request.Query["_format"].ToString().Replace(' ', '+');
        if (format.Length > 0)
        {
            // A media type may carry parameters here as in Accept (application/fhir+json;fhirVersion=4.0).
            if (MediaTypeHeaderValue.TryParse(format, out var named) && named.Parameters.Count > 0)
            {
                return IsR4(named)
                    ? Match(named.MediaType.ToString(), pretty) ?? throw new NotAcceptableException(
                        $"_format '{format}' is not supported; use json, xml, application/fhir+json or application/fhir+xml.")
                    : throw new NotAcceptableException($"_format '{format}' asks for a FHIR version this server does not speak; it serves FHIR R4 (fhirVersion=4.0).");
            }

            return Match(format, pretty) ?? throw new NotAcceptableException(
                $"_format '{format}' is not supported; use json, xml, application/fhir+json or application/fhir+xml.");
        }

        var accept = request.Headers.Accept.ToString();
        if (accept.Length == 0 || !MediaTypeHeaderValue.TryParseList([accept], out var ranges))
        {
            return AsTheBody(request, pretty);
        }

        var otherVersion = false;
        foreach (var range in ranges.OrderByDescending(r => r.Quality ?? 1.0))
        {
            if (!IsR4(range))
            {
                otherVersion = true;
                continue;
            }

            var mediaType = range.MediaType.ToString();
            if (mediaType is "*/*" or "application/*")
            {
                return AsTheBody(request, pretty);
            }

            if (mediaType == "text/*")
            {
                return new(FhirFormat.Xml, "text/xml", pretty);
            }

            if (Match(mediaType, pretty) is { } matched)
            {
                return matched;
            }
        }

        throw new NotAcceptableException(otherVersion
            ? $"Accept '{accept}' asks for a FHIR version this server does not speak; it serves FHIR R4 (fhirVersion=4.0)."
            : $"None of the media types in Accept '{accept}' is supported; use application/fhir+json or application/fhir+xml.");
    }

    /// <summary>
    /// binary.html#rest: a read of a Binary answers with its own content, as its <c>contentType</c>, when the client
    /// asks for no FHIR format: an <c>Accept</c> that names none of them (<c>*/*</c>, <c>image/*</c>, <c>application/pdf</c>…)
    /// and no <c>_format</c>, <c>_summary</c> or <c>_elements</c>. No <c>Accept</c> at all keeps the FHIR resource.
    /// </summary>
    public static bool WantsNativeBinary(HttpRequest request)
    {
        if (request.Query.ContainsKey("_format") || request.Query.ContainsKey("_summary") || request.Query.ContainsKey("_elements"))
        {
            return false;
        }

        var accept = request.Headers.Accept.ToString();
        return accept.Length > 0
            && MediaTypeHeaderValue.TryParseList([accept], out var ranges)
            && ranges.All(range => Match(range.MediaType.ToString(), false) is null);
    }

    /// <summary>A request body whose Content-Type is no FHIR format: for a Binary, the content itself (binary.html#rest).</summary>
    public static bool IsNativeBody(HttpRequest request) =>
        MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) && Match(parsed.MediaType.ToString(), false) is null;

    /// <summary>
    /// No preference: a FHIR request body's format (an XML client reads XML), else JSON. Only on the FHIR API: the
    /// adapters' answers stay JSON whatever their legacy systems post.
    /// </summary>
    private static ResponseFormat AsTheBody(HttpRequest request, bool pretty) =>
        request.Path.StartsWithSegments("/fhir", StringComparison.Ordinal) && MediaTypeHeaderValue.TryParse(request.ContentType, out var body) && Match(body.MediaType.ToString(), pretty) is { Format: FhirFormat.Xml } xml
            ? xml
            : DefaultJson with { Pretty = pretty };

    /// <summary>A media type without <c>fhirVersion</c>, or with R4's: 4.0, or a 4.0.x release.</summary>
    private static bool IsR4(MediaTypeHeaderValue mediaType)
    {
        var version = mediaType.Parameters.FirstOrDefault(p => p.Name.Equals("fhirVersion", StringComparison.OrdinalIgnoreCase))?.Value.ToString().Trim('"');
        return version is null or "4.0" || version.StartsWith("4.0.", StringComparison.Ordinal);
    }

    /// <summary>What a body of a FHIR resource may be sent as.</summary>
    public const string BodyMediaTypes = "application/fhir+json, application/fhir+xml, application/json or application/xml";

    /// <summary>The format of a request body from its Content-Type; anything else is 415.</summary>
    /// <param name="accepted">The media types the 415 names, when the request takes others than <see cref="BodyMediaTypes"/> too.</param>
    public static FhirFormat ForBody(HttpRequest request, string accepted = BodyMediaTypes)
    {
        var contentType = request.ContentType;
        if (string.IsNullOrEmpty(contentType))
        {
            throw new UnsupportedMediaTypeException($"The request has a body but no Content-Type; use {accepted}.");
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed))
        {
            throw new UnsupportedMediaTypeException($"Content-Type '{contentType}' cannot be parsed.");
        }

        if (!IsR4(parsed))
        {
            throw new UnsupportedMediaTypeException($"Content-Type '{contentType}' names a FHIR version this server does not read; it takes FHIR R4 (fhirVersion=4.0).");
        }

        var charset = parsed.Charset.ToString();
        if (charset.Length > 0 && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            throw new UnsupportedMediaTypeException($"Charset '{charset}' is not supported; FHIR bodies are UTF-8.");
        }

        return Match(parsed.MediaType.ToString(), false)?.Format
            ?? throw new UnsupportedMediaTypeException($"Content-Type '{parsed.MediaType}' is not supported; use {accepted}.");
    }

    private static ResponseFormat? Match(string mediaType, bool pretty) => mediaType.ToLowerInvariant() switch
    {
        "json" or "application/fhir+json" or "application/json+fhir" => new(FhirFormat.Json, "application/fhir+json", pretty),
        "application/json" => new(FhirFormat.Json, "application/json", pretty),
        "xml" or "application/fhir+xml" or "application/xml+fhir" => new(FhirFormat.Xml, "application/fhir+xml", pretty),
        "application/xml" => new(FhirFormat.Xml, "application/xml", pretty),
        "text/xml" => new(FhirFormat.Xml, "text/xml", pretty),
        _ => null,
    };
}
