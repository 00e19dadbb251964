namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// One field repetition, component or subcomponent, still in its escaped wire form until read through
/// <see cref="Value"/> or <see cref="Text"/>. Reading past the last component gives an empty value: HL7 senders
/// leave out trailing empty components (his-hl7v2.md §9).
/// </summary>
public readonly struct Hl7Value : IEquatable<Hl7Value>
{
    private readonly string? _raw;
    private readonly Hl7Syntax? _syntax;
    private readonly int _level;

    internal Hl7Value(string raw, Hl7Syntax syntax, int level)
    {
        _raw = raw;
        _syntax = syntax;
        _level = level;
    }

    /// <summary>The escaped text as sent.</summary>
    public string Raw => _raw ?? "";

    public bool IsEmpty => Raw.Length == 0;

    /// <summary><c>""</c>: the sender asks to delete the stored value (his-hl7v2.md §2, A08/A31 only).</summary>
    public bool IsDelete => Raw == "\"\"";

    /// <summary>The first leaf (first component, first subcomponent), unescaped and trimmed.</summary>
    public string Value => Component(1).Subcomponent(1).Text.Trim();

    /// <summary>
    /// The whole value unescaped, structure characters included (for TX/FT text and for messages to people). The
    /// delete marker <c>""</c> reads as empty; the Patient mapping names the fields deleted so (PatientMapping.MarkCleared).
    /// </summary>
    public string Text => _syntax is null || IsEmpty ? Raw : IsDelete ? "" : _syntax.Unescape(Raw);

    /// <summary>Component <paramref name="n"/> (1-based) of a field repetition.</summary>
    public Hl7Value Component(int n) => _level >= 1 ? (n == 1 ? this : default) : Part(_syntax?.Component, n, 1);

    /// <summary>Subcomponent <paramref name="n"/> (1-based) of a component.</summary>
    public Hl7Value Subcomponent(int n) => _level >= 2 ? (n == 1 ? this : default) : Part(_syntax?.Subcomponent, n, 2);

    /// <summary>Shorthand for the trimmed, unescaped text of component <paramref name="n"/> (its first subcomponent).</summary>
    public string this[int n] => Component(n).Value;

    public bool Equals(Hl7Value other) => Raw == other.Raw && _level == other._level;

    public override bool Equals(object? obj) => obj is Hl7Value other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Raw, _level);

    public override string ToString() => Text;

    public static bool operator ==(Hl7Value left, Hl7Value right) => left.Equals(right);

    public static bool operator !=(Hl7Value left, Hl7Value right) => !left.Equals(right);

    private Hl7Value Part(char? separator, int n, int level)
    {
        if (_syntax is null || separator is not { } sep || n < 1)
        {
            return default;
        }

        var raw = Raw;
        var start = 0;
        for (var i = 1; i < n; i++)
        {
            var next = raw.IndexOf(sep, start);
            if (next < 0)
            {
                return new Hl7Value("", _syntax, level);
            }

            start = next + 1;
        }

        var end = raw.IndexOf(sep, start);
        return new Hl7Value(end < 0 ? raw[start..] : raw[start..end], _syntax, level);
    }
}
