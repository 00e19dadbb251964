using System.Collections.Concurrent;
using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Search.Indexing;

/// <summary>
/// Extracts the index rows of a resource at write time, for every search parameter of its type. Each parameter's
/// expression is compiled once per resource type (<see cref="ElementPath"/>) and the values it selects are turned
/// into typed rows as search.html describes for each parameter type.
/// </summary>
public sealed class SearchIndexer(SearchParameterRegistry registry, HubOptions options)
{
    public static readonly SearchIndexer Default = new(SearchParameterRegistry.Default, new HubOptions());

    /// <summary>
    /// Names the extraction's last change to the rows of stored resources: a database whose resources were indexed before
    /// it is re-indexed once at start-up (<see cref="Custom.SearchParameterCatalog.ReconcileAsync"/>, the job's reason).
    /// </summary>
    public const string Revision = "index-revision 2026-11-28: numbers as the doubles nearest their decimals, UCUM quantities converted in decimals";

    private readonly ConcurrentDictionary<string, (int Version, CompiledParam[] Params)> _plans = new(StringComparer.Ordinal);
    private readonly string? _localBase = options.PublicBaseUrl?.TrimEnd('/');

    public SearchParameterRegistry Registry => registry;

    public SearchIndexEntries Extract(Resource resource)
    {
        var entries = new SearchIndexEntries();
        foreach (var param in Plan(resource.TypeName))
        {
            if (param.Components is { } components)
            {
                var group = 0;
                foreach (var element in param.Path.Select(resource))
                {
                    group++;
                    // A composite value exists only when every component has one: an Observation with a quantity
                    // value writes no rows for code-value-concept, code-value-date or code-value-string.
                    var rows = new SearchIndexEntries();
                    var complete = true;
                    for (var i = 0; i < components.Length && complete; i++)
                    {
                        var (component, path) = components[i];
                        var key = SearchParam.ComponentKey(param.Param.Name, i);
                        var before = rows.Count;
                        foreach (var value in path.Select(element))
                        {
                            Add(rows, component, key, value, group);
                        }

                        complete = rows.Count > before;
                    }

                    if (complete)
                    {
                        entries.Add(rows);
                    }
                }

                continue;
            }

            foreach (var value in param.Path.Select(resource))
            {
                Add(entries, param.Param, param.Param.Name, value, 0);
            }
        }

        return entries;
    }

    private CompiledParam[] Plan(string resourceType)
    {
        var version = registry.Version;
        if (_plans.TryGetValue(resourceType, out var plan) && plan.Version == version)
        {
            return plan.Params;
        }

        var compiled = registry.For(resourceType).Values
            // _id and _lastUpdated are searched on the resource row itself (its id, its version key), never through
            // index rows; a union of other parameters (combo-code) through theirs, and a string parameter whose parts
            // have parameters of their own (address, name) through its own rows without those parts and theirs.
            .Where(p => p.Name is not ("_id" or "_lastUpdated") && (p.UnionOf is null || p.PartsIndexedApart is not null)
                && (p.Type != SearchParamType.Composite || p.Components.Count > 0))
            .Select(p => new CompiledParam(
                p,
                ElementPath.Compile(p.Expression, resourceType),
                p.Type == SearchParamType.Composite ? p.Components.Select(c => (c.Param, ElementPath.Compile(c.Expression, null))).ToArray() : null))
            .ToArray();
        _plans[resourceType] = (version, compiled);
        return compiled;
    }

    private void Add(SearchIndexEntries entries, SearchParam param, string key, Base value, int group)
    {
        switch (param.Type)
        {
            case SearchParamType.String:
                AddStrings(entries, key, value, group, param.PartsIndexedApart);
                break;
            case SearchParamType.Token:
                AddTokens(entries, key, value, group);
                break;
            case SearchParamType.Date:
                if (Dates(value) is { } range)
                {
                    entries.Dates.Add(new DateIndexRow(key, range.Low, range.High, group));
                }

                break;
            case SearchParamType.Number:
                if (Number(value) is { } number)
                {
                    entries.Numbers.Add(new NumberIndexRow(key, number, group));
                }

                break;
            case SearchParamType.Quantity:
                AddQuantity(entries, key, value, group);
                break;
            case SearchParamType.Uri:
                if (value is PrimitiveType { JsonValue: string uri } && uri.Length > 0)
                {
                    entries.Uris.Add(new UriIndexRow(key, uri, group));
                }

                break;
            case SearchParamType.Reference:
                AddReference(entries, key, value, group, param.SubsetOf is not null);
                break;
        }
    }

    /// <param name="apart">Parts of a name or an address that other parameters index (<see cref="SearchParam.PartsIndexedApart"/>).</param>
    private static void AddStrings(SearchIndexEntries entries, string key, Base value, int group, IReadOnlySet<string>? apart)
    {
        switch (value)
        {
            case HumanName name:
                AddPart(name.Text, "text");
                AddPart(name.Family, "family");
                foreach (var given in name.Given)
                {
                    AddPart(given, "given");
                }

                foreach (var prefix in name.Prefix)
                {
                    AddPart(prefix, "prefix");
                }

                foreach (var suffix in name.Suffix)
                {
                    AddPart(suffix, "suffix");
                }

                // Chinese names are written family then given without a space (张三): index the whole name too, so
                // name=张三 matches a name recorded as family 张, given 三.
                var whole = (name.Family ?? "") + string.Concat(name.Given);
                if (TextNormalizer.HasIdeographs(whole))
                {
                    AddString(entries, key, whole, group);
                }

                break;
            case Address address:
                AddPart(address.Text, "text");
                foreach (var line in address.Line)
                {
                    AddPart(line, "line");
                }

                AddPart(address.City, "city");
                AddPart(address.District, "district");
                AddPart(address.State, "state");
                AddPart(address.PostalCode, "postalCode");
                AddPart(address.Country, "country");
                break;
            case PrimitiveType { JsonValue: { } primitive }:
                AddString(entries, key, Convert.ToString(primitive, CultureInfo.InvariantCulture), group);
                break;
        }

        void AddPart(string? text, string part)
        {
            if (apart is null || !apart.Contains(part))
            {
                AddString(entries, key, text, group);
            }
        }
    }

    private static void AddString(SearchIndexEntries entries, string key, string? text, int group)
    {
        if (!string.IsNullOrWhiteSpace(text))
        {
            entries.Strings.Add(new StringIndexRow(key, TextNormalizer.Normalize(text), text, group));
        }
    }

    private static void AddTokens(SearchIndexEntries entries, string key, Base value, int group)
    {
        switch (value)
        {
            case Coding coding:
                AddCoding(entries, key, coding, group);
                break;
            case CodeableConcept concept:
                foreach (var coding in concept.Coding)
                {
                    AddCoding(entries, key, coding, group);
                }

                if (!string.IsNullOrWhiteSpace(concept.Text))
                {
                    entries.Tokens.Add(new TokenIndexRow(key, "", "", TextNormalizer.Normalize(concept.Text), group));
                }

                break;
            case Identifier identifier when !string.IsNullOrEmpty(identifier.Value):
                entries.Tokens.Add(new TokenIndexRow(key, identifier.System ?? "", identifier.Value,
                    identifier.Type?.Text is { Length: > 0 } typeText ? TextNormalizer.Normalize(typeText) : "", group));
                foreach (var type in identifier.Type?.Coding ?? [])
                {
                    // identifier:of-type=system|code|value (search.html#token)
                    entries.Tokens.Add(new TokenIndexRow(SearchParam.OfTypeKey(key), type.System ?? "", $"{type.Code}|{identifier.Value}", "", group));
                }

                break;
            case ContactPoint contact when !string.IsNullOrEmpty(contact.Value):
                entries.Tokens.Add(new TokenIndexRow(key, contact.SystemElement?.JsonValue as string ?? "", contact.Value, "", group));
                break;
            case PrimitiveType { JsonValue: bool flag }:
                // FHIR booleans are the tokens true and false (FHIRPath results included), never .NET's "True".
                entries.Tokens.Add(new TokenIndexRow(key, "", flag ? "true" : "false", "", group));
                break;
            case PrimitiveType { JsonValue: { } primitive } element:
                var code = Convert.ToString(primitive, CultureInfo.InvariantCulture);
                if (!string.IsNullOrEmpty(code))
                {
                    entries.Tokens.Add(new TokenIndexRow(key, BoundSystem(element, code), code, "", group));
                }

                break;
        }
    }

    /// <summary>The code systems of the codes of each required binding, by the SDK's type for the bound element.</summary>
    private static readonly ConcurrentDictionary<Type, IReadOnlyDictionary<string, string>?> BoundSystems = new();

    /// <summary>
    /// The system of a <c>code</c> whose element is bound to a required value set (<c>Patient.gender</c>,
    /// <c>Observation.status</c>…): search.html#token, "the system is implicit, the one of the value set's codes", so
    /// <c>gender=http://hl7.org/fhir/administrative-gender|male</c> finds it (and <c>gender=|male</c>, no system, does not).
    /// Other primitives (an unbound code, a string, a uri) have none.
    /// </summary>
    private static string BoundSystem(PrimitiveType element, string code)
    {
        var type = element.GetType();
        if (!type.IsGenericType)
        {
            return "";
        }

        var systems = BoundSystems.GetOrAdd(type, static t => t.GetGenericTypeDefinition() != typeof(Code<>) ? null
            : Enum.GetValues(t.GetGenericArguments()[0]).Cast<Enum>()
                .Select(v => (Code: Hl7.Fhir.Utility.EnumUtility.GetLiteral(v), System: Hl7.Fhir.Utility.EnumUtility.GetSystem(v)))
                .Where(v => v.Code is not null && v.System is not null)
                .DistinctBy(v => v.Code)
                .ToDictionary(v => v.Code!, v => v.System!, StringComparer.Ordinal));
        return systems?.GetValueOrDefault(code) ?? "";
    }

    private static void AddCoding(SearchIndexEntries entries, string key, Coding coding, int group)
    {
        if (!string.IsNullOrEmpty(coding.Code) || !string.IsNullOrEmpty(coding.Display))
        {
            entries.Tokens.Add(new TokenIndexRow(key, coding.System ?? "", coding.Code ?? "",
                string.IsNullOrWhiteSpace(coding.Display) ? "" : TextNormalizer.Normalize(coding.Display), group));
        }
    }

    private static DateRange? Dates(Base value)
    {
        switch (value)
        {
            case Date or FhirDateTime or Instant or FhirString when value is PrimitiveType { JsonValue: { } raw }:
                var text = raw is DateTimeOffset instant ? instant.ToString("o", CultureInfo.InvariantCulture) : Convert.ToString(raw, CultureInfo.InvariantCulture);
                return DateRange.TryParse(text, out var range) ? range : null;
            case Period period:
                var start = DateRange.TryParse(period.Start, out var s) ? s.Low : DateRange.Min;
                var end = DateRange.TryParse(period.End, out var e) ? e.High : DateRange.Max;
                // A period ending before it starts breaks per-1; it is kept as its start, so every index row has low < high
                // (the search SQL relies on it to bound its range scans).
                return period.Start is null && period.End is null ? null : new DateRange(start, end > start ? end : s.High);
            case Timing timing:
                var events = timing.EventElement.Select(x => DateRange.TryParse(x.Value, out var r) ? r : (DateRange?)null).OfType<DateRange>().ToList();
                if (timing.Repeat?.Bounds is Period bounds && Dates(bounds) is { } b)
                {
                    events.Add(b);
                }

                return events.Count == 0 ? null : new DateRange(events.Min(x => x.Low), events.Max(x => x.High));
            default:
                return null;
        }
    }

    private static double? Number(Base value) => value switch
    {
        FhirDecimal { Value: { } d } => NumberIndexRow.ToDouble(d),
        Integer { Value: { } i } => i,
        PositiveInt { Value: { } p } => p,
        UnsignedInt { Value: { } u } => u,
        Integer64 { Value: { } l } => l,
        _ => null,
    };

    private static void AddQuantity(SearchIndexEntries entries, string key, Base value, int group)
    {
        switch (value)
        {
            case Quantity { Value: { } amount } quantity:
                var code = quantity.Code ?? quantity.Unit ?? "";
                var system = quantity.System ?? "";
                var number = NumberIndexRow.ToDouble(amount);
                var canonicalCode = code;
                var canonicalValue = number;
                if (system == UcumUnits.System && UcumUnits.TryCanonical(code, amount, out var unit, out var converted))
                {
                    canonicalCode = unit;
                    canonicalValue = converted;
                }

                entries.Quantities.Add(new QuantityIndexRow(key, system, code, number, canonicalCode, canonicalValue, group));
                if (quantity.Unit is { Length: > 0 } stated && stated != code)
                {
                    // search.html#quantity: value||mg matches where "either the code or the stated human unit are mg"
                    // (mmHg as well as mm[Hg]); the stated unit belongs to no system. Its canonical columns are the
                    // code's, so a sort (by canonical value) sees one value for the quantity.
                    entries.Quantities.Add(new QuantityIndexRow(key, "", stated, number, canonicalCode, canonicalValue, group));
                }

                break;
            case Money { Value: { } amount } money:
                var currency = money.CurrencyElement?.JsonValue as string ?? "";
                entries.Quantities.Add(new QuantityIndexRow(key, "urn:iso:std:iso:4217", currency, NumberIndexRow.ToDouble(amount), currency, NumberIndexRow.ToDouble(amount), group));
                break;
            case Hl7.Fhir.Model.Range range:
                if (range.Low is { } low)
                {
                    AddQuantity(entries, key, low, group);
                }

                if (range.High is { } high)
                {
                    AddQuantity(entries, key, high, group);
                }

                break;
        }
    }

    /// <param name="narrowing">A parameter that narrows another to one type (<see cref="SearchParam.SubsetOf"/>): a
    /// reference to a resource stored here is that one's row already.</param>
    private void AddReference(SearchIndexEntries entries, string key, Base value, int group, bool narrowing = false)
    {
        switch (value)
        {
            case ResourceReference reference:
                if (ReferenceText.Parse(reference.Reference, _localBase) is { } target && !(narrowing && target.Id.Length > 0))
                {
                    entries.References.Add(new ReferenceIndexRow(key, target.Type, target.Id, target.Url, group));
                }

                if (reference.Identifier is { Value.Length: > 0 } identifier)
                {
                    entries.Tokens.Add(new TokenIndexRow(SearchParam.IdentifierKey(key), identifier.System ?? "", identifier.Value, "", group));
                }

                break;
            case PrimitiveType { JsonValue: string url } when url.Length > 0:
                // canonical and uri references: found by their URL whatever the version, and a versioned one by
                // url|version too (references.html#canonical: a search naming a version finds that version).
                var bar = url.IndexOf('|', StringComparison.Ordinal);
                entries.References.Add(new ReferenceIndexRow(key, "", "", bar > 0 ? url[..bar] : url, group));
                if (bar > 0 && bar < url.Length - 1)
                {
                    entries.References.Add(new ReferenceIndexRow(key, "", "", url, group));
                }

                break;
        }
    }

    private sealed record CompiledParam(SearchParam Param, ElementPath Path, (SearchParam Param, ElementPath Path)[]? Components);
}
