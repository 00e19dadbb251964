using System.Buffers;
using Hl7.Fhir.Model;
using InteropHub.Fhir;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Patch;
using InteropHub.Fhir.Serialization;
using Microsoft.Extensions.Options;

namespace InteropHub.Server.Formatting;

/// <summary>Reads a resource from a request body: size limit (413), media type (415), then one strict parse (400).</summary>
public sealed class FhirRequestReader(FhirSerializers serializers, IOptions<HubOptions> options)
{
    public const string JsonPatchMediaType = "application/json-patch+json";

    /// <summary>The patch formats (RFC 5789 §3.1 Accept-Patch): JSON Patch, and FHIRPath Patch in JSON or XML.</summary>
    public const string AcceptPatch = $"{JsonPatchMediaType}, application/fhir+json, application/fhir+xml";

    private static readonly byte[] Utf8Bom = [0xEF, 0xBB, 0xBF];

    /// <param name="expectedType">The type the URL names (create, update): a body of another type is refused as that,
    /// before a parse would report what the other type lacks.</param>
    /// <param name="refusedEntries">For <c>POST [base]</c>: where a batch Bundle's entries that fail to parse are
    /// reported, by index, rather than refusing the whole batch (<see cref="FhirSerializers.ParseJson"/>).</param>
    public async Task<Resource> ReadResourceAsync(HttpRequest request, CancellationToken ct, string? expectedType = null,
        IDictionary<int, OperationOutcome>? refusedEntries = null) =>
        expectedType == "Binary" && ResponseFormat.IsNativeBody(request)
            ? await ReadNativeBinaryAsync(request, ct)
            : await ReadResourceAsync(request, ResponseFormat.ForBody(request), expectedType, refusedEntries, ct);

    /// <summary>
    /// binary.html#rest: a Binary created or updated with its own content (a PDF, an image, a text) rather than a FHIR
    /// resource: the body is its <c>data</c>, the Content-Type its <c>contentType</c>, and <c>X-Security-Context</c>
    /// (a reference) its <c>securityContext</c>.
    /// </summary>
    private async Task<Binary> ReadNativeBinaryAsync(HttpRequest request, CancellationToken ct)
    {
        var (buffer, length) = await ReadPooledBodyAsync(request, ct);
        try
        {
            var binary = new Binary { ContentType = request.ContentType!.Trim(), Data = buffer.AsSpan(0, length).ToArray() };
            var securityContext = request.Headers["X-Security-Context"].ToString().Trim();
            if (securityContext.Length > 0)
            {
                binary.SecurityContext = new ResourceReference(securityContext);
            }

            return binary;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task<Resource> ReadResourceAsync(HttpRequest request, FhirFormat format, string? expectedType,
        IDictionary<int, OperationOutcome>? refusedEntries, CancellationToken ct)
    {
        // A transaction Bundle is often hundreds of kilobytes: it is read into a pooled buffer, not a new array on the
        // large object heap each time, whose collections cost a write-heavy hub a tenth of its time.
        var (buffer, length) = await ReadPooledBodyAsync(request, ct);
        try
        {
            // Editors on Windows like to start UTF-8 files with a byte-order mark; it carries no meaning here.
            var content = buffer.AsMemory(0, length);
            if (content.Span.StartsWith(Utf8Bom))
            {
                content = content[Utf8Bom.Length..];
            }

            if (expectedType is not null && format == FhirFormat.Json && TopLevelType(content.Span) is { } bodyType && bodyType != expectedType)
            {
                throw new InvalidInputException($"The body is a {bodyType} but the request URL is for {expectedType}.", "resourceType");
            }

            return format == FhirFormat.Json ? serializers.ParseJson(content.Span, refusedEntries) : serializers.ParseXml(content, refusedEntries);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A PATCH body (http.html#patch): a JSON Patch document (<c>application/json-patch+json</c>) or a FHIRPath
    /// Patch, which is a Parameters resource in JSON or XML.
    /// </summary>
    public async Task<IResourcePatch> ReadPatchAsync(HttpRequest request, CancellationToken ct)
    {
        if (Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            && mediaType.MediaType.Equals(JsonPatchMediaType, StringComparison.OrdinalIgnoreCase))
        {
            var (buffer, length) = await ReadPooledBodyAsync(request, ct);
            try
            {
                return JsonPatch.Parse(buffer.AsSpan(0, length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        var format = ResponseFormat.ForBody(request,
            $"{JsonPatchMediaType} (JSON Patch), or application/fhir+json or application/fhir+xml (FHIRPath Patch: a Parameters resource)");
        return await ReadResourceAsync(request, format, null, null, ct) is Parameters parameters
            ? FhirPathPatch.Parse(parameters)
            : throw new InvalidInputException(
                $"A PATCH body is a JSON Patch document ({JsonPatchMediaType}) or a FHIRPath Patch (a Parameters resource).");
    }

    /// <summary>The top-level <c>resourceType</c> of a JSON body, or null when it cannot be read (the parse then says why).</summary>
    private static string? TopLevelType(ReadOnlySpan<byte> json)
    {
        var reader = new System.Text.Json.Utf8JsonReader(json);
        try
        {
            if (!reader.Read() || reader.TokenType != System.Text.Json.JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("resourceType"u8))
                {
                    return reader.Read() && reader.TokenType == System.Text.Json.JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }

        return null;
    }

    /// <summary>The body in a buffer rented from the shared pool (the caller returns it), refused past the size limit or when empty.</summary>
    private async Task<(byte[] Buffer, int Length)> ReadPooledBodyAsync(HttpRequest request, CancellationToken ct)
    {
        var limit = options.Value.MaxBodyBytes;
        if (request.ContentLength > limit)
        {
            throw new PayloadTooLargeException(limit);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is { } expected ? (int)expected + 1 : 16384);
        var length = 0;
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer.AsMemory(length), ct)) > 0)
            {
                length += read;
                if (length > limit)
                {
                    throw new PayloadTooLargeException(limit);
                }

                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }

            if (length == 0)
            {
                throw new InvalidInputException("The request body is empty; a FHIR resource (or, for a Binary, its content) was expected.");
            }

            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}

/// <summary>HTTP preconditions (http.html#concurrency, #cread).</summary>
public static class Preconditions
{
    /// <summary>The versions in <c>If-Match</c> (<c>W/"3"</c>, <c>"3"</c> or <c>3</c>, or a list of them), or null when absent.</summary>
    public static IReadOnlyList<int>? IfMatch(HttpRequest request)
    {
        var raw = request.Headers.IfMatch.ToString();
        return raw.Trim().Length == 0 ? null : ETags.ParseVersions(raw, "If-Match");
    }

    /// <summary>For a write: the versions in <c>If-None-Match</c> (<c>*</c>: any), or null when absent.</summary>
    public static IReadOnlyList<int>? IfNoneMatch(HttpRequest request)
    {
        var raw = request.Headers.IfNoneMatch.ToString();
        return raw.Trim().Length == 0 ? null : ETags.ParseVersions(raw, "If-None-Match");
    }

    /// <summary>True when <c>If-None-Match</c> names the current version or <c>If-Modified-Since</c> is not before it (304).</summary>
    public static bool NotModified(HttpRequest request, Fhir.Storage.StoredResource current)
    {
        var noneMatch = request.Headers.IfNoneMatch.ToString();
        if (noneMatch.Length > 0)
        {
            return noneMatch.Split(',').Select(t => t.Trim()).Any(t => t == "*" || t == current.ETag || t == $"\"{current.VersionId}\"");
        }

        var since = request.GetTypedHeaders().IfModifiedSince;
        // HTTP dates have whole seconds: compare at that precision.
        return since is { } s && current.LastUpdated.ToUnixTimeSeconds() <= s.ToUnixTimeSeconds();
    }
}
