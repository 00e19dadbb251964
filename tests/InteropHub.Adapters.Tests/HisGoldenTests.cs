using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Fhir.Serialization;

namespace InteropHub.Adapters.Tests;

/// <summary>
/// Every HIS sample of the county specification, mapped and compared with its expected outcome
/// (Samples/his/README in the shared spec): accepted ones with the golden Bundle under Golden/his, rejected ones
/// with the acknowledgement the specification prints. Set INTEROPHUB_UPDATE_GOLDEN=1 to rewrite the golden files
/// (then review the diff by hand; see README.md).
/// </summary>
public sealed class HisGoldenTests
{
    private static readonly FhirSerializers Serializers = new();

    public static TheoryData<string> AcceptedSamples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(SampleFiles.Folder("his"), "*.hl7").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileNameWithoutExtension(file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AcceptedSamples))]
    public void Every_valid_sample_maps_to_its_golden_transaction_bundle(string sample)
    {
        var outcome = HisMapper.Map(File.ReadAllBytes(SampleFiles.Folder($"his/{sample}.hl7")));

        var accepted = Assert.IsType<HisAccepted>(outcome);
        Assert.DoesNotContain(accepted.Issues, i => i.Severity == IssueSeverity.Error);
        var json = Encoding.UTF8.GetString(Serializers.ToJsonBytes(accepted.Transaction, pretty: true)) + "\n";
        var golden = Path.Combine(GoldenFolder.Source, "his", sample + ".json");
        if (Environment.GetEnvironmentVariable("INTEROPHUB_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(golden, json);
        }

        Assert.Equal(File.ReadAllText(SampleFiles.Folder($"../Golden/his/{sample}.json")), json);
    }

    [Theory]
    [MemberData(nameof(AcceptedSamples))]
    public void Every_bundle_is_valid_R4_and_its_internal_references_resolve(string sample)
    {
        var accepted = Assert.IsType<HisAccepted>(HisMapper.Map(File.ReadAllBytes(SampleFiles.Folder($"his/{sample}.hl7"))));
        var json = Serializers.ToJsonBytes(accepted.Transaction);

        // The strict parser refuses unknown elements, bad codes and malformed primitives.
        var reparsed = Assert.IsType<Bundle>(Serializers.ParseJson(json));
        var fullUrls = reparsed.Entry.Select(e => e.FullUrl).ToList();
        Assert.Equal(fullUrls.Count, fullUrls.Distinct().Count());
        foreach (var reference in References(System.Text.Json.JsonDocument.Parse(json).RootElement))
        {
            if (reference.StartsWith("urn:uuid:", StringComparison.Ordinal))
            {
                Assert.Contains(reference, fullUrls);
            }
            else
            {
                // Other references are to resources written in this Bundle (Type/id) or conditional ones (Type?criteria).
                Assert.Matches(@"^[A-Z][A-Za-z]+(/[A-Za-z0-9\-.]{1,64}|\?identifier=\S+)$", reference);
            }
        }

        Assert.Same(accepted.Provenance, accepted.Transaction.Entry[^1].Resource);
        Assert.Equal(reparsed.Entry.Count - 1, accepted.Provenance.Target.Count + reparsed.Entry.Count(e => e.Request!.Method == Bundle.HTTPVerb.DELETE));
    }

    private static IEnumerable<string> References(System.Text.Json.JsonElement element) => element.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Object => element.EnumerateObject().SelectMany(p =>
            p.Name == "reference" && p.Value.ValueKind == System.Text.Json.JsonValueKind.String ? [p.Value.GetString()!] : References(p.Value)),
        System.Text.Json.JsonValueKind.Array => element.EnumerateArray().SelectMany(References),
        _ => [],
    };

    [Theory]
    [InlineData("02_", "PV1^2", "PV1 段重复")]
    [InlineData("27_", "PID^1^3^2", "15位身份证号 369902491001086 已升级为 369902194910010866")]
    [InlineData("27_", "ZPI^2", "ZPI 段重复")]
    [InlineData("28_", "MSH^1^12", "MSH-12 版本为空")]
    public void The_documented_warnings_accompany_acceptance(string sample, string erl, string text)
    {
        var outcome = Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(sample)));

        Assert.Contains(outcome.Warnings, w => w.Severity == IssueSeverity.Warning && w.Location?.ToErl() == erl && w.Detail.Contains(text, StringComparison.Ordinal));
    }

    [Fact]
    public void The_bad_check_digit_sample_is_answered_exactly_as_the_specification_prints()
    {
        AssertAnswer("invalid_01_", "acks/ACK_AE_for_invalid_01.hl7", AckCode.AE);
    }

    [Fact]
    public void The_unsupported_message_type_sample_is_answered_exactly_as_the_specification_prints()
    {
        AssertAnswer("invalid_02_", "acks/ACK_AR_for_invalid_02.hl7", AckCode.AR);
    }

    [Fact]
    public void The_accepted_sample_16_is_answered_exactly_as_the_specification_prints()
    {
        AssertAnswer("16_", "acks/ACK_AA_for_16.hl7", AckCode.AA);
    }

    private static void AssertAnswer(string sample, string ackFile, AckCode expected)
    {
        var outcome = HisMapper.Map(SampleFiles.His(sample));
        var printed = Encoding.UTF8.GetString(SampleFiles.Bytes($"his/{ackFile}"));
        var printedMsh = printed.Split('\r')[0].Split('|');

        // The control ID and the time of the answer are the hub's own; take them from the printed answer.
        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, printedMsh[9],
            DateTimeOffset.ParseExact(printedMsh[6], "yyyyMMddHHmmsszzzz", System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(expected, outcome.AckCode);
        Assert.Equal(printed.TrimEnd('\r', '\n'), ack.TrimEnd('\r'));
    }
}
