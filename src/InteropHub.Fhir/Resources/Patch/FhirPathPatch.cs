using System.Collections;
using System.Globalization;
using Hl7.Fhir.FhirPath;
using Hl7.Fhir.Introspection;
using Hl7.Fhir.Model;
using Hl7.FhirPath;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources.Patch;

/// <summary>
/// A FHIRPath Patch (fhirpatch.html): a Parameters resource whose <c>operation</c> parameters add, insert,
/// delete, replace or move content at locations selected with the SDK's FHIRPath engine. The document is
/// checked when parsed (400 names the parameter); applying works on the resource's POCO tree, and the result
/// goes through the strict parser, so a value of the wrong type is refused naming the element (422).
/// </summary>
public sealed class FhirPathPatch : IResourcePatch
{
    private static readonly FhirPathCompilerCache Compiler = new(new FhirPathCompiler(), 500);

    private readonly IReadOnlyList<Operation> _operations;

    private FhirPathPatch(IReadOnlyList<Operation> operations) => _operations = operations;

    public static FhirPathPatch Parse(Parameters parameters, string where = "Parameters")
    {
        var operations = new List<Operation>();
        for (var i = 0; i < parameters.Parameter.Count; i++)
        {
            operations.Add(Operation.Parse(parameters.Parameter[i], $"{where}.parameter[{i}]"));
        }

        return new FhirPathPatch(operations);
    }

    public Resource Apply(StoredResource current, FhirSerializers serializers)
    {
        var resource = serializers.ParseStored(current.Json);
        foreach (var operation in _operations)
        {
            operation.Apply(resource);
        }

        try
        {
            return serializers.ParseJson(serializers.ToJsonBytes(resource));
        }
        catch (InvalidInputException e)
        {
            throw PatchErrors.InvalidResult(e.Outcome);
        }
    }

    private sealed record Operation(string Type, string Path, CompiledExpression Expression, string? Name,
        Parameters.ParameterComponent? Value, int? Index, int? Source, int? Destination, string Where)
    {
        public static Operation Parse(Parameters.ParameterComponent parameter, string where)
        {
            if (parameter.Name != "operation")
            {
                throw new InvalidInputException($"{where} is named '{parameter.Name}'; a FHIRPath Patch has only 'operation' parameters.", where);
            }

            var parts = parameter.Part.ToLookup(p => p.Name ?? "");
            foreach (var part in parts)
            {
                if (part.Key is not ("type" or "path" or "name" or "value" or "index" or "source" or "destination"))
                {
                    throw new InvalidInputException($"{where} has an unknown part '{part.Key}'.", where);
                }

                if (part.Count() > 1)
                {
                    throw new InvalidInputException($"{where} has more than one '{part.Key}' part.", where);
                }
            }

            var type = Text(parts, "type", where) ?? throw new InvalidInputException($"{where} has no 'type'.", where);
            var path = Text(parts, "path", where) ?? throw new InvalidInputException($"{where} has no 'path'.", where);
            CompiledExpression expression;
            try
            {
                expression = Compiler.GetCompiledExpression(path);
            }
            catch (Exception e) when (e is not FhirException)
            {
                throw new InvalidInputException($"{where} has path '{path}', which is not a FHIRPath expression: {e.Message}", where);
            }

            var name = Text(parts, "name", where);
            var value = parts["value"].FirstOrDefault();
            var index = Integer(parts, "index", where);
            var source = Integer(parts, "source", where);
            var destination = Integer(parts, "destination", where);
            var missing = type switch
            {
                "add" => name is null ? "name" : value is null ? "value" : null,
                "insert" => index is null ? "index" : value is null ? "value" : null,
                "replace" => value is null ? "value" : null,
                "move" => source is null ? "source" : destination is null ? "destination" : null,
                "delete" => null,
                _ => throw new InvalidInputException(
                    $"{where} has type '{type}'; FHIRPath Patch knows add, insert, delete, replace and move.", where),
            };
            if (missing is not null)
            {
                throw new InvalidInputException($"{where} ('{type}') has no '{missing}'.", where);
            }

            if (value is not null && value.Value is null && value.Resource is null && value.Part.Count == 0)
            {
                throw new InvalidInputException($"{where} has a 'value' part without a value.", where);
            }

            return new Operation(type, path, expression, name, value, index, source, destination, where);
        }

        public void Apply(Resource resource)
        {
            // The tree changes with every operation, so each one selects on a fresh view of it.
            var root = resource.ToPocoNode();
            var targets = Select(root, Expression, Path);
            switch (Type)
            {
                case "add":
                    Add(Single(targets));
                    break;
                case "insert":
                    var (_, list, mapping) = ListAt(root, targets);
                    if (Index < 0 || Index > list.Count)
                    {
                        throw Failed($"index {Index} is outside the list, which has {list.Count} items");
                    }

                    list.Insert(Index!.Value, Build(mapping, Value!, Where));
                    break;
                case "delete":
                    // fhirpatch.html: delete is the one operation for which a path matching nothing is not an error.
                    if (targets.Count > 0)
                    {
                        Delete(Single(targets));
                    }

                    break;
                case "replace":
                    Replace(Single(targets));
                    break;
                default:
                    Move(ListAt(root, targets).List);
                    break;
            }
        }

        private void Add(PocoNode target)
        {
            var mapping = Mapping(target.Poco, Name!);
            var value = Build(mapping, Value!, Where);
            if (mapping.IsCollection)
            {
                ListOf(mapping, target.Poco).Add(value);
                return;
            }

            if (Property(mapping).GetValue(target.Poco) is not null)
            {
                throw Failed($"'{Name}' already has a value; use 'replace' to change it");
            }

            Property(mapping).SetValue(target.Poco, value);
        }

        private void Delete(PocoNode target)
        {
            var (parent, mapping) = ParentOf(target);
            if (target.Index is { } index)
            {
                ListOf(mapping, parent).RemoveAt(index);
            }
            else
            {
                Property(mapping).SetValue(parent, null);
            }
        }

        private void Replace(PocoNode target)
        {
            var (parent, mapping) = ParentOf(target);
            var value = Build(mapping, Value!, Where);
            if (target.Index is { } index)
            {
                ListOf(mapping, parent)[index] = value;
            }
            else
            {
                Property(mapping).SetValue(parent, value);
            }
        }

        private void Move(IList list)
        {
            if (Source < 0 || Source >= list.Count || Destination < 0 || Destination >= list.Count)
            {
                throw Failed($"source {Source} and destination {Destination} must both be positions of the list, which has {list.Count} items");
            }

            var item = list[Source!.Value];
            list.RemoveAt(Source.Value);
            list.Insert(Destination!.Value, item);
        }

        private PocoNode Single(List<PocoNode> targets) => targets.Count switch
        {
            1 => targets[0],
            0 => throw Failed("the path matches nothing" + ChoiceHint(Path)),
            _ => throw Failed($"the path matches {targets.Count} elements; it must match exactly one"),
        };

        private (Base Parent, PropertyMapping Mapping) ParentOf(PocoNode target)
        {
            if (target.Parent is not { } parent || target.Name is not { } name)
            {
                throw Failed("the path selects the resource itself");
            }

            return (parent.Poco, Mapping(parent.Poco, name));
        }

        /// <summary>The list a path names (insert, move): from its items, or from the parent path when it is empty.</summary>
        private (Base Parent, IList List, PropertyMapping Mapping) ListAt(PocoNode root, List<PocoNode> targets)
        {
            if (targets.Count > 0)
            {
                var first = targets[0];
                if (first.Index is null || targets.Any(t => !ReferenceEquals(t.Parent?.Poco, first.Parent?.Poco) || t.Name != first.Name))
                {
                    throw Failed("the path does not select one list");
                }

                var (parent, mapping) = ParentOf(first);
                return (parent, ListOf(mapping, parent), mapping);
            }

            // An empty list selects nothing; find its owner by evaluating the path without its last step.
            var dot = Path.LastIndexOf('.');
            var child = dot < 0 ? "" : Path[(dot + 1)..];
            if (dot < 0 || child.Length == 0 || !child.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                throw Failed("the path matches nothing" + ChoiceHint(Path));
            }

            var owners = Select(root, Compiler.GetCompiledExpression(Path[..dot]), Path[..dot]);
            var owner = Single(owners).Poco;
            var listMapping = Mapping(owner, child);
            if (!listMapping.IsCollection)
            {
                throw Failed($"'{child}' is not a list");
            }

            return (owner, ListOf(listMapping, owner), listMapping);
        }

        /// <summary>
        /// What the path selects, with <c>%resource</c> and <c>%rootResource</c> the resource patched. A path that fails
        /// when run (an unknown variable, <c>single()</c> over several items) is the document's error: 400 naming it.
        /// </summary>
        private List<PocoNode> Select(PocoNode root, CompiledExpression expression, string path)
        {
            try
            {
                return expression.Invoke([root], new FhirEvaluationContext { Resource = root, RootResource = root }).ToList();
            }
            catch (Exception e) when (e is not FhirException)
            {
                throw new InvalidInputException($"{Where} has path '{path}', which cannot be evaluated on the resource: {e.Message}", Where);
            }
        }

        private PropertyMapping Mapping(Base owner, string name) =>
            Element(ClassOf(owner.GetType()), name)
            ?? throw Failed($"{owner.TypeName} has no element '{name}'");

        /// <summary>
        /// An element by name; a choice element also by its JSON name (<c>valueQuantity</c> for <c>value</c>), as
        /// clients often write a part's name.
        /// </summary>
        private static PropertyMapping? Element(ClassMapping type, string name) =>
            type.FindMappedElementByName(name)
            ?? type.PropertyMappings.FirstOrDefault(m => m.Choice == ChoiceType.DatatypeChoice && name.Length > m.Name.Length
                && name.StartsWith(m.Name, StringComparison.Ordinal) && char.IsUpper(name[m.Name.Length])
                && m.FhirType.Any(t => string.Equals(ModelInfo.ModelInspector.FindClassMapping(t)?.Name, name[m.Name.Length..], StringComparison.OrdinalIgnoreCase)));

        /// <summary>A path naming a choice element with its type (<c>Observation.valueQuantity</c>) matches nothing in FHIRPath: say how to name it.</summary>
        private static string ChoiceHint(string path) =>
            System.Text.RegularExpressions.Regex.Match(path, @"\.(value|effective|onset|occurrence|deceased|multipleBirth|abatement|performed|timing|born|answer|serviced|item|product|medication|subject|reported|allowed|used)([A-Z]\w*)") is { Success: true } m
                ? $"; FHIRPath names a choice element without its type: '{m.Groups[1].Value}' or '{m.Groups[1].Value}.ofType({m.Groups[2].Value})', not '{m.Groups[1].Value}{m.Groups[2].Value}'"
                : "";

        private UnprocessableResourceException Failed(string reason) =>
            PatchErrors.Failed($"{Where} ({Type} at '{Path}') cannot be applied: {reason}.", Where);

        /// <summary>
        /// The value of a <c>value</c> part as an instance of the element's type: a value[x] of that type (or, for
        /// primitives, of another primitive type whose value it takes, e.g. valueString for a code), a resource,
        /// or for complex and backbone elements a set of parts, one per child element.
        /// </summary>
        private static Base Build(PropertyMapping mapping, Parameters.ParameterComponent part, string where)
        {
            if (part.Resource is { } resource)
            {
                return mapping.ImplementingType.IsInstanceOfType(resource)
                    ? resource.DeepCopy()
                    : throw Mismatch(mapping, resource.TypeName, where);
            }

            if (part.Value is { } value)
            {
                if (mapping.Choice == ChoiceType.DatatypeChoice)
                {
                    return mapping.FhirType.Any(t => t.IsInstanceOfType(value)) ? value.DeepCopy() : throw Mismatch(mapping, value.TypeName, where);
                }

                if (mapping.ImplementingType.IsInstanceOfType(value))
                {
                    return value.DeepCopy();
                }

                if (value is PrimitiveType primitive && typeof(PrimitiveType).IsAssignableFrom(mapping.ImplementingType))
                {
                    var converted = (PrimitiveType)ClassOf(mapping.ImplementingType).CreateInstance();
                    converted.JsonValue = primitive.JsonValue;
                    converted.ElementId = primitive.ElementId;
                    converted.Extension = primitive.Extension.Select(e => (Extension)e.DeepCopy()).ToList();
                    return converted;
                }

                throw Mismatch(mapping, value.TypeName, where);
            }

            var type = mapping.PropertyTypeMapping;
            if (type is null || mapping.Choice != ChoiceType.None || type.NativeType.IsAbstract || type.IsPrimitive)
            {
                throw new InvalidInputException($"{where}: '{mapping.Name}' takes a value[x], not parts.", where);
            }

            var instance = type.CreateInstance();
            foreach (var child in part.Part)
            {
                var childMapping = Element(type, child.Name ?? "")
                    ?? throw new InvalidInputException($"{where}: {type.Name} has no element '{child.Name}'.", where);
                var childValue = Build(childMapping, child, where);
                if (childMapping.IsCollection)
                {
                    ListOf(childMapping, instance).Add(childValue);
                }
                else
                {
                    Property(childMapping).SetValue(instance, childValue);
                }
            }

            return instance;
        }

        private static UnprocessableResourceException Mismatch(PropertyMapping mapping, string valueType, string where) =>
            PatchErrors.Failed($"{where}: a {valueType} cannot be the value of '{mapping.Name}' " +
                $"({string.Join(" or ", mapping.FhirType.Select(t => ClassOf(t).Name))}).", where);

        private static System.Reflection.PropertyInfo Property(PropertyMapping mapping) =>
            mapping.NativeProperty ?? throw new InvalidOperationException($"'{mapping.Name}' has no POCO property.");

        /// <summary>A list element's list; the POCOs create an empty one on first access.</summary>
        private static IList ListOf(PropertyMapping mapping, Base owner) => (IList)Property(mapping).GetValue(owner)!;

        private static ClassMapping ClassOf(Type type) =>
            ModelInfo.ModelInspector.FindOrImportClassMapping(type) ?? throw new InvalidOperationException($"{type} is not a FHIR model type.");

        private static string? Text(ILookup<string, Parameters.ParameterComponent> parts, string name, string where)
        {
            var part = parts[name].FirstOrDefault();
            return part is null ? null
                : part.Value is PrimitiveType { JsonValue: string text } ? text
                : throw new InvalidInputException($"{where}: '{name}' must be a string or code value.", where);
        }

        private static int? Integer(ILookup<string, Parameters.ParameterComponent> parts, string name, string where)
        {
            var part = parts[name].FirstOrDefault();
            return part is null ? null
                : part.Value is Integer { Value: { } number } ? number
                : part.Value is PrimitiveType { JsonValue: string text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed
                : throw new InvalidInputException($"{where}: '{name}' must be an integer.", where);
        }
    }
}
