namespace InteropHub.Adapters.His.Parsing;

/// <summary>A parsed HL7 v2 message: its segments in order and the syntax (delimiters, character set) it declared.</summary>
public sealed class Hl7Message
{
    internal Hl7Message(IReadOnlyList<Hl7Segment> segments, Hl7Syntax syntax)
    {
        Segments = segments;
        Syntax = syntax;
        Header = segments[0];
    }

    public IReadOnlyList<Hl7Segment> Segments { get; }

    public Hl7Syntax Syntax { get; }

    /// <summary>The MSH segment.</summary>
    public Hl7Segment Header { get; }

    /// <summary>MSH-3.1, e.g. <c>QXHIS</c>.</summary>
    public string SendingApplication => Header[3].Value;

    /// <summary>MSH-4.1: the institution code of the sender.</summary>
    public string SendingFacility => Header[4].Value;

    /// <summary>MSH-7 as sent.</summary>
    public string DateTimeOfMessage => Header[7].Value;

    /// <summary>MSH-9.1, e.g. <c>ADT</c>.</summary>
    public string MessageCode => Header[9][1];

    /// <summary>MSH-9.2, e.g. <c>A01</c>.</summary>
    public string TriggerEvent => Header[9][2];

    /// <summary>MSH-9.3, e.g. <c>ADT_A01</c>; often missing (his-hl7v2.md §9).</summary>
    public string MessageStructure => Header[9][3];

    /// <summary>MSH-10.</summary>
    public string ControlId => Header[10].Value;

    /// <summary>MSH-11.1, e.g. <c>P</c>.</summary>
    public string ProcessingId => Header[11].Value;

    /// <summary>MSH-12.1, e.g. <c>2.5</c>; empty when not sent.</summary>
    public string Version => Header[12].Value;

    public Hl7Segment? First(string segmentId) => Segments.FirstOrDefault(s => s.Id == segmentId);

    public IEnumerable<Hl7Segment> All(string segmentId) => Segments.Where(s => s.Id == segmentId);
}
