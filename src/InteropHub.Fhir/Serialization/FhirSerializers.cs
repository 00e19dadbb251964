using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Utility;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Serialization;

/// <summary>
/// The one set of Firely (de)serializers the process uses (they are thread-safe and costly to build).
/// Untrusted input is parsed strictly, so an unknown element, a bad date or a missing mandatory element
/// is a 400 naming the element and the line/position; stored bytes (written by this server) are parsed
/// leniently because they were validated on the way in.
/// </summary>
public sealed class FhirSerializers
{
    /// <summary>Chinese and other non-ASCII text is written as UTF-8, not as \u escapes, so it round-trips byte-exact.</summary>
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    private static readonly JsonWriterOptions CompactWriter = new() { Encoder = Encoder, SkipValidation = true };
    private static readonly JsonWriterOptions IndentedWriter = new() { Encoder = Encoder, SkipValidation = true, Indented = true };

    private static readonly XmlReaderSettings SafeXmlReader = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        IgnoreWhitespace = true,
        IgnoreComments = true,
    };

    private readonly FhirJsonDeserializer _strictJson = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));
    private readonly FhirXmlDeserializer _strictXml = new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));
    private readonly FhirJsonDeserializer _storedJson = new(new DeserializerSettings().UsingMode(DeserializationMode.Recoverable));
    private readonly FhirJsonSerializer _json = new();
    private readonly FhirXmlSerializer _xml = new();

    /// <summary>Parses a client's JSON resource; any problem is an <see cref="InvalidInputException"/> listing every issue found.</summary>
    public Resource ParseJson(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            var resource = _strictJson.DeserializeResource(ref reader);
            if (body.IndexOf("\"_"u8) >= 0)
            {
                CheckRepeatingPrimitives(body);
            }

            return resource;
        }
        catch (DeserializationFailedException e) when (EmptyResource(e) is { } empty)
        {
            return empty;
        }
        catch (DeserializationFailedException e)
        {
            throw new InvalidInputException(ToOutcome(e));
        }
        catch (JsonException e)
        {
            var line = e.LineNumber + 1;
            var position = e.BytePositionInLine + 1;
            throw new InvalidInputException($"The body is not valid JSON: {Trim(e.Message)} (line {line}, position {position}).");
        }
        catch (Exception e) when (e is not FhirException)
        {
            // The SDK throws other exception types on some shapes it cannot start on (e.g. a top-level array).
            throw new InvalidInputException($"The body is not a FHIR JSON resource: {e.Message}");
        }
    }

    /// <summary>
    /// A repeating primitive's values and their ids and extensions (the <c>_</c> array) line up one to one
    /// (json.html#primitive), nulls holding the places. The SDK's reader pads arrays of different lengths, which
    /// would hand an extension to another value; such a body is refused, naming the element.
    /// </summary>
    private static void CheckRepeatingPrimitives(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        using var document = JsonDocument.ParseValue(ref reader);
        Walk(document.RootElement, document.RootElement.TryGetProperty("resourceType", out var type) ? type.GetString() ?? "" : "");

        static void Walk(JsonElement element, string path)
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Walk(item, $"{path}[{i++}]");
                }

                return;
            }

            if (element.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            foreach (var property in element.EnumerateObject())
            {
                var name = property.Name;
                var here = path.Length == 0 ? name : $"{path}.{name}";
                if (!name.StartsWith('_') && property.Value.ValueKind == JsonValueKind.Array
                    && element.TryGetProperty("_" + name, out var extra) && extra.ValueKind == JsonValueKind.Array
                    && extra.GetArrayLength() != property.Value.GetArrayLength())
                {
                    throw new InvalidInputException(
                        $"{here} has {property.Value.GetArrayLength()} values but _{name} has {extra.GetArrayLength()} entries: the two arrays of a repeating "
                        + "primitive line up one to one, with null where a value or its extensions are absent (json.html#primitive).", here);
                }

                Walk(property.Value, property.Value.ValueKind == JsonValueKind.Object && property.Value.TryGetProperty("resourceType", out var inner)
                    ? inner.GetString() ?? here
                    : here);
            }
        }
    }

    /// <summary>Parses a client's XML resource, refusing DTDs and external entities.</summary>
    public Resource ParseXml(ReadOnlyMemory<byte> body)
    {
        using var stream = new MemoryStream(body.ToArray(), writable: false);
        using var reader = XmlReader.Create(stream, SafeXmlReader);
        try
        {
            return _strictXml.DeserializeResource(reader);
        }
        catch (DeserializationFailedException e) when (EmptyResource(e) is { } empty)
        {
            return empty;
        }
        catch (DeserializationFailedException e)
        {
            throw new InvalidInputException(ToOutcome(e));
        }
        catch (XmlException e)
        {
            throw new InvalidInputException($"The body is not well-formed XML: {e.Message}");
        }
        catch (Exception e) when (e is not FhirException)
        {
            throw new InvalidInputException($"The body is not a FHIR XML resource: {e.Message}");
        }
    }

    /// <summary>Parses bytes this server stored earlier.</summary>
    public Resource ParseStored(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        try
        {
            return _storedJson.DeserializeResource(ref reader);
        }
        catch (DeserializationFailedException e) when (e.PartialResult is Resource partial)
        {
            return partial;
        }
    }

    public byte[] ToJsonBytes(Base instance, bool pretty = false)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        WriteJson(instance, buffer, pretty);
        return buffer.WrittenSpan.ToArray();
    }

    public void WriteJson(Base instance, IBufferWriter<byte> output, bool pretty = false)
    {
        using var writer = new Utf8JsonWriter(output, pretty ? IndentedWriter : CompactWriter);
        _json.Serialize(instance, writer);
        writer.Flush();
    }

    /// <summary>Serialises only what the filter lets through (<c>_summary</c>, <c>_elements</c>).</summary>
    public byte[] ToJsonBytes(Base instance, Func<SerializationFilter> filter)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, CompactWriter))
        {
            _json.Serialize(instance, writer, filter);
        }

        // The SDK's filters tag SUBSETTED twice: with R4's system and with the pre-R4 one, which R4 readers do not know.
        var subset = JsonNode.Parse(buffer.WrittenSpan);
        if (subset?["meta"]?["tag"] is JsonArray tags
            && tags.FirstOrDefault(t => t?["system"]?.GetValue<string>() == "http://hl7.org/fhir/v3/ObservationValue" && t["code"]?.GetValue<string>() == "SUBSETTED") is { } obsolete)
        {
            tags.Remove(obsolete);
            var trimmed = new ArrayBufferWriter<byte>(buffer.WrittenCount);
            using (var writer = new Utf8JsonWriter(trimmed, CompactWriter))
            {
                subset.WriteTo(writer);
            }

            return trimmed.WrittenSpan.ToArray();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public byte[] ToXmlBytes(Base instance, bool pretty = false)
    {
        using var stream = new MemoryStream();
        var settings = new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = pretty, OmitXmlDeclaration = false };
        using (var writer = XmlWriter.Create(stream, settings))
        {
            _xml.Serialize(instance, writer);
        }

        return stream.ToArray();
    }

    /// <summary>Re-indents stored JSON for <c>_pretty=true</c> without building a POCO.</summary>
    public static byte[] Indent(ReadOnlySpan<byte> json)
    {
        var buffer = new ArrayBufferWriter<byte>(json.Length * 2);
        var reader = new Utf8JsonReader(json);
        using var document = JsonDocument.ParseValue(ref reader);
        using (var writer = new Utf8JsonWriter(buffer, IndentedWriter))
        {
            document.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// A resource with no element but its type (<c>{"resourceType":"Patient"}</c>): valid FHIR, as every element of most
    /// resources is optional, which the SDK's strict reader refuses as an empty object; anything else wrong is not this.
    /// </summary>
    /// <summary>
    /// A resource with nothing but its type (<c>{"resourceType":"Patient"}</c>), which FHIR allows, is refused by the
    /// SDK as an empty object; the parse is otherwise complete. So is such a resource as a Bundle entry's.
    /// </summary>
    private static Resource? EmptyResource(DeserializationFailedException e) =>
        e.PartialResult is Resource resource && e.Exceptions.All(x => x is ExtendedCodedException { ErrorCode: "JSON120" or "PVAL129" } coded
            && (coded.InstancePath == "$this" || coded.InstancePath == resource.TypeName
                || (resource is Bundle && coded.InstancePath is { } path && path.EndsWith(".resource", StringComparison.Ordinal)))) ? resource : null;

    private static OperationOutcome ToOutcome(DeserializationFailedException e)
    {
        // The SDK names the resource's root "$this" in some checks (a missing required element): its type, as a
        // FHIRPath expression starts.
        var root = (e.PartialResult as Resource)?.TypeName;
        string Rooted(string text) => root is null ? text : text.Replace("$this", root, StringComparison.Ordinal);
        var outcome = new OperationOutcome();
        foreach (var error in e.Exceptions)
        {
            var issue = new OperationOutcome.IssueComponent
            {
                Severity = OperationOutcome.IssueSeverity.Error,
                Code = OperationOutcome.IssueType.Structure,
                Diagnostics = Rooted(error.Message),
            };
            if (error is ExtendedCodedException located)
            {
                issue.Code = located.IssueType;
                if (!string.IsNullOrEmpty(located.InstancePath))
                {
                    issue.Expression = [Rooted(located.InstancePath)];
                }

                if (located.LineNumber is { } line && located.Position is { } position)
                {
                    issue.Location = [$"line {line}, position {position}"];
                }
            }

            outcome.Issue.Add(issue);
        }

        return outcome;
    }

    private static string Trim(string message)
    {
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
