using Hl7.Fhir.Model;
using InteropHub.Fhir.Search.Query;

namespace InteropHub.Fhir.Search.Parameters;

/// <summary>
/// One search parameter as the hub indexes and evaluates it (searchparameter.html): its code, type and FHIRPath
/// expression, the resource types a reference may point to, and for a composite the component parameters with
/// their expressions relative to the composite's element.
/// </summary>
public sealed record SearchParam(
    string Name,
    SearchParamType Type,
    string Url,
    string Expression,
    IReadOnlyList<string> Targets,
    IReadOnlyList<CompositeComponent> Components)
{
    /// <summary>
    /// For a parameter whose expression is the union of other parameters' expressions on this resource type
    /// (Observation's <c>combo-code</c> is <c>code</c> plus <c>component-code</c>): those parameters. It has no index
    /// rows of its own; a search by it reads theirs.
    /// </summary>
    public IReadOnlyList<string>? UnionOf { get; init; }

    /// <summary>
    /// For a string parameter on a name or an address whose parts have parameters of their own (Patient's
    /// <c>address</c> and <c>address-city</c>, <c>name</c> and <c>family</c>): those parts, which its own rows leave out.
    /// It is then a union of itself and those parameters (<see cref="UnionOf"/>), so a search reads the part once.
    /// </summary>
    public IReadOnlySet<string>? PartsIndexedApart { get; init; }

    /// <summary>
    /// For a reference parameter that is another one narrowed to one target type (Encounter's <c>patient</c> is
    /// <c>subject.where(resolve() is Patient)</c>): that parameter and the type. A reference to a resource stored here
    /// is then kept once, as a row of the wider parameter with its type; only other references (to another server's
    /// URL) are rows of this parameter. Searches, includes and compartments read both (<see cref="ReferenceSubset.Widen"/>).
    /// </summary>
    public ReferenceSubset? SubsetOf { get; init; }

    /// <summary>The index table the values of this parameter live in (composites store one row per component).</summary>
    public IndexTable Table => TableFor(Type);

    public static IndexTable TableFor(SearchParamType type) => type switch
    {
        SearchParamType.String => IndexTable.Strings,
        SearchParamType.Token => IndexTable.Tokens,
        SearchParamType.Date => IndexTable.Dates,
        SearchParamType.Number => IndexTable.Numbers,
        SearchParamType.Quantity => IndexTable.Quantities,
        SearchParamType.Uri => IndexTable.Uris,
        SearchParamType.Reference => IndexTable.References,
        _ => IndexTable.None,
    };

    /// <summary>The index key of component <paramref name="index"/> of a composite: rows of one element share a group number.</summary>
    public static string ComponentKey(string composite, int index) => $"{composite}${index}";

    /// <summary>The token index key under which a reference parameter keeps <c>Reference.identifier</c> (for <c>:identifier</c>).</summary>
    public static string IdentifierKey(string reference) => reference + ":identifier";

    /// <summary>The token index key under which an identifier parameter keeps type|value pairs (for <c>:of-type</c>).</summary>
    public static string OfTypeKey(string identifier) => identifier + ":of-type";
}

/// <summary>The wider reference parameter and the target type that narrow it (<see cref="SearchParam.SubsetOf"/>).</summary>
public sealed record ReferenceSubset(string Param, string TargetType)
{
    /// <summary>
    /// A criterion on the narrowing parameter that also reads the wider one's rows of the type: its references to
    /// resources stored here are kept there.
    /// </summary>
    public Criterion Widen(Criterion criterion)
    {
        switch (criterion)
        {
            case IndexCriterion { Table: IndexTable.References, Negated: false } index:
                var local = index.AnyOf.OfType<ReferenceCondition>()
                    .Where(c => c.Url is null && (c.TargetType is null || c.TargetType == TargetType))
                    .Select(c => (IndexCondition)(c with { TargetType = TargetType }))
                    .ToList();
                return local.Count == 0 ? criterion : new AnyCriterion([criterion, new IndexCriterion(Param, IndexTable.References, local)]);
            case MissingCriterion { Table: IndexTable.References } missing:
                var wider = new MissingCriterion(Param, IndexTable.References, missing.Missing) { TargetType = TargetType };
                return missing.Missing ? new AllCriterion([criterion, wider]) : new AnyCriterion([criterion, wider]);
            case AllCriterion { All: var parts } when parts.All(p => p is MissingCriterion):
                // :missing=true on the reference and on its identifiers: neither, nor the wider parameter's rows of the type.
                return new AllCriterion([.. parts.SelectMany(p => Widen(p) is AllCriterion widened ? widened.All : [p])]);
            case AnyCriterion { Any: var parts } when parts.All(p => p is MissingCriterion):
                return new AnyCriterion([.. parts.SelectMany(p => Widen(p) is AnyCriterion widened ? widened.Any : [p])]);
            case ChainCriterion chain:
                var targets = chain.Targets.Where(t => t.ResourceType == TargetType).ToList();
                return targets.Count == 0 ? criterion : new AnyCriterion([criterion, new ChainCriterion(Param, targets)]);
            default:
                return criterion;
        }
    }
}

/// <param name="Param">The component's own parameter (its type decides how the component is indexed and parsed).</param>
/// <param name="Expression">FHIRPath relative to the element the composite's expression selects.</param>
public sealed record CompositeComponent(SearchParam Param, string Expression);

/// <summary>The typed index tables (both stores have one table per kind).</summary>
public enum IndexTable
{
    None,
    Strings,
    Tokens,
    Dates,
    Numbers,
    Quantities,
    Uris,
    References,
}
