namespace InteropHub.Adapters.His.Parsing;

/// <summary>
/// The bytes are not an HL7 v2 message this parser can read. <see cref="Location"/> names the segment (and
/// field, when known) for the ERR segment of the AR answer; <see cref="SegmentIndex"/> is the 1-based position
/// of the offending segment in the message (0 when the header itself cannot be found).
/// </summary>
public sealed class Hl7ParseException : Exception
{
    public Hl7ParseException(string message, Hl7Location location, int segmentIndex)
        : base(message)
    {
        Location = location;
        SegmentIndex = segmentIndex;
    }

    public Hl7ParseException()
        : this("The message cannot be parsed.", new Hl7Location("MSH"), 0)
    {
    }

    public Hl7ParseException(string message)
        : this(message, new Hl7Location("MSH"), 0)
    {
    }

    public Hl7ParseException(string message, Exception innerException)
        : base(message, innerException)
    {
        Location = new Hl7Location("MSH");
    }

    public Hl7Location Location { get; }

    public int SegmentIndex { get; }
}
