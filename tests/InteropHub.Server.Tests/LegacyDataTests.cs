using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;
using InteropHub.Testing;

namespace InteropHub.Server.Tests;

/// <summary>The benchmark data generator writes what the adapters accept, with nothing to warn about.</summary>
public sealed class LegacyDataTests
{
    [Fact]
    public void Generated_HL7_registrations_are_accepted_without_warnings()
    {
        foreach (var n in new[] { 1, 2, 99_999 })
        {
            var accepted = Assert.IsType<HisAccepted>(HisMapper.Map(LegacyData.Hl7Registration(n)));
            Assert.Empty(accepted.Warnings);
        }
    }

    [Fact]
    public void Generated_persons_have_distinct_valid_ID_numbers_at_benchmark_scale()
    {
        var numbers = Enumerable.Range(1, 120_000).Select(LegacyData.IdNumber).ToList();

        Assert.Equal(numbers.Count, numbers.Distinct(StringComparer.Ordinal).Count());
        Assert.All(numbers.Where((_, i) => i % 997 == 0), n => Assert.True(ResidentIdNumber.Check(n, new DateOnly(2025, 6, 30)).IsValid, n));
    }

    [Fact]
    public void A_generated_township_batch_reads_with_every_row_accepted()
    {
        var batch = TownshipBatchReader.Read(TownshipBatchReader.FromZip(LegacyData.TownshipBatch(first: 10, residents: 200)));

        Assert.Empty(batch.Issues);
        Assert.Equal(400, batch.Rows.Count(r => r.Map() is not null));
    }

    [Fact]
    public void Generated_birth_certificates_validate_against_the_XSD_and_are_accepted()
    {
        foreach (var n in new[] { 1, 2, 12_345 })
        {
            var result = BirthCertificateReader.Read(LegacyData.BirthCertificate(n), DateTimeOffset.UtcNow);
            Assert.Empty(result.DocumentIssues);
            var accepted = Assert.IsType<CertificateAccepted>(Assert.Single(result.Certificates));
            Assert.Empty(accepted.Warnings);
        }
    }
}
