using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Search.Terminology;

/// <summary>
/// One code of a ValueSet's expansion (valueset.html#expansion, <c>contains</c>): its system, the code system's version
/// when known, the code, its display, whether it is abstract (<c>notSelectable</c>) or inactive, and its designations.
/// </summary>
public sealed record ExpandedConcept(string System, string? Version, string Code, string? Display, bool Abstract, bool Inactive,
    IReadOnlyList<ValueSet.DesignationComponent> Designations)
{
    /// <summary>What membership is of: a (system, code) pair.</summary>
    public (string System, string Code) Key => (System, Code);
}

/// <summary>
/// A code system stored in the hub, read for terminology: every concept (nested ones included) in the order the code
/// system lists them, and its hierarchy, by nesting and by the <c>subsumedBy</c> / <c>parent</c> / <c>child</c>
/// properties (codesystem.html#hierarchy).
/// </summary>
public sealed class CodeSystemConcepts
{
    private readonly Dictionary<string, CodeSystem.ConceptDefinitionComponent> _definitions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _parents = new(StringComparer.Ordinal);
    private readonly List<string> _codes = [];
    private ILookup<string, string>? _children;

    private CodeSystemConcepts(CodeSystem codeSystem) => Resource = codeSystem;

    public CodeSystem Resource { get; }

    /// <summary>The code system's canonical URL (empty for one given without it).</summary>
    public string System => Resource.Url ?? "";

    /// <summary>Every code, in the order the code system lists them (depth first).</summary>
    public IReadOnlyList<string> Codes => _codes;

    /// <param name="name">The parameter an error names.</param>
    public static CodeSystemConcepts Of(CodeSystem codeSystem, string name)
    {
        if (codeSystem.Content == CodeSystemContentMode.NotPresent)
        {
            throw new InvalidInputException($"'{name}': the code system {codeSystem.Url} is stored without its concepts (content not-present).", name);
        }

        var concepts = new CodeSystemConcepts(codeSystem);
        concepts.Walk(codeSystem.Concept, null);
        // A property may name a code the code system does not define: it takes no part in the hierarchy.
        foreach (var code in concepts._parents.Keys.Where(c => !concepts._definitions.ContainsKey(c)).ToList())
        {
            concepts._parents.Remove(code);
        }

        foreach (var set in concepts._parents.Values)
        {
            set.RemoveWhere(p => !concepts._definitions.ContainsKey(p));
        }

        return concepts;
    }

    public bool Contains(string code) => _definitions.ContainsKey(code);

    public CodeSystem.ConceptDefinitionComponent? Definition(string code) => _definitions.GetValueOrDefault(code);

    public IReadOnlyCollection<string> ParentsOf(string code) => _parents.GetValueOrDefault(code) ?? [];

    public IEnumerable<string> ChildrenOf(string code) => Children[code];

    /// <summary>The code and every code below (or above) it.</summary>
    public HashSet<string> Related(string code, bool above)
    {
        var found = new HashSet<string>(StringComparer.Ordinal) { code };
        var next = new Queue<string>([code]);
        while (next.TryDequeue(out var at))
        {
            foreach (var related in above ? ParentsOf(at) : ChildrenOf(at))
            {
                if (found.Add(related))
                {
                    next.Enqueue(related);
                }
            }
        }

        return found;
    }

    /// <summary>The code as an expansion entry, with what the code system says of it.</summary>
    public ExpandedConcept Expanded(string code)
    {
        var concept = _definitions[code];
        return new ExpandedConcept(System, Resource.Version, code, concept.Display, IsAbstract(concept), IsInactive(concept),
            [.. concept.Designation.Select(d => new ValueSet.DesignationComponent { Language = d.Language, Use = d.Use, Value = d.Value })]);
    }

    /// <summary>codesystem-concept-properties: <c>notSelectable</c> true.</summary>
    public static bool IsAbstract(CodeSystem.ConceptDefinitionComponent concept) =>
        concept.Property.Any(p => p is { Code: "notSelectable", Value: FhirBoolean { Value: true } });

    /// <summary>codesystem-concept-properties: <c>inactive</c> true, or a <c>status</c> of retired or inactive.</summary>
    public static bool IsInactive(CodeSystem.ConceptDefinitionComponent concept) =>
        concept.Property.Any(p => p is { Code: "inactive", Value: FhirBoolean { Value: true } }
            or { Code: "status", Value: Code { Value: "retired" or "inactive" } });

    private ILookup<string, string> Children => _children ??= _parents
        .SelectMany(p => p.Value.Select(parent => (Parent: parent, Child: p.Key)))
        .ToLookup(p => p.Parent, p => p.Child, StringComparer.Ordinal);

    private HashSet<string> ParentSet(string code) =>
        _parents.TryGetValue(code, out var set) ? set : _parents[code] = new HashSet<string>(StringComparer.Ordinal);

    private void Walk(IEnumerable<CodeSystem.ConceptDefinitionComponent> concepts, string? parent)
    {
        foreach (var concept in concepts)
        {
            if (concept.Code is not { Length: > 0 } code)
            {
                continue;
            }

            if (_definitions.TryAdd(code, concept))
            {
                _codes.Add(code);
            }

            var own = ParentSet(code);
            if (parent is not null)
            {
                own.Add(parent);
            }

            foreach (var property in concept.Property)
            {
                if (property.Value is Code { Value.Length: > 0 } related)
                {
                    switch (property.Code)
                    {
                        case "subsumedBy" or "parent":
                            own.Add(related.Value);
                            break;
                        case "child":
                            ParentSet(related.Value).Add(code);
                            break;
                    }
                }
            }

            Walk(concept.Concept, code);
        }
    }
}
