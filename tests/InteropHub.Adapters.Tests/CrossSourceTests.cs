using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;

namespace InteropHub.Adapters.Tests;

/// <summary>The same person and the same dose, seen by the three legacy systems, must meet in one resource.</summary>
public sealed class CrossSourceTests
{
    private static readonly DateTimeOffset Received = new(2025, 6, 30, 12, 0, 0, TimeSpan.FromHours(8));

    private static HashSet<string> Doses(Bundle bundle) =>
        [.. bundle.Entry.Where(e => e.Resource is Immunization).Select(e => e.Request!.Url!)];

    private static IEnumerable<Bundle> Township() =>
        TownshipBatchReader.Read(Directory.GetFiles(SampleFiles.Folder("township/batch-001")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes))
            .Rows.Where(r => r.Table == "immunizations" && r.Transaction is not null).Select(r => r.Transaction!);

    private static Bundle Certificate(string sample) =>
        Assert.IsType<CertificateAccepted>(Assert.Single(BirthCertificateReader.Read(SampleFiles.Bytes($"birth-certificate/{sample}.xml"), Received).Certificates)).Transaction;

    [Theory]
    [InlineData("06_", "Q360418201")]
    [InlineData("11_", "Q360418266_twin1")]
    public void Birth_doses_from_the_HIS_the_certificate_and_the_township_export_get_the_same_ids(string vxu, string certificate)
    {
        var his = Doses(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His(vxu))).Transaction);
        var bc = Doses(Certificate(certificate));
        var township = Township().SelectMany(Doses).ToHashSet();

        Assert.Equal(2, his.Count);
        Assert.Equal(his, bc);
        Assert.Subset(township, his);
    }

    [Fact]
    public void The_newborn_key_links_the_HIS_admission_the_certificate_and_the_township_record()
    {
        static string? Key(Bundle bundle) => bundle.Entry.Select(e => e.Resource).OfType<Patient>()
            .SelectMany(p => p.Identifier).FirstOrDefault(i => i.System == Systems.NewbornKey)?.Value;
        var township = TownshipBatchReader.Read(Directory.GetFiles(SampleFiles.Folder("township/batch-001")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes))
            .Rows.Single(r => r.Key == "36992110120200042").Transaction!;

        var keys = new[]
        {
            Key(Assert.IsType<HisAccepted>(HisMapper.Map(SampleFiles.His("05_"))).Transaction),
            Key(Certificate("Q360418201")),
            Key(township),
        };

        Assert.All(keys, k => Assert.Equal("36992119960823078X/20250315/female/1", k));
    }
}
