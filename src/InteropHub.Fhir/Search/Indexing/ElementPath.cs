using System.Collections;
using System.Collections.Concurrent;
using Hl7.Fhir.FhirPath;
using Hl7.Fhir.Model;
using Hl7.FhirPath;
using Hl7.FhirPath.Expressions;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>
/// A search parameter expression compiled once for one resource type. Nearly every R4 expression is a union of
/// plain element paths with <c>as</c>/<c>ofType</c>, <c>where(resolve() is T)</c>, <c>where(x='y')</c> and
/// <c>extension('url')</c>; those run as direct walks over the POCO (no FHIRPath engine, no element model).
/// Anything else falls back to the SDK's compiled FHIRPath, evaluated on the POCO.
/// </summary>
public sealed class ElementPath
{
    private static readonly FhirPathCompiler Compiler = new(SymbolTableInit.AddStandardFP(new SymbolTable()).AddFhirExtensions());
    private static readonly ConcurrentDictionary<string, CompiledExpression> FhirPathCache = new(StringComparer.Ordinal);

    private readonly List<Step[]> _terms;
    private readonly CompiledExpression? _fallback;

    private ElementPath(List<Step[]> terms, CompiledExpression? fallback)
    {
        _terms = terms;
        _fallback = fallback;
    }

    /// <summary>True when the expression runs as a direct POCO walk.</summary>
    public bool IsFastPath => _fallback is null;

    /// <summary>
    /// Compiles <paramref name="expression"/> for resources of <paramref name="resourceType"/> (terms for other types are
    /// dropped), or, with a null type, as a path relative to an element (composite components).
    /// </summary>
    public static ElementPath Compile(string expression, string? resourceType)
    {
        var terms = new List<Step[]>();
        foreach (var term in SplitTopLevel(expression, '|'))
        {
            if (!TryParseTerm(term.Trim(), resourceType, out var steps, out var applies))
            {
                return new ElementPath([], FhirPathCache.GetOrAdd(expression, Compiler.Compile));
            }

            if (applies)
            {
                terms.Add(steps);
            }
        }

        return new ElementPath(terms, null);
    }

    /// <summary>The elements the expression selects in <paramref name="root"/>, in document order per union term.</summary>
    public IReadOnlyList<Base> Select(Base root)
    {
        if (_fallback is not null)
        {
            return SelectFhirPath(root);
        }

        // Collected into one list rather than yielded through nested iterators: an index extraction walks some
        // hundred paths per resource, and an iterator per step was a tenth of what a transaction allocated.
        List<Base>? found = null;
        foreach (var term in _terms)
        {
            Walk(root, term, 0, ref found);
        }

        return found ?? (IReadOnlyList<Base>)[];
    }

    private List<Base> SelectFhirPath(Base root)
    {
        var found = new List<Base>();
        foreach (var node in _fallback!([root.ToPocoNode()], new FhirEvaluationContext()))
        {
            switch (node.Poco)
            {
                case PrimitiveType or DataType or Resource:
                    found.Add(node.Poco);
                    break;
                default:
                    switch (node.GetValue())
                    {
                        case bool b:
                            found.Add(new FhirBoolean(b));
                            break;
                        case string s:
                            found.Add(new FhirString(s));
                            break;
                    }

                    break;
            }
        }

        return found;
    }

    private static void Walk(Base node, Step[] steps, int index, ref List<Base>? found)
    {
        for (; index < steps.Length; index++)
        {
            var step = steps[index];
            switch (step.Kind)
            {
                case StepKind.Child:
                    if (!node.TryGetValue(step.Name, out var value) || value is null)
                    {
                        return;
                    }

                    if (value is Base single)
                    {
                        node = single;
                        continue;
                    }

                    if (value is IEnumerable many)
                    {
                        foreach (var item in many)
                        {
                            if (item is Base element)
                            {
                                Walk(element, steps, index + 1, ref found);
                            }

                            if (step.FirstOnly)
                            {
                                break;
                            }
                        }
                    }

                    return;
                case StepKind.OfType when !IsOfType(node, step.Name):
                case StepKind.ReferenceTo when !(node is ResourceReference r && ReferenceText.TargetType(r.Reference) == step.Name):
                case StepKind.Equals when !(node.TryGetValue(step.Name, out var field) && field is PrimitiveType p && p.ToString() == step.Value):
                case StepKind.Extension when node is not Extension e || e.Url != step.Value:
                    return;
            }
        }

        (found ??= []).Add(node);
    }

    /// <summary>
    /// Case aside: an expression may name a primitive by its FHIRPath system type (R4's <c>code-value-date</c> says
    /// <c>value.as(DateTime)</c> for a <c>dateTime</c>); no two FHIR types differ only by case.
    /// </summary>
    private static bool IsOfType(Base node, string type) =>
        string.Equals(node.TypeName, type, StringComparison.OrdinalIgnoreCase) || (type == "Quantity" && node is Quantity) || (type == "string" && node is FhirString);

    /// <summary>Parses one union term into steps; false when the term needs the FHIRPath engine.</summary>
    private static bool TryParseTerm(string term, string? resourceType, out Step[] steps, out bool applies)
    {
        steps = [];
        applies = true;
        var text = term;
        var prefix = new List<Step>();
        if (text.StartsWith('('))
        {
            var close = MatchingParen(text, 0);
            if (close < 0 || !TryParseTerm(text[1..close], resourceType, out var inner, out applies))
            {
                return false;
            }

            prefix.AddRange(inner);
            text = text[(close + 1)..];
            if (text.Length == 0)
            {
                steps = [.. prefix];
                return true;
            }

            if (!text.StartsWith('.'))
            {
                return false;
            }

            text = text[1..];
            resourceType = null;
        }

        var asType = text.LastIndexOf(" as ", StringComparison.Ordinal);
        string? castTo = null;
        if (asType > 0)
        {
            castTo = text[(asType + 4)..].Trim();
            text = text[..asType];
            if (!IsIdentifier(castTo))
            {
                return false;
            }
        }

        var parts = SplitTopLevel(text, '.');
        var result = new List<Step>(prefix);
        for (var i = 0; i < parts.Count; i++)
        {
            var part = parts[i];
            if (i == 0 && resourceType is not null && prefix.Count == 0)
            {
                // The first segment names the type the term is for: Patient.name | Practitioner.name.
                if (!IsIdentifier(part))
                {
                    return false;
                }

                applies &= part == resourceType || part is "Resource" or "DomainResource";
                continue;
            }

            if (!TryParseStep(part, result))
            {
                return false;
            }
        }

        if (castTo is not null)
        {
            result.Add(new Step(StepKind.OfType, castTo));
        }

        steps = [.. result];
        return true;
    }

    private static bool TryParseStep(string part, List<Step> into)
    {
        if (IsIdentifier(part))
        {
            into.Add(new Step(StepKind.Child, part));
            return true;
        }

        if (part.EndsWith("[0]", StringComparison.Ordinal) && IsIdentifier(part[..^3]))
        {
            into.Add(new Step(StepKind.Child, part[..^3]) { FirstOnly = true });
            return true;
        }

        if (Call(part, "as") is { } asType && IsIdentifier(asType))
        {
            into.Add(new Step(StepKind.OfType, asType));
            return true;
        }

        if (Call(part, "ofType") is { } ofType && IsIdentifier(ofType))
        {
            into.Add(new Step(StepKind.OfType, ofType));
            return true;
        }

        if (Call(part, "extension") is { } url && Quoted(url) is { } extensionUrl)
        {
            // extension('u') is the extension list filtered on url: a child step, then the filter.
            into.Add(new Step(StepKind.Child, "extension"));
            into.Add(new Step(StepKind.Extension, "", extensionUrl));
            return true;
        }

        if (Call(part, "where") is { } condition)
        {
            const string resolve = "resolve() is ";
            if (condition.StartsWith(resolve, StringComparison.Ordinal) && IsIdentifier(condition[resolve.Length..]))
            {
                into.Add(new Step(StepKind.ReferenceTo, condition[resolve.Length..]));
                return true;
            }

            var eq = condition.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && IsIdentifier(condition[..eq]) && Quoted(condition[(eq + 1)..]) is { } expected)
            {
                into.Add(new Step(StepKind.Equals, condition[..eq], expected));
                return true;
            }
        }

        return false;
    }

    private static string? Call(string part, string function) =>
        part.StartsWith(function + "(", StringComparison.Ordinal) && part.EndsWith(')') ? part[(function.Length + 1)..^1].Trim() : null;

    private static string? Quoted(string text)
    {
        text = text.Trim();
        return text.Length >= 2 && text[0] == '\'' && text[^1] == '\'' && text.IndexOf('\'', 1) == text.Length - 1 ? text[1..^1] : null;
    }

    private static bool IsIdentifier(string text) => text.Length > 0 && char.IsLetter(text[0]) && text.All(char.IsLetterOrDigit);

    private static int MatchingParen(string text, int open)
    {
        var depth = 0;
        var quoted = false;
        for (var i = open; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\'')
            {
                quoted = !quoted;
            }
            else if (!quoted && c == '(')
            {
                depth++;
            }
            else if (!quoted && c == ')' && --depth == 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static List<string> SplitTopLevel(string text, char separator)
    {
        var parts = new List<string>();
        var depth = 0;
        var quoted = false;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\'')
            {
                quoted = !quoted;
            }
            else if (!quoted && c == '(')
            {
                depth++;
            }
            else if (!quoted && c == ')')
            {
                depth--;
            }
            else if (!quoted && depth == 0 && c == separator)
            {
                parts.Add(text[start..i]);
                start = i + 1;
            }
        }

        parts.Add(text[start..]);
        return parts;
    }

    private enum StepKind
    {
        Child,
        OfType,
        ReferenceTo,
        Equals,
        Extension,
    }

    private readonly record struct Step(StepKind Kind, string Name, string? Value = null)
    {
        public bool FirstOnly { get; init; }
    }
}
