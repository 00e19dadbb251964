using System.Globalization;

namespace InteropHub.Fhir.Storage;

// Index rows of the current version of one resource, one record type per index table. Param is the parameter's
// code (or a derived key, see SearchParam.ComponentKey/IdentifierKey/OfTypeKey); Group ties the component rows of
// one composite element together (0 outside composites).

public sealed record StringIndexRow(string Param, string Normalized, string Exact, int Group = 0);

/// <param name="Text">The normalised display or text (for <c>:text</c>), empty when there is none.</param>
public sealed record TokenIndexRow(string Param, string System, string Code, string Text = "", int Group = 0);

/// <param name="Low">UTC ticks, inclusive.</param>
/// <param name="High">UTC ticks, exclusive.</param>
public sealed record DateIndexRow(string Param, long Low, long High, int Group = 0);

/// <param name="Value">The number as <see cref="ToDouble"/> makes it.</param>
public sealed record NumberIndexRow(string Param, double Value, int Group = 0)
{
    /// <summary>
    /// The double nearest a decimal, as the number and quantity index keep values and a search's bounds. Correctly
    /// rounded, so equal decimals give one double whatever their scale and a larger decimal never a smaller double;
    /// the cast is not (0.50e-25m and 5e-26m cast to different doubles).
    /// </summary>
    public static double ToDouble(decimal value) => double.Parse(value.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}

/// <param name="Code">Quantity.code, or the unit when there is no code.</param>
/// <param name="CanonicalCode">The UCUM canonical unit when the unit converts, else <paramref name="Code"/>.</param>
public sealed record QuantityIndexRow(string Param, string System, string Code, double Value, string CanonicalCode, double CanonicalValue, int Group = 0);

public sealed record UriIndexRow(string Param, string Uri, int Group = 0);

/// <param name="TargetType">Type of a local target, empty for an external or canonical reference.</param>
/// <param name="Url">The reference itself when it is not local, else empty.</param>
public sealed record ReferenceIndexRow(string Param, string TargetType, string TargetId, string Url, int Group = 0);

/// <summary>All index rows of one resource version; the store replaces the previous set in the same transaction.</summary>
public sealed class SearchIndexEntries
{
    public static SearchIndexEntries Empty => new();

    public HashSet<StringIndexRow> Strings { get; } = [];

    public HashSet<TokenIndexRow> Tokens { get; } = [];

    public HashSet<DateIndexRow> Dates { get; } = [];

    public HashSet<NumberIndexRow> Numbers { get; } = [];

    public HashSet<QuantityIndexRow> Quantities { get; } = [];

    public HashSet<UriIndexRow> Uris { get; } = [];

    public HashSet<ReferenceIndexRow> References { get; } = [];

    public void Add(SearchIndexEntries other)
    {
        Strings.UnionWith(other.Strings);
        Tokens.UnionWith(other.Tokens);
        Dates.UnionWith(other.Dates);
        Numbers.UnionWith(other.Numbers);
        Quantities.UnionWith(other.Quantities);
        Uris.UnionWith(other.Uris);
        References.UnionWith(other.References);
    }

    public int Count => Strings.Count + Tokens.Count + Dates.Count + Numbers.Count + Quantities.Count + Uris.Count + References.Count;
}
