using System.Text;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.Tests;

public sealed class Hl7ParserTests
{
    private static Hl7Message Parse(string text) => Hl7Parser.Parse(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Fields_components_subcomponents_and_repetitions_are_addressed_by_their_standard_numbers()
    {
        var message = Parse("MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250507091530||ADT^A01^ADT_A01|M1|P|2.5\r"
            + "PID|1||0000482913^^^QX2100012^MR~369902195804121372^^^&2.16.156.10011.1.3&ISO^NNCHN||李德福\r");

        Assert.Equal("|", message.Header[1].Raw);
        Assert.Equal("^~\\&", message.Header[2].Raw);
        Assert.Equal("QX2100012", message.SendingFacility);
        Assert.Equal(("ADT", "A01", "ADT_A01"), (message.MessageCode, message.TriggerEvent, message.MessageStructure));
        var pid = message.First("PID")!;
        var ids = pid.Repetitions(3);
        Assert.Equal(2, ids.Count);
        Assert.Equal("369902195804121372", ids[1].Value);
        Assert.Equal("2.16.156.10011.1.3", ids[1].Component(4).Subcomponent(2).Value);
        Assert.Equal("NNCHN", ids[1][5]);
        Assert.Equal("李德福", pid[5].Value);
        Assert.Equal("", pid[30].Value);
        Assert.Equal("", ids[0][9]);
    }

    [Theory]
    [InlineData("\r")]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r\n\r\n")]
    public void Segments_end_at_cr_lf_or_crlf_and_empty_lines_are_ignored(string terminator)
    {
        var message = Parse(string.Join(terminator, "MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5", "EVN|A04", "PID|1", "PV1|1|O") + terminator);

        Assert.Equal(["MSH", "EVN", "PID", "PV1"], message.Segments.Select(s => s.Id));
        Assert.Equal(4, message.Segments[3].Index);
    }

    [Fact]
    public void Escape_sequences_are_resolved_in_values()
    {
        var message = Parse("MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\rNTE|1|L|血压180\\S\\110 \\F\\ \\T\\ \\R\\ \\E\\ end\\.br\\next \\X41\\\\H\\x\\N\\ \\Zabc\\|RE\r");

        Assert.Equal("血压180^110 | & ~ \\ end\nnext Ax ", message.First("NTE")![3].Text);
    }

    [Fact]
    public void Hex_escapes_are_decoded_in_the_message_character_set()
    {
        // D6DC is 周 in GB 18030.
        var bytes = Encoding.ASCII.GetBytes("MSH|^~\\&|A|B|C|D|20250101||ADT^A28|1|P|2.5|||||CHN|GB18030\rNK1|1|\\XD6DC\\\r");

        Assert.Equal("周", Hl7Parser.Parse(bytes).First("NK1")![2].Value);
    }

    [Fact]
    public void Custom_delimiters_declared_in_msh_are_used()
    {
        var message = Parse("MSH*:!$%*A*B*C*D*20250101**ADT:A04*1*P*2.5\rPID*1**123:::QX2100012:MR!456%X:::&ignored\r");

        var ids = message.First("PID")!.Repetitions(3);
        Assert.Equal("QX2100012", ids[0][4]);
        Assert.Equal("X", ids[1].Component(1).Subcomponent(2).Value);
        Assert.Equal("A04", message.TriggerEvent);
    }

    [Fact]
    public void Gb18030_is_decoded_before_splitting_so_delimiter_bytes_inside_characters_survive()
    {
        var message = Hl7Parser.Parse(SampleFiles.His("27_"));

        Assert.Equal("GB 18030-2000", message.Syntax.Charset);
        Assert.Equal("孙桂芳", message.First("PID")![5].Value);
        var kin = message.All("NK1").ToList();
        Assert.Equal("周珅", kin[0][2].Value); // 珅 = AB 7C: its trail byte is '|'
        Assert.Equal("周㛃", kin[1][2].Value); // 㛃 is a four-byte GB 18030 sequence
        Assert.Equal(2, message.All("ZPI").Last().Sequence);
    }

    [Fact]
    public void A_utf8_byte_order_mark_is_skipped()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\r")).ToArray();

        Assert.Equal("A", Hl7Parser.Parse(bytes).SendingApplication);
    }

    [Fact]
    public void Without_msh18_utf8_is_assumed_when_valid_and_gb18030_otherwise()
    {
        var gb = Hl7Parser.Gb18030;
        var utf8 = Hl7Parser.Parse(Encoding.UTF8.GetBytes("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rPID|1||||王秀英\r"));
        var gbBytes = Encoding.ASCII.GetBytes("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rPID|1||||").Concat(gb.GetBytes("王秀英\r")).ToArray();

        Assert.Equal("王秀英", utf8.First("PID")![5].Value);
        Assert.Equal("王秀英", Hl7Parser.Parse(gbBytes).First("PID")![5].Value);
        Assert.Equal("GB 18030-2000", Hl7Parser.Parse(gbBytes).Syntax.Charset);
    }

    [Fact]
    public void Bytes_invalid_in_the_declared_character_set_name_the_segment()
    {
        var bytes = Encoding.ASCII.GetBytes("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5|||||CHN|UNICODE UTF-8\rEVN|A04\rPID|1||||")
            .Concat(new byte[] { 0xCD, 0xF5, 0x0D }).ToArray();

        var error = Assert.Throws<Hl7ParseException>(() => Hl7Parser.Parse(bytes));

        Assert.Equal(3, error.SegmentIndex);
        Assert.Equal("PID", error.Location.SegmentId);
        Assert.Contains("utf-8", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "MSH^1", 0)]
    [InlineData("EVN|A04\rMSH|^~\\&|A", "MSH^1", 0)]
    [InlineData("MSH|^~|A|B|C|D|20250101||ADT^A04|1|P|2.5\r", "MSH^1^2", 1)]
    [InlineData("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5|||||CHN|EBCDIC\r", "MSH^1^18", 1)]
    [InlineData("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rEVN|A04\rpid|1\r", "MSH^1", 3)]
    [InlineData("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rPIDX|1\r", "PID^1", 2)]
    [InlineData("MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rEVN|A04\rMSH|^~\\&|A|B|C|D|20250101||ADT^A04|2|P|2.5\r", "MSH^2", 3)]
    public void Unparsable_input_is_a_parse_error_naming_segment_and_field(string text, string erl, int segmentIndex)
    {
        var error = Assert.Throws<Hl7ParseException>(() => Parse(text));

        Assert.Equal(erl, error.Location.ToErl());
        Assert.Equal(segmentIndex, error.SegmentIndex);
    }

    [Fact]
    public void Every_sample_file_parses()
    {
        var files = Directory.GetFiles(SampleFiles.Folder(""), "*.hl7", SearchOption.AllDirectories);

        Assert.True(files.Length >= 43);
        foreach (var file in files)
        {
            var message = Hl7Parser.Parse(File.ReadAllBytes(file));
            Assert.Equal("MSH", message.Segments[0].Id);
            Assert.NotEmpty(message.ControlId);
        }
    }
}
