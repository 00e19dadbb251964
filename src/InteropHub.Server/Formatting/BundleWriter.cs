using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.History;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.AspNetCore.WebUtilities;

namespace InteropHub.Server.Formatting;

/// <summary>
/// Writes history and searchset Bundles as JSON with the stored resource bytes spliced in raw, so a page of
/// resources is never parsed or re-serialised (ARCHITECTURE.md §3). Links are absolute and carry the
/// parameters as the client gave them plus the server's continuation key.
/// </summary>
public static class BundleWriter
{
    private static readonly JsonWriterOptions Options = new() { Encoder = FhirSerializers.Encoder, SkipValidation = true };

    public static PooledJson History(HistoryPage page, HttpRequest request) =>
        History(page, FhirResults.BaseUrl(request), PageUrl(request, null), page.NextCursor is { } cursor ? PageUrl(request, cursor) : null);

    /// <summary>
    /// A searchset (search.html#bundle): matches, then included resources, then an OperationOutcome of warnings;
    /// the self link shows the parameters the server applied, the next link carries the continuation key.
    /// </summary>
    public static PooledJson SearchSet(SearchPage page, HttpRequest request) =>
        SearchSet(page, FhirResults.BaseUrl(request), SearchPath(request), request.HttpContext.RequestServices.GetRequiredService<FhirSerializers>());

    /// <summary>
    /// A batch-response or transaction-response (http.html#transaction-response): one entry per request entry with
    /// its status, location, etag and lastModified, the resource (of a write, unless <c>Prefer: return=minimal</c>), and the
    /// OperationOutcome of a failed batch entry. Reads and searches inside the bundle return their resource or
    /// their searchset or history Bundle as the entry's resource.
    /// </summary>
    public static PooledJson Response(BundleResult result, HttpRequest request, FhirSerializers serializers)
    {
        var baseUrl = FhirResults.BaseUrl(request);
        var prefer = FhirResults.Prefer(request);
        var type = result.Type == Bundle.BundleType.TransactionResponse ? "transaction-response" : "batch-response";
        return Write(type, baseUrl, null, null, result.Entries.Count > 0, writer =>
        {
            foreach (var entry in result.Entries)
            {
                var resource = entry.Resource;
                writer.WriteStartObject();
                if (resource is { IsDeleted: false })
                {
                    writer.WriteString("fullUrl", $"{baseUrl}/{resource.ResourceType}/{resource.Id}");
                }

                if (entry.WithBody && (entry.IsRead || prefer == "representation"))
                {
                    Body(writer, entry, baseUrl, serializers);
                }

                writer.WriteStartObject("response");
                writer.WriteString("status", $"{entry.Status} {ReasonPhrases.GetReasonPhrase(entry.Status)}");
                if (entry.Location is { } location)
                {
                    writer.WriteString("location", location);
                }

                if (resource is not null)
                {
                    writer.WriteString("etag", resource.ETag);
                    writer.WriteString("lastModified", Instant(resource.LastUpdated));
                }

                var outcome = entry.Outcome ?? (prefer == "OperationOutcome" ? Informational(entry) : null);
                if (outcome is not null)
                {
                    writer.WritePropertyName("outcome");
                    writer.WriteRawValue(serializers.ToJsonBytes(outcome), skipInputValidation: true);
                }

                writer.WriteEndObject();
                writer.WriteEndObject();
            }
        });
    }

    /// <summary>The entry's <c>resource</c>: the resource written or read, or the searchset or history Bundle; nothing for a deletion.</summary>
    private static void Body(Utf8JsonWriter writer, EntryResponse entry, string baseUrl, FhirSerializers serializers)
    {
        using var nested = Nested(entry, baseUrl, serializers);
        if (nested is not null)
        {
            writer.WritePropertyName("resource");
            writer.WriteRawValue(nested.Written.Span, skipInputValidation: true);
        }
        else if (entry.Resource is { IsDeleted: false } resource)
        {
            writer.WritePropertyName("resource");
            writer.WriteRawValue(resource.Json, skipInputValidation: true);
        }
        else if (entry.Json is { } json)
        {
            writer.WritePropertyName("resource");
            writer.WriteRawValue(json, skipInputValidation: true);
        }
    }

    private static PooledJson? Nested(EntryResponse entry, string baseUrl, FhirSerializers serializers)
    {
        // A search or history entry's URL without its query: the links of the nested Bundle add their own.
        var path = entry.Url is { } url ? $"{baseUrl}/{url.Split('?')[0]}" : baseUrl;
        if (entry.Search is { } search)
        {
            return SearchSet(search, baseUrl, path, serializers);
        }

        if (entry.History is { } history)
        {
            var self = $"{baseUrl}/{entry.Url}";
            var next = history.NextCursor is { } cursor
                ? $"{path}?{string.Join('&', QueryOf(entry.Url!).Where(p => !p.StartsWith(Fhir.Resources.Paging.CursorParameter + "=", StringComparison.Ordinal))
                    .Append($"{Fhir.Resources.Paging.CursorParameter}={cursor.ToString(CultureInfo.InvariantCulture)}"))}"
                : null;
            return History(history, baseUrl, self, next);
        }

        return null;
    }

    private static string[] QueryOf(string url) =>
        url.Contains('?', StringComparison.Ordinal) ? url[(url.IndexOf('?', StringComparison.Ordinal) + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries) : [];

    private static OperationOutcome Informational(EntryResponse entry)
    {
        var status = $"{entry.Status} {ReasonPhrases.GetReasonPhrase(entry.Status)}";
        return FhirException.Issue(OperationOutcome.IssueType.Informational,
            entry.Resource is { } resource ? $"{status}: {resource.ResourceType}/{resource.Id} version {resource.VersionId}." : $"{status}.",
            severity: OperationOutcome.IssueSeverity.Information);
    }

    private static PooledJson History(HistoryPage page, string baseUrl, string self, string? next)
    {
        return Write("history", self, next, page.Total, page.Entries.Count > 0, writer =>
        {
            foreach (var entry in page.Entries)
            {
                var resource = entry.Resource;
                writer.WriteStartObject();
                writer.WriteString("fullUrl", $"{baseUrl}/{resource.ResourceType}/{resource.Id}");
                if (!resource.IsDeleted)
                {
                    writer.WritePropertyName("resource");
                    writer.WriteRawValue(resource.Json, skipInputValidation: true);
                }

                writer.WriteStartObject("request");
                writer.WriteString("method", resource.Method);
                writer.WriteString("url", resource.Method == "POST" ? resource.ResourceType : $"{resource.ResourceType}/{resource.Id}");
                writer.WriteEndObject();

                writer.WriteStartObject("response");
                writer.WriteString("status", resource.IsDeleted ? "204 No Content" : resource.VersionId == 1 || resource.Method == "POST" ? "201 Created" : "200 OK");
                writer.WriteString("etag", resource.ETag);
                writer.WriteString("lastModified", Instant(resource.LastUpdated));
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
        });
    }


    private static PooledJson SearchSet(SearchPage page, string baseUrl, string path, FhirSerializers serializers)
    {
        var self = page.SelfQuery.Length > 0 ? $"{path}?{page.SelfQuery}" : path;
        var next = page.NextQuery is { } query ? $"{path}?{query}" : null;
        var previous = page.PreviousQuery is { } back ? $"{path}?{back}" : null;
        var outcome = page.Outcome is { } issues ? serializers.ToJsonBytes(issues) : null;
        return Write("searchset", self, next, page.Total, page.Matches.Count + page.Included.Count > 0 || outcome is not null, writer =>
        {
            foreach (var resource in page.Matches)
            {
                SearchEntry(writer, baseUrl, resource, "match");
            }

            foreach (var resource in page.Included)
            {
                SearchEntry(writer, baseUrl, resource, "include");
            }

            if (outcome is not null)
            {
                writer.WriteStartObject();
                writer.WritePropertyName("resource");
                writer.WriteRawValue(outcome, skipInputValidation: true);
                writer.WriteStartObject("search");
                writer.WriteString("mode", "outcome");
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
        }, previous);
    }

    private static void SearchEntry(Utf8JsonWriter writer, string baseUrl, StoredResource resource, string mode)
    {
        writer.WriteStartObject();
        writer.WriteString("fullUrl", $"{baseUrl}/{resource.ResourceType}/{resource.Id}");
        writer.WritePropertyName("resource");
        writer.WriteRawValue(resource.Json, skipInputValidation: true);
        writer.WriteStartObject("search");
        writer.WriteString("mode", mode);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The search URL without query; a POST to <c>…/_search</c> is linked as the equivalent GET.</summary>
    private static string SearchPath(HttpRequest request)
    {
        var path = $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}";
        return path.EndsWith("/_search", StringComparison.Ordinal) ? path[..^"/_search".Length] : path;
    }

    /// <param name="hasEntries">Whether <paramref name="entries"/> writes any: FHIR JSON has no empty arrays, so a Bundle without entries has no <c>entry</c>.</param>
    private static PooledJson Write(string type, string self, string? next, long? total, bool hasEntries, Action<Utf8JsonWriter> entries, string? previous = null)
    {
        var buffer = new PooledJson();
        try
        {
            using var writer = new Utf8JsonWriter(buffer, Options);
            writer.WriteStartObject();
            writer.WriteString("resourceType", "Bundle");
            writer.WriteString("id", Guid.NewGuid().ToString());
            writer.WriteStartObject("meta");
            writer.WriteString("lastUpdated", Instant(DateTimeOffset.UtcNow));
            writer.WriteEndObject();
            writer.WriteString("type", type);
            if (total is { } count)
            {
                writer.WriteNumber("total", count);
            }

            writer.WriteStartArray("link");
            Link(writer, "self", self);
            if (next is not null)
            {
                Link(writer, "next", next);
            }

            if (previous is not null)
            {
                Link(writer, "previous", previous);
            }

            writer.WriteEndArray();
            if (hasEntries)
            {
                writer.WriteStartArray("entry");
                entries(writer);
                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }
        catch
        {
            buffer.Dispose();
            throw;
        }

        return buffer;
    }

    private static void Link(Utf8JsonWriter writer, string relation, string url)
    {
        writer.WriteStartObject();
        writer.WriteString("relation", relation);
        writer.WriteString("url", url);
        writer.WriteEndObject();
    }

    /// <summary>The request URL with <c>_cursor</c> set to <paramref name="cursor"/> (or kept as given for self).</summary>
    private static string PageUrl(HttpRequest request, long? cursor)
    {
        var url = $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}";
        if (cursor is null)
        {
            return url + request.QueryString.Value;
        }

        var query = request.Query
            .Where(p => p.Key != Fhir.Resources.Paging.CursorParameter)
            .SelectMany(p => p.Value.Select(v => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(v ?? "")}"))
            .Append($"{Fhir.Resources.Paging.CursorParameter}={cursor.Value.ToString(CultureInfo.InvariantCulture)}");
        return url + "?" + string.Join('&', query);
    }

    private static string Instant(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
