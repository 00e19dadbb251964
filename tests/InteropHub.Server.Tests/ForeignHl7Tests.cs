using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace InteropHub.Server.Tests;

/// <summary>
/// HL7 v2 messages written for other interfaces (the FHIR-Converter samples: US hospitals, v2.8) reach the HIS
/// endpoint: each is answered promptly with an ACK, and a refusal says why in an ERR segment. Never a 500 or a hang.
/// </summary>
public abstract class ForeignHl7Tests(HubFactory hub)
{
    public static TheoryData<string> Samples() => [.. SampleNames()];

    private static IEnumerable<string> SampleNames() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Data", "fhir-converter-hl7v2"), "*.hl7").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task A_foreign_message_is_answered_with_an_ACK_that_says_why_when_it_is_refused(string sample)
    {
        var body = await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Data", "fhir-converter-hl7v2", sample));
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("x-application/hl7-v2+er7");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var response = await hub.CreateClient().PostAsync(new Uri("/adapters/his/hl7v2", UriKind.Relative), content, timeout.Token);

        var ack = Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync(timeout.Token)).Split('\r', StringSplitOptions.RemoveEmptyEntries);
        var msa = Assert.Single(ack, s => s.StartsWith("MSA|", StringComparison.Ordinal)).Split('|');
        if (response.StatusCode == HttpStatusCode.OK)
        {
            Assert.Equal("AA", msa[1]);
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(msa[1], new[] { "AE", "AR" });
            var errors = ack.Where(s => s.StartsWith("ERR|", StringComparison.Ordinal)).Select(s => s.Split('|')).ToList();
            Assert.NotEmpty(errors);
            Assert.All(errors, err =>
            {
                Assert.False(string.IsNullOrWhiteSpace(err.ElementAtOrDefault(5)), $"{sample}: ERR-5 names the reason: {string.Join('|', err)}");
                Assert.False(string.IsNullOrWhiteSpace(err.ElementAtOrDefault(8)), $"{sample}: ERR-8 says why: {string.Join('|', err)}");
            });
        }
    }

    [Fact]
    public async Task Foreign_messages_that_reuse_one_control_id_are_each_refused_for_their_own_reason()
    {
        // The samples all use MSG00001: a refusal of the message whole (its version) comes before the reused ID.
        var client = hub.CreateClient();
        foreach (var sample in SampleNames())
        {
            using var content = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Data", "fhir-converter-hl7v2", sample)));
            content.Headers.ContentType = new MediaTypeHeaderValue("x-application/hl7-v2+er7");

            var ack = await (await client.PostAsync(new Uri("/adapters/his/hl7v2", UriKind.Relative), content)).Content.ReadAsStringAsync();

            Assert.Contains("MSA|A", ack, StringComparison.Ordinal);
            Assert.DoesNotContain("DUPLICATE_KEY", ack, StringComparison.Ordinal);
            if (ack.Contains("MSA|AR", StringComparison.Ordinal))
            {
                Assert.Matches(@"ERR\|[^\r]*\|(UNSUPPORTED|MALFORMED|MISSING_REQUIRED)\^", ack);
            }
        }
    }
}

public sealed class ForeignHl7TestsOnSqlite(SqliteHub hub) : ForeignHl7Tests(hub), IClassFixture<SqliteHub>;

public sealed class ForeignHl7TestsOnPostgres(PostgresHub hub) : ForeignHl7Tests(hub), IClassFixture<PostgresHub>;
