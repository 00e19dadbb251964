using System.Text;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.Tests;

public sealed class Hl7AckTests
{
    private static readonly DateTimeOffset Time = new(2025, 5, 20, 9, 44, 11, TimeSpan.FromHours(8));

    [Fact]
    public void The_answer_is_timed_in_China_time_whatever_the_hubs_own_zone()
    {
        var outcome = HisMapper.Map(SampleFiles.His("27_"));

        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, "IHUB-1", Time.ToUniversalTime());

        Assert.Contains("|20250520094411+0800|", ack.Split('\r')[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_gb18030_message_is_answered_in_gb18030_with_its_warnings()
    {
        var outcome = HisMapper.Map(SampleFiles.His("27_"));

        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, "IHUB-1", Time);
        var bytes = Hl7Ack.Encode(ack, outcome.Message);

        var lines = Hl7Parser.Gb18030.GetString(bytes).Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("MSH|^~\\&|IHUB|QX-PLATFORM|QXHIS|QX2110050|20250520094411+0800||ACK^A28^ACK|IHUB-1|P|2.5|||||CHN|GB 18030-2000", lines[0]);
        Assert.Equal("MSA|AA|QX2110050-20250520-000031", lines[1]);
        Assert.Equal(2, lines.Count(l => l.StartsWith("ERR||", StringComparison.Ordinal) && l.Contains("|W|WARNING^警告^IHUB|", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("ERR||PID^1^3^2|0^Message accepted^HL70357|W|", StringComparison.Ordinal));
        Assert.Equal(bytes, Hl7Parser.Gb18030.GetBytes(ack));
        Assert.Equal("AA", Hl7Parser.Parse(bytes).First("MSA")![1].Value);
    }

    [Fact]
    public void An_unreadable_message_is_answered_AR_with_an_empty_MSA_2()
    {
        var outcome = HisMapper.Map("garbage"u8);

        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, "IHUB-2", Time);

        var lines = ack.Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("MSH|^~\\&|IHUB|QX-PLATFORM|||20250520094411+0800||ACK|IHUB-2|P|2.5|||||CHN|UNICODE UTF-8", lines[0]);
        Assert.Equal("MSA|AR||消息无法解析", lines[1]);
        Assert.StartsWith("ERR||MSH^1|100^Segment sequence error^HL70357|E|MALFORMED^消息无法解析^IHUB|||", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public void Delimiters_in_answer_text_are_escaped_so_the_answer_parses()
    {
        var issue = new HisIssue(RejectionReason.UnknownCode, new Hl7Location("OBX", 2, 5), "值 a|b~c\\d 无效");
        var message = Hl7Parser.Parse(Encoding.UTF8.GetBytes("MSH|^~\\&|A|QX2100012|C|D|20250101||ORU^R01|M1|P|2.5\r"));

        var ack = Hl7Ack.Build(message, AckCode.AE, [issue], "IHUB-3", Time);

        var err = Hl7Parser.Parse(Encoding.UTF8.GetBytes(ack)).First("ERR")!;
        Assert.Equal("值 a|b~c\\d 无效", err[8].Text);
        Assert.Equal("OBX^2^5", err[2].Raw);
    }

    [Fact]
    public void Every_answer_gets_its_own_control_id_within_the_field_length_naming_the_inbox_row_when_there_is_one()
    {
        // Answers to one inbox row (an AE, the AE for a resend, …) and answers without a row (an AR) never share MSH-10.
        var forRow = Enumerable.Range(0, 10_000).Select(_ => Hl7Ack.NewControlId(451)).ToList();
        var withoutRow = Enumerable.Range(0, 10_000).Select(_ => Hl7Ack.NewControlId(null)).ToList();

        Assert.Equal(forRow.Count, forRow.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(withoutRow.Count, withoutRow.Distinct(StringComparer.Ordinal).Count());
        Assert.All(forRow, id => Assert.Matches("^IHUB451-[0-9A-Z]{12}$", id));
        Assert.All(withoutRow, id => Assert.Matches("^IHUB-[0-9A-Z]{15}$", id));
        Assert.All([.. forRow, .. withoutRow], id => Assert.True(id.Length <= Hl7Ack.MaxControlIdLength, id));
    }
}
