using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.His.Acks;

public enum AckCode
{
    /// <summary>Stored and applied.</summary>
    AA,

    /// <summary>Parsed and stored as evidence, but its content was rejected.</summary>
    AE,

    /// <summary>Not processable: unreadable, unsupported, or the hub cannot store it now.</summary>
    AR,
}

/// <summary>
/// Builds original-mode acknowledgements (his-hl7v2.md §7): MSH, MSA and one ERR per issue, in the character set
/// of the message answered. The time and the control ID are inputs, so the builder stays pure.
/// </summary>
public static class Hl7Ack
{
    private static readonly Dictionary<int, string> ErrorTexts = new()
    {
        [0] = "Message accepted",
        [100] = "Segment sequence error",
        [101] = "Required field missing",
        [102] = "Data type error",
        [103] = "Table value not found",
        [104] = "Value too long",
        [200] = "Unsupported message type",
        [201] = "Unsupported event code",
        [202] = "Unsupported processing id",
        [203] = "Unsupported version id",
        [204] = "Unknown key identifier",
        [205] = "Duplicate key identifier",
        [206] = "Application record locked",
        [207] = "Application internal error",
    };

    /// <summary>MSH-10 is ST of at most 20 characters in HL7 v2.5.</summary>
    public const int MaxControlIdLength = 20;

    private const string ControlIdAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    /// <summary>
    /// A new MSH-10 for an answer: <c>IHUB</c>, the inbox id of the message answered (when it has a row) and random
    /// characters up to the field's 20, e.g. <c>IHUB451-7KQ2M0ZPX4A3</c>. HL7 v2.5 requires MSH-10 unique per message,
    /// and one inbox row may be answered several times (an AE, then again for a resend), by any hub instance, before
    /// or after a restart: a counter of the process would repeat, random characters do not (at least four of them for
    /// the few answers to one row; fifteen for an answer without a row).
    /// </summary>
    public static string NewControlId(long? inboxId)
    {
        var prefix = inboxId is { } id ? "IHUB" + id.ToString(CultureInfo.InvariantCulture) + "-" : "IHUB-";
        var length = Math.Max(4, MaxControlIdLength - prefix.Length);
        return prefix + RandomNumberGenerator.GetString(ControlIdAlphabet, length);
    }

    /// <summary>The answer as ER7 text with CR segment terminators.</summary>
    /// <param name="answered">The message answered; null when it could not be parsed.</param>
    /// <param name="unreadControlId">MSH-10 of an unparsed message whose first line was readable, for MSA-2.</param>
    public static string Build(Hl7Message? answered, AckCode code, IReadOnlyList<HisIssue> issues, string controlId,
        DateTimeOffset time, AckSender? sender = null, string? unreadControlId = null)
    {
        sender ??= AckSender.Hub;
        var syntax = answered?.Syntax ?? Hl7Syntax.Default;
        var f = syntax.Field;
        var c = syntax.Component;
        string E(string text) => syntax.EscapeText(text);
        string T(string text) => syntax.EscapeText(text, freeText: true);

        var trigger = answered?.TriggerEvent ?? "";
        var type = trigger.Length > 0 ? $"ACK{c}{E(trigger)}{c}ACK" : "ACK";
        var text = new StringBuilder();
        text.Append("MSH").Append(f).Append(syntax.EncodingCharacters)
            .Append(f).Append(E(sender.Application))
            .Append(f).Append(E(sender.Facility))
            .Append(f).Append(answered is null ? "" : E(answered.SendingApplication))
            .Append(f).Append(answered is null ? "" : E(answered.SendingFacility))
            .Append(f).Append(FormatTime(time.ToOffset(Hl7Time.ChinaOffset)))
            .Append(f)
            .Append(f).Append(type)
            .Append(f).Append(E(controlId))
            .Append(f).Append('P')
            .Append(f).Append("2.5")
            .Append(f).Append(f).Append(f).Append(f)
            .Append(f).Append("CHN")
            .Append(f).Append(E(syntax.Charset))
            .Append('\r');

        var errors = issues.Where(i => i.Severity == IssueSeverity.Error).ToList();
        text.Append("MSA").Append(f).Append(code)
            .Append(f).Append(answered is null ? E(unreadControlId ?? "") : E(answered.ControlId));
        if (errors.Count > 0)
        {
            text.Append(f).Append(T(errors[0].Summary));
        }

        text.Append('\r');
        foreach (var issue in errors.Concat(issues.Where(i => i.Severity == IssueSeverity.Warning)))
        {
            var errorCode = issue.Hl7ErrorCode;
            text.Append("ERR").Append(f)
                .Append(f).Append(issue.Location is null ? "" : ToErl(issue.Location, syntax))
                .Append(f).Append(errorCode.ToString(CultureInfo.InvariantCulture)).Append(c)
                .Append(ErrorTexts.GetValueOrDefault(errorCode, "")).Append(c).Append("HL70357")
                .Append(f).Append(issue.Severity == IssueSeverity.Error ? 'E' : 'W')
                .Append(f).Append(issue.Severity == IssueSeverity.Error ? E(issue.Reason.Code()) : "WARNING").Append(c).Append(E(issue.Summary)).Append(c).Append("IHUB")
                .Append(f).Append(f)
                .Append(f).Append(T(issue.Detail))
                .Append('\r');
        }

        return text.ToString();
    }

    /// <summary>The answer encoded in the answered message's character set (UTF-8 when it was unreadable).</summary>
    public static byte[] Encode(string ack, Hl7Message? answered) =>
        (answered?.Syntax.Encoding ?? Hl7Syntax.Default.Encoding).GetBytes(ack);

    /// <summary>HL7 DTM with the offset written out, e.g. <c>20250506091004+0800</c>.</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        var offset = time.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        offset = offset.Duration();
        return time.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture)
            + string.Create(CultureInfo.InvariantCulture, $"{sign}{offset.Hours:00}{offset.Minutes:00}");
    }

    private static string ToErl(Hl7Location location, Hl7Syntax syntax) =>
        syntax.Component == '^' ? location.ToErl() : location.ToErl().Replace('^', syntax.Component);
}

/// <summary>MSH-3 and MSH-4 of the hub's answers.</summary>
public sealed record AckSender(string Application, string Facility)
{
    public static readonly AckSender Hub = new("IHUB", "QX-PLATFORM");
}
