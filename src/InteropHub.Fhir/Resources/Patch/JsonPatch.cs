using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Patch;

/// <summary>
/// A JSON Patch document (RFC 6902, media type <c>application/json-patch+json</c>; http.html#patch), applied to
/// the stored JSON of the resource. The document is checked when parsed (400 for a malformed one); applying it
/// fails with 422 when a target is missing or a <c>test</c> fails, and the result is parsed strictly like any
/// client body, so a patch that breaks the resource is refused naming the element.
/// </summary>
public sealed class JsonPatch : IResourcePatch
{
    private readonly List<Operation> _operations;

    private JsonPatch(List<Operation> operations) => _operations = operations;

    public static JsonPatch Parse(ReadOnlySpan<byte> body)
    {
        JsonNode? document;
        try
        {
            document = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"The JSON Patch document is not valid JSON: {e.Message}");
        }

        if (document is not JsonArray array)
        {
            throw new InvalidInputException("A JSON Patch document is a JSON array of operations (RFC 6902 §3).");
        }

        var operations = new List<Operation>();
        for (var i = 0; i < array.Count; i++)
        {
            operations.Add(Operation.Parse(array[i], $"JSON Patch operation {i}"));
        }

        return new JsonPatch(operations);
    }

    /// <summary>
    /// Offers every <c>reference</c> member of the operations' values (a Reference at any depth) to
    /// <paramref name="replace"/>, which returns its new value or null to keep it: a transaction rewrites its
    /// placeholders here as in its resources.
    /// </summary>
    public void ReplaceReferences(Func<string, string?> replace)
    {
        for (var i = 0; i < _operations.Count; i++)
        {
            var operation = _operations[i];
            if (operation.Path is [.., "reference"] && operation.Value is JsonValue bare && bare.TryGetValue<string>(out var text) && replace(text) is { } replaced)
            {
                // The value is the reference itself (path …/reference).
                _operations[i] = operation with { Value = JsonValue.Create(replaced) };
            }
            else
            {
                Walk(operation.Value);
            }
        }

        void Walk(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject members:
                    foreach (var (name, child) in members.ToList())
                    {
                        if (name == "reference" && child is JsonValue value && value.TryGetValue<string>(out var text) && replace(text) is { } replaced)
                        {
                            members[name] = replaced;
                        }
                        else
                        {
                            Walk(child);
                        }
                    }

                    break;
                case JsonArray items:
                    foreach (var item in items)
                    {
                        Walk(item);
                    }

                    break;
            }
        }
    }

    public Resource Apply(StoredResource current, FhirSerializers serializers)
    {
        var document = JsonNode.Parse(current.Json);
        foreach (var operation in _operations)
        {
            document = operation.Apply(document ?? throw PatchErrors.Failed("A JSON Patch operation replaced the whole resource with null."));
        }

        if (document is JsonObject patched && patched["resourceType"] is JsonValue type && type.TryGetValue<string>(out var typeName) && typeName != current.ResourceType)
        {
            throw PatchErrors.Failed($"The patch changes the resource type from {current.ResourceType} to {typeName}; a patch may not do that.", "resourceType");
        }

        var bytes = Encoding.UTF8.GetBytes(document?.ToJsonString() ?? "null");
        try
        {
            return serializers.ParseJson(bytes);
        }
        catch (InvalidInputException e)
        {
            throw PatchErrors.InvalidResult(e.Outcome);
        }
    }

    private sealed record Operation(string Op, string[] Path, string PathText, string[]? From, JsonNode? Value, string Where)
    {
        public static Operation Parse(JsonNode? node, string where)
        {
            if (node is not JsonObject operation)
            {
                throw new InvalidInputException($"{where} is not a JSON object.");
            }

            var op = Text(operation, "op", where);
            var pathText = Text(operation, "path", where);
            var path = Pointer(pathText, where);
            switch (op)
            {
                case "add" or "replace" or "test":
                    if (!operation.TryGetPropertyValue("value", out var value))
                    {
                        throw new InvalidInputException($"{where} ('{op}') has no 'value'.");
                    }

                    return new Operation(op, path, pathText, null, value, where);
                case "remove":
                    return new Operation(op, path, pathText, null, null, where);
                case "move" or "copy":
                    var fromText = Text(operation, "from", where);
                    var from = Pointer(fromText, where);
                    if (op == "move" && path.Length > from.Length && path.AsSpan(0, from.Length).SequenceEqual(from))
                    {
                        throw new InvalidInputException($"{where} moves '{fromText}' into its own child '{pathText}' (RFC 6902 §4.4).");
                    }

                    return new Operation(op, path, pathText, from, null, where);
                default:
                    throw new InvalidInputException($"{where} has op '{op}'; JSON Patch knows add, remove, replace, move, copy and test.");
            }
        }

        /// <summary>Applies the operation; returns the (possibly replaced) document root.</summary>
        public JsonNode? Apply(JsonNode root)
        {
            switch (Op)
            {
                case "add":
                    return Add(root, Path, Value?.DeepClone());
                case "remove":
                    Remove(root, Path);
                    return root;
                case "replace":
                    if (Path.Length == 0)
                    {
                        return Value?.DeepClone();
                    }

                    Remove(root, Path);
                    return Add(root, Path, Value?.DeepClone());
                case "move":
                    var moved = Find(root, From!);
                    Remove(root, From!);
                    return Add(root, Path, moved);
                case "copy":
                    return Add(root, Path, Find(root, From!)?.DeepClone());
                default:
                    if (!JsonNode.DeepEquals(Find(root, Path), Value))
                    {
                        throw Failed($"the value at '{PathText}' is not the one tested for");
                    }

                    return root;
            }
        }

        private JsonNode? Add(JsonNode root, string[] path, JsonNode? value)
        {
            if (path.Length == 0)
            {
                return value;
            }

            var parent = Find(root, path[..^1]);
            var last = path[^1];
            switch (parent)
            {
                case JsonObject obj:
                    obj[last] = value;
                    break;
                case JsonArray array:
                    var index = last == "-" ? array.Count : Index(last, array.Count + 1);
                    array.Insert(index, value);
                    break;
                default:
                    throw Failed($"the parent of '{PathText}' is not an object or an array");
            }

            return root;
        }

        private void Remove(JsonNode root, string[] path)
        {
            if (path.Length == 0)
            {
                throw Failed("the whole resource cannot be removed");
            }

            var parent = Find(root, path[..^1]);
            var last = path[^1];
            switch (parent)
            {
                case JsonObject obj when obj.ContainsKey(last):
                    obj.Remove(last);
                    break;
                case JsonArray array:
                    array.RemoveAt(Index(last, array.Count));
                    break;
                default:
                    throw Failed($"there is nothing at '{string.Join('/', path.Prepend(""))}' to {(Op == "remove" ? "remove" : Op == "move" ? "move" : "replace")}"
                        + (Op == "replace" ? "; use 'add' to set an element that is absent" : ""));
            }
        }

        private JsonNode? Find(JsonNode root, string[] path)
        {
            var node = root;
            foreach (var token in path)
            {
                node = node switch
                {
                    JsonObject obj when obj.TryGetPropertyValue(token, out var child) => child,
                    JsonArray array => array[Index(token, array.Count)],
                    _ => throw Failed($"'{PathText}' does not exist in the resource"),
                };
            }

            return node;
        }

        /// <summary>An array index token (RFC 6901 §4: digits without leading zeros), below <paramref name="limit"/>.</summary>
        private int Index(string token, int limit)
        {
            var valid = token.Length > 0 && token.All(char.IsAsciiDigit) && (token == "0" || token[0] != '0');
            if (!valid || !int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= limit)
            {
                throw Failed($"'{token}' in '{PathText}' is not an index of the array (it has {limit} positions here)");
            }

            return index;
        }

        private UnprocessableResourceException Failed(string reason) =>
            PatchErrors.Failed($"{Where} ({Op} {PathText}) cannot be applied: {reason}.");

        private static string Text(JsonObject operation, string name, string where) =>
            operation.TryGetPropertyValue(name, out var node) && node is JsonValue value && value.TryGetValue<string>(out var text)
                ? text
                : throw new InvalidInputException($"{where} has no string '{name}'.");

        /// <summary>A JSON Pointer (RFC 6901): "" or "/a/b", with ~1 for '/' and ~0 for '~'.</summary>
        private static string[] Pointer(string pointer, string where)
        {
            if (pointer.Length == 0)
            {
                return [];
            }

            if (pointer[0] != '/')
            {
                throw new InvalidInputException($"{where} has path '{pointer}', which is not a JSON Pointer (it must start with '/').");
            }

            return pointer[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
        }
    }
}
