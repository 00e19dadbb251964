namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// One segment. Fields are numbered as in the standard: for MSH, field 1 is the field separator and field 2 the
/// encoding characters, so <c>msh[9]</c> is MSH-9 in every segment type.
/// </summary>
public sealed class Hl7Segment
{
    private readonly string[] _fields;

    internal Hl7Segment(string id, string line, string[] fields, int index, int sequence, Hl7Syntax syntax)
    {
        Id = id;
        Line = line;
        _fields = fields;
        Index = index;
        Sequence = sequence;
        Syntax = syntax;
    }

    /// <summary>The segment ID, e.g. <c>PID</c>.</summary>
    public string Id { get; }

    /// <summary>The segment as decoded text, without its terminator.</summary>
    public string Line { get; }

    /// <summary>1-based position of the segment in the message.</summary>
    public int Index { get; }

    /// <summary>1-based occurrence of this segment ID in the message (ERL segment sequence).</summary>
    public int Sequence { get; }

    public Hl7Syntax Syntax { get; }

    /// <summary>The highest field number present (trailing empty fields included as sent).</summary>
    public int FieldCount => _fields.Length - 1;

    /// <summary>The first repetition of field <paramref name="n"/>; empty when the field was not sent.</summary>
    public Hl7Value this[int n] => Repetitions(n) is [var first, ..] ? first : new Hl7Value("", Syntax, 0);

    /// <summary>The raw, escaped text of field <paramref name="n"/> with all its repetitions.</summary>
    public string RawField(int n) => n >= 1 && n < _fields.Length ? _fields[n] : "";

    /// <summary>Every repetition of field <paramref name="n"/>, in order; empty repetitions included.</summary>
    public IReadOnlyList<Hl7Value> Repetitions(int n)
    {
        var raw = RawField(n);
        if (raw.Length == 0)
        {
            return [];
        }

        // MSH-1 and MSH-2 hold the delimiters themselves and are never split.
        if (Id == "MSH" && n <= 2)
        {
            return [new Hl7Value(raw, Syntax, 2)];
        }

        var parts = raw.Split(Syntax.Repetition);
        var values = new Hl7Value[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            values[i] = new Hl7Value(parts[i], Syntax, 0);
        }

        return values;
    }

    /// <summary>
    /// Every leaf holding a <c>\Xhh…\</c> escape whose bytes are no text in the message's character set, with its
    /// place (field, repetition, component and, where the component has several, subcomponent) and the sequence as sent.
    /// </summary>
    public IEnumerable<(Hl7Location Location, string Sequence)> UndecodableEscapes()
    {
        if (!Line.Contains(string.Concat(Syntax.Escape, 'X'), StringComparison.Ordinal))
        {
            yield break;
        }

        for (var field = Id == "MSH" ? 3 : 1; field <= FieldCount; field++)
        {
            var repetitions = Repetitions(field);
            for (var r = 0; r < repetitions.Count; r++)
            {
                var components = repetitions[r].Raw.Split(Syntax.Component);
                for (var c = 0; c < components.Length; c++)
                {
                    var subcomponents = components[c].Split(Syntax.Subcomponent);
                    for (var s = 0; s < subcomponents.Length; s++)
                    {
                        if (Syntax.FindUndecodableHex(subcomponents[s]) is { } sequence)
                        {
                            yield return (Location(field, r + 1, c + 1, subcomponents.Length > 1 ? s + 1 : 0), sequence);
                        }
                    }
                }
            }
        }
    }

    public Hl7Location Location(int field = 0, int repetition = 0, int component = 0, int subcomponent = 0) =>
        new(Id, Sequence, field, repetition, component, subcomponent);
}
