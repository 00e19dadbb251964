using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
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
public sealed partial class FhirSerializers
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
    /// <param name="refusedEntries">Given for a body that may be a batch Bundle: see <see cref="WithRefusedEntries"/>.</param>
    public Resource ParseJson(ReadOnlySpan<byte> body, IDictionary<int, OperationOutcome>? refusedEntries = null)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        Resource resource;
        try
        {
            resource = _strictJson.DeserializeResource(ref reader);
        }
        catch (DeserializationFailedException e) when ((EmptyResource(e) ?? WithRefusedEntries(e, refusedEntries)) is { } parsed)
        {
            resource = parsed;
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

        EnsureNothingAfter(ref reader);
        if (body.IndexOf("\"_"u8) >= 0)
        {
            CheckRepeatingPrimitives(body, resource is Bundle { Type: Bundle.BundleType.Batch } ? refusedEntries : null);
        }

        return resource;
    }

    /// <summary>
    /// The deserializer stops at the end of the resource's object: anything but whitespace after it (a second resource,
    /// stray brackets) would be dropped unread, so the body is refused instead (RFC 8259 §2: a JSON text is one value).
    /// </summary>
    private static void EnsureNothingAfter(ref Utf8JsonReader reader)
    {
        const string Why = "a FHIR JSON body is one resource, followed by nothing but whitespace";
        try
        {
            if (reader.Read())
            {
                throw new InvalidInputException($"The body has content after the resource: {Why}.");
            }
        }
        catch (JsonException e)
        {
            throw new InvalidInputException(
                $"The body has content after the resource (line {e.LineNumber + 1}, position {e.BytePositionInLine + 1}): {Why}.");
        }
    }

    /// <summary>
    /// A repeating primitive's values and their ids and extensions (the <c>_</c> array) line up one to one
    /// (json.html#primitive), nulls holding the places. The SDK's reader pads arrays of different lengths, which
    /// would hand an extension to another value; such a body is refused, naming the element.
    /// </summary>
    /// <param name="refusedEntries">For a batch: an entry's misaligned element refuses that entry alone, as its other
    /// parse errors do (<see cref="WithRefusedEntries"/>).</param>
    private static void CheckRepeatingPrimitives(ReadOnlySpan<byte> body, IDictionary<int, OperationOutcome>? refusedEntries)
    {
        var reader = new Utf8JsonReader(body);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement.TryGetProperty("resourceType", out var type) ? type.GetString() : null;
        if (refusedEntries is not null && document.RootElement.TryGetProperty("entry", out var entries) && entries.ValueKind == JsonValueKind.Array)
        {
            var index = 0;
            foreach (var entry in entries.EnumerateArray())
            {
                if (Misaligned(entry) is { } inEntry && !refusedEntries.ContainsKey(index))
                {
                    refusedEntries[index] = Refusal(inEntry, $"{root}.entry[{index}]").Outcome;
                }

                index++;
            }

            // What is left to check lies outside the entries.
            if (Misaligned(document.RootElement, skip: "entry") is { } outside)
            {
                throw Refusal(outside, root);
            }

            return;
        }

        if (Misaligned(document.RootElement) is { } found)
        {
            throw Refusal(found, root);
        }

        static InvalidInputException Refusal((string Path, string Name, int Values, int Extras) found, string? under)
        {
            var path = under is null ? found.Path : $"{under}{(found.Path.StartsWith('[') ? "" : ".")}{found.Path}";
            return new InvalidInputException(
                $"{path} has {found.Values} values but _{found.Name} has {found.Extras} entries: the two arrays of a repeating "
                + "primitive line up one to one, with null where a value or its extensions are absent (json.html#primitive).", path);
        }

        // The first misaligned pair under the element (but not under its property skip), its path relative to it; the
        // path is built only for that one.
        static (string Path, string Name, int Values, int Extras)? Misaligned(JsonElement element, string? skip = null)
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Misaligned(item) is { } inner)
                    {
                        return inner with { Path = $"[{i}]{(inner.Path.StartsWith('[') ? "" : ".")}{inner.Path}" };
                    }

                    i++;
                }

                return null;
            }

            if (element.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            foreach (var property in element.EnumerateObject())
            {
                if (property.Name == skip)
                {
                    continue;
                }

                if (property.Value.ValueKind == JsonValueKind.Array && !property.Name.StartsWith('_')
                    && element.TryGetProperty("_" + property.Name, out var extra) && extra.ValueKind == JsonValueKind.Array
                    && extra.GetArrayLength() != property.Value.GetArrayLength())
                {
                    return (property.Name, property.Name, property.Value.GetArrayLength(), extra.GetArrayLength());
                }

                if (property.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array && Misaligned(property.Value) is { } inner)
                {
                    return inner with { Path = $"{property.Name}{(inner.Path.StartsWith('[') ? "" : ".")}{inner.Path}" };
                }
            }

            return null;
        }
    }

    /// <summary>Parses a client's XML resource, refusing DTDs and external entities.</summary>
    /// <param name="refusedEntries">Given for a body that may be a batch Bundle: see <see cref="WithRefusedEntries"/>.</param>
    public Resource ParseXml(ReadOnlyMemory<byte> body, IDictionary<int, OperationOutcome>? refusedEntries = null)
    {
        EnsureUtf8Declaration(body.Span);
        using var stream = new MemoryStream(body.ToArray(), writable: false);
        try
        {
            EnsureXmlNestingWithin(stream);
            stream.Position = 0;
            using var reader = XmlReader.Create(stream, SafeXmlReader);
            return _strictXml.DeserializeResource(reader);
        }
        catch (DeserializationFailedException e) when ((EmptyResource(e) ?? WithRefusedEntries(e, refusedEntries)) is { } parsed)
        {
            return parsed;
        }
        catch (DeserializationFailedException e)
        {
            throw new InvalidInputException(ToOutcome(e));
        }
        catch (XmlException e) when (e.Message.Contains("DTD", StringComparison.Ordinal))
        {
            throw new InvalidInputException(
                "The body has a document type declaration (<!DOCTYPE …>): FHIR XML has none, and a DTD's entities are not expanded here.");
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

    /// <summary>
    /// http.html: FHIR bodies are UTF-8, and a Content-Type naming another charset is a 415. An XML declaration naming another
    /// encoding (<c>encoding="GBK"</c>) is refused the same way, not transcoded whenever the runtime happens to know it.
    /// </summary>
    private static void EnsureUtf8Declaration(ReadOnlySpan<byte> body)
    {
        if (XmlDeclaredEncoding().Match(Encoding.ASCII.GetString(body[..Math.Min(body.Length, 256)])) is { Success: true } declared
            && !declared.Groups[1].Value.Equals("UTF-8", StringComparison.OrdinalIgnoreCase))
        {
            throw new UnsupportedMediaTypeException(
                $"The XML declaration names encoding '{declared.Groups[1].Value}'; FHIR bodies are UTF-8, so it may name UTF-8 only (or be left out).");
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("""^\s*<\?xml\s[^?]*?\bencoding\s*=\s*["']([^"']*)["']""")]
    private static partial System.Text.RegularExpressions.Regex XmlDeclaredEncoding();

    /// <summary>How deep FHIR elements may nest in XML: at most two JSON levels each, within JSON's 64 (<see cref="ParseJson"/>).</summary>
    public const int MaxXmlDepth = 32;

    /// <summary>
    /// A resource is kept as JSON, which is read (here and by every client) at most 64 levels deep; an XML element adds
    /// at most two (a list and its object), so XML nesting FHIR elements deeper than <see cref="MaxXmlDepth"/> is refused
    /// before it could be stored and then not be served again. The narrative's XHTML is a string in JSON and not counted.
    /// </summary>
    private static void EnsureXmlNestingWithin(Stream stream)
    {
        using var reader = XmlReader.Create(stream, SafeXmlReader);
        while (reader.Read())
        {
            if (reader.NodeType == XmlNodeType.Element && reader.Depth >= MaxXmlDepth && reader.NamespaceURI == "http://hl7.org/fhir")
            {
                var position = (IXmlLineInfo)reader;
                throw new InvalidInputException(
                    $"The XML nests FHIR elements more than {MaxXmlDepth} deep (<{reader.LocalName}> at line {position.LineNumber}, position {position.LinePosition}); a resource this deep is not taken.");
            }
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
        // That Coding is cut out of the bytes (it holds no object of its own) with the comma that joins it to the list.
        var written = buffer.WrittenSpan;
        var at = written.IndexOf("\"http://hl7.org/fhir/v3/ObservationValue\""u8);
        if (at >= 0)
        {
            var open = written[..at].LastIndexOf((byte)'{');
            var close = written[at..].IndexOf((byte)'}');
            if (open >= 0 && close >= 0 && written[open..(at + close)].IndexOf("\"SUBSETTED\""u8) >= 0)
            {
                var end = at + close + 1;
                if (end < written.Length && written[end] == (byte)',')
                {
                    end++;
                }
                else if (open > 0 && written[open - 1] == (byte)',')
                {
                    open--;
                }

                return [.. written[..open], .. written[end..]];
            }
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
    /// A resource with nothing but its type (<c>{"resourceType":"Patient"}</c>), which FHIR allows, is refused by the
    /// SDK as an empty object; the parse is otherwise complete. So is such a resource as a Bundle entry's.
    /// </summary>
    private static Resource? EmptyResource(DeserializationFailedException e) =>
        e.PartialResult is Resource resource && e.Exceptions.All(x => IsEmptyResource(x, resource)) ? resource : null;

    private static bool IsEmptyResource(Exception error, Resource resource) =>
        error is ExtendedCodedException { ErrorCode: "JSON120" or "PVAL129" } coded
        && (coded.InstancePath == "$this" || coded.InstancePath == resource.TypeName
            || (resource is Bundle or Parameters && coded.InstancePath is { } path && path.EndsWith(".resource", StringComparison.Ordinal)));

    /// <summary>
    /// A batch's entries stand alone (http.html#transaction: one failing does not fail the others): when every issue lies
    /// inside an entry (<c>Bundle.entry[n].resource…</c>, <c>Bundle.entry[n].request.method</c>), the bundle is returned
    /// and each failing entry's issues are put in <paramref name="refusedEntries"/> under its index, for the batch to
    /// answer that entry alone. Null, and the whole body refused, for a transaction (which fails whole), for an issue on
    /// the bundle itself, and for one on an entry as a whole (an entry that is not an object: the SDK may then number
    /// the entries after it differently from the list it returns).
    /// </summary>
    private static Bundle? WithRefusedEntries(DeserializationFailedException e, IDictionary<int, OperationOutcome>? refusedEntries)
    {
        if (refusedEntries is null || e.PartialResult is not Bundle { Type: Bundle.BundleType.Batch } bundle)
        {
            return null;
        }

        var byEntry = new SortedDictionary<int, List<Exception>>();
        foreach (var error in e.Exceptions)
        {
            if (error is not ExtendedCodedException { InstancePath: { } path } || EntryIndex(path) is not { } index || index >= bundle.Entry.Count)
            {
                return null;
            }

            if (!IsEmptyResource(error, bundle))
            {
                (byEntry.TryGetValue(index, out var issues) ? issues : byEntry[index] = []).Add(error);
            }
        }

        foreach (var (index, issues) in byEntry)
        {
            refusedEntries[index] = ToOutcome(issues, bundle.TypeName);
        }

        return bundle;
    }

    /// <summary>The n of a path inside <c>Bundle.entry[n]</c>; null for a path elsewhere or naming the entry itself.</summary>
    private static int? EntryIndex(string path)
    {
        const string Entry = "Bundle.entry[";
        var close = path.StartsWith(Entry, StringComparison.Ordinal) ? path.IndexOf(']', Entry.Length) : -1;
        return close > Entry.Length && close + 1 < path.Length && path[close + 1] == '.'
            && int.TryParse(path.AsSpan(Entry.Length, close - Entry.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? index
            : null;
    }

    private static OperationOutcome ToOutcome(DeserializationFailedException e) => ToOutcome(e.Exceptions, (e.PartialResult as Resource)?.TypeName);

    private static OperationOutcome ToOutcome(IEnumerable<Exception> errors, string? root)
    {
        // The SDK names the resource's root "$this" in some checks (a missing required element): its type, as a
        // FHIRPath expression starts.
        string Rooted(string text) => root is null ? text : text.Replace("$this", root, StringComparison.Ordinal);
        var outcome = new OperationOutcome();
        foreach (var error in errors)
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
