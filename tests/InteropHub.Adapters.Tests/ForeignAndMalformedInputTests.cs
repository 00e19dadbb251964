using System.Diagnostics;
using System.Text;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.Tests;

/// <summary>
/// Input the county profile does not describe: US hospital messages (Samples/fhir-converter, see README.md) and
/// damaged copies of the county samples. Every one must end in an outcome with a reason, never an exception or a hang.
/// </summary>
public sealed class ForeignAndMalformedInputTests
{
    public static TheoryData<string> ForeignSamples()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(SampleFiles.Folder("fhir-converter"), "*.hl7").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(file));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ForeignSamples))]
    public void US_hospital_messages_parse_and_are_refused_AR_naming_the_unsupported_version_or_processing_id(string file)
    {
        var bytes = SampleFiles.Bytes($"fhir-converter/{file}");

        var message = Hl7Parser.Parse(bytes);
        var outcome = HisMapper.Map(bytes);

        Assert.True(message.Segments.Count >= 4);
        var rejected = Assert.IsType<HisRejected>(outcome);
        Assert.Equal(AckCode.AR, rejected.AckCode);
        Assert.All(rejected.Errors, e => Assert.Equal(RejectionReason.Unsupported, e.Reason));
        Assert.Contains(rejected.Errors, e => e.Hl7ErrorCode is 202 or 203 && e.Location!.SegmentId == "MSH");
        var ack = Hl7Ack.Build(outcome.Message, outcome.AckCode, outcome.Issues, "IHUB-1", DateTimeOffset.UnixEpoch);
        Assert.Contains($"MSA|AR|{message.ControlId}|", ack, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ForeignSamples))]
    public void US_hospital_messages_relabelled_as_county_version_2_5_are_mapped_or_rejected_with_located_reasons(string file)
    {
        // Past the header checks the mappers meet foreign content (other identifier types, US codes, v2.8 fields):
        // the outcome must be an acceptance or a content rejection, never an internal error.
        var text = Encoding.UTF8.GetString(SampleFiles.Bytes($"fhir-converter/{file}")).Replace("\r\n", "\r", StringComparison.Ordinal).Replace('\n', '\r');
        var msh = text[..text.IndexOf('\r', StringComparison.Ordinal)].Split('|');
        msh[10] = "P";
        msh[11] = "2.5";
        var relabelled = string.Join('|', msh) + text[text.IndexOf('\r', StringComparison.Ordinal)..];

        var outcome = HisMapper.Map(Encoding.UTF8.GetBytes(relabelled));

        Assert.DoesNotContain(outcome.Issues, i => i.Hl7ErrorCode == 207);
        if (outcome is HisRejected rejected)
        {
            Assert.Equal(AckCode.AE, rejected.AckCode);
            Assert.All(rejected.Errors, e => Assert.False(string.IsNullOrWhiteSpace(e.Detail)));
        }
    }

    [Fact]
    public void Damaged_copies_of_every_county_sample_never_throw_and_never_take_long()
    {
        var random = new Random(20250506);
        var files = Directory.GetFiles(SampleFiles.Folder("his"), "*.hl7", SearchOption.AllDirectories);
        var watch = Stopwatch.StartNew();
        var outcomes = 0;
        foreach (var file in files)
        {
            var original = File.ReadAllBytes(file);
            for (var i = 0; i < 40; i++)
            {
                var damaged = (byte[])original.Clone();
                switch (i % 4)
                {
                    case 0:
                        damaged = damaged[..random.Next(damaged.Length)];
                        break;
                    case 1:
                        damaged[random.Next(damaged.Length)] = (byte)random.Next(256);
                        break;
                    case 2:
                        damaged[random.Next(damaged.Length)] = "|^~\\&\r"u8[random.Next(6)];
                        break;
                    default:
                        var at = random.Next(damaged.Length);
                        damaged = [.. damaged[..at], .. damaged[Math.Min(damaged.Length, at + random.Next(1, 40))..]];
                        break;
                }

                var outcome = HisMapper.Map(damaged);
                Assert.NotNull(outcome);
                Assert.DoesNotContain(outcome.Issues, issue => issue.Hl7ErrorCode == 207);
                outcomes++;
            }
        }

        Assert.Equal(files.Length * 40, outcomes);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"took {watch.Elapsed}");
    }

    [Fact]
    public void Damaged_township_files_never_throw()
    {
        var random = new Random(20250630);
        var original = Directory.GetFiles(SampleFiles.Folder("township/batch-001")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        for (var i = 0; i < 25; i++)
        {
            var files = original.ToDictionary(kv => kv.Key, kv => (byte[])kv.Value.Clone());
            var name = files.Keys.OrderBy(k => k, StringComparer.Ordinal).ElementAt(random.Next(files.Count));
            var chars = System.Text.Encoding.UTF8.GetString(files[name]).ToCharArray();
            for (var j = 0; j < 1 + random.Next(5); j++)
            {
                const string noise = "0１,\"\r\n|x-/=＝９";
                chars[random.Next(chars.Length)] = noise[random.Next(noise.Length)];
            }

            var bytes = files[name] = System.Text.Encoding.UTF8.GetBytes(chars);

            if (name != "manifest.json")
            {
                // Keep the checksum right so the rows themselves are read.
                var manifest = System.Text.Encoding.UTF8.GetString(files["manifest.json"]);
                var old = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(original[name]));
                files["manifest.json"] = System.Text.Encoding.UTF8.GetBytes(manifest.Replace(old, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), StringComparison.Ordinal));
            }

            var result = Township.TownshipBatchReader.Read(files);
            Assert.NotNull(result);
        }
    }

    [Fact]
    public void Damaged_certificates_never_throw()
    {
        var random = new Random(20250317);
        foreach (var file in Directory.GetFiles(SampleFiles.Folder("birth-certificate"), "*.xml"))
        {
            var original = File.ReadAllText(file);
            for (var i = 0; i < 25; i++)
            {
                var chars = original.ToCharArray();
                for (var j = 0; j < 1 + random.Next(3); j++)
                {
                    var at = random.Next(chars.Length);
                    if (char.IsAsciiDigit(chars[at]) || char.IsAsciiLetter(chars[at]))
                    {
                        const string noise = "0９2X-:T+ ";
                        chars[at] = noise[random.Next(noise.Length)];
                    }
                }

                var result = BirthCertificate.BirthCertificateReader.Read(System.Text.Encoding.UTF8.GetBytes(new string(chars)), DateTimeOffset.UnixEpoch.AddYears(60));
                Assert.NotNull(result);
            }
        }
    }
}
