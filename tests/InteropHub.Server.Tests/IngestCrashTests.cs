using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Adapters.Ingest;
using InteropHub.Fhir.Storage;
using InteropHub.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>
/// Runs the real server, sends HL7 v2 messages over MLLP from four connections, kills the process with SIGKILL
/// mid-stream, restarts on the same database and checks that every message the hub acknowledged is in the inbox
/// and processed, and that nothing is left half-done once start-up recovery has run (issue 5, "a crash at any
/// point loses no accepted message").
/// </summary>
public abstract class IngestCrashTests(HubFactory hub)
{
    [Fact]
    public async Task Killing_the_server_mid_stream_loses_no_acknowledged_MLLP_message_and_recovery_processes_every_stored_one()
    {
        var acknowledged = new ConcurrentBag<string>();
        var seeds = Directory.CreateTempSubdirectory("interophub-seeds");
        File.Copy(Path.Combine(AdapterTestBase.RepositoryRoot(), "seeds", "organizations.json"), Path.Combine(seeds.FullName, "organizations.json"));
        var port = AdapterTestBase.FreePort();
        var template = Encoding.UTF8.GetString(await File.ReadAllBytesAsync(Path.Combine(AdapterTestBase.Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7")));

        using (var server = await StartServerAsync(port, seeds.FullName))
        {
            using var sending = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 4).Select(c => SendUntilCancelledAsync(port, c, template, acknowledged, sending.Token)).ToList();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (acknowledged.Count < 40 && DateTime.UtcNow < deadline)
            {
                await System.Threading.Tasks.Task.Delay(10);
            }

            server.Kill();
            await sending.CancelAsync();
            await System.Threading.Tasks.Task.WhenAll(senders);
        }

        Assert.True(acknowledged.Count >= 40, $"only {acknowledged.Count} messages were acknowledged before the kill");
        await using var restarted = hub.Restarted();
        _ = restarted.CreateClient();
        var inbox = restarted.Services.GetRequiredService<IInboxStore>();
        var deadlineRecovery = DateTime.UtcNow.AddSeconds(60);
        while ((await inbox.ListAsync(InboxStatus.Received, null, 1, CancellationToken.None)).Count > 0 && DateTime.UtcNow < deadlineRecovery)
        {
            await System.Threading.Tasks.Task.Delay(50);
        }

        seeds.Delete(recursive: true);
        Assert.Empty(await inbox.ListAsync(InboxStatus.Received, null, 10, CancellationToken.None));
        var processed = (await inbox.ListAsync(InboxStatus.Processed, null, 100_000, CancellationToken.None))
            .Where(m => m.Source == IngestSources.His).Select(m => m.MessageId).ToHashSet(StringComparer.Ordinal);
        foreach (var controlId in acknowledged)
        {
            Assert.Contains($"QX2110026|{controlId}", processed);
        }
    }

    [Fact]
    public async Task Killing_the_server_mid_batch_applies_every_township_row_once_after_recovery_and_reports_the_rows_applied_before_as_unchanged()
    {
        var seeds = Directory.CreateTempSubdirectory("interophub-seeds");
        File.Copy(Path.Combine(AdapterTestBase.RepositoryRoot(), "seeds", "organizations.json"), Path.Combine(seeds.FullName, "organizations.json"));
        // Residents 居民878000…居民878999 and a dose each: 2,000 rows, the residents first.
        var batch = LegacyData.TownshipBatch(first: 878_000, residents: 1000);
        using (var server = await StartServerAsync(0, seeds.FullName))
        {
            using var client = new HttpClient { BaseAddress = server.BaseAddress };
            using var content = new ByteArrayContent(batch);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/zip");
            // The upload is answered once the batch is applied: it is killed under way, as soon as the first rows are committed.
            var upload = client.PostAsync(new Uri("/adapters/township/batches", UriKind.Relative), content);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (await CountAsync(client, "/fhir/Patient?name=居民878&_summary=count") == 0 && !upload.IsCompleted && DateTime.UtcNow < deadline)
            {
                await System.Threading.Tasks.Task.Delay(5);
            }

            Assert.False(upload.IsCompleted, "the batch was applied before the server could be killed");
            server.Kill();
            await Assert.ThrowsAnyAsync<Exception>(() => upload);
        }

        await using var restarted = hub.Restarted();
        var recovered = restarted.CreateClient();
        var inbox = restarted.Services.GetRequiredService<IInboxStore>();
        var deadlineRecovery = DateTime.UtcNow.AddSeconds(120);
        while ((await inbox.ListAsync(InboxStatus.Received, null, 1, CancellationToken.None)).Count > 0 && DateTime.UtcNow < deadlineRecovery)
        {
            await System.Threading.Tasks.Task.Delay(50);
        }

        var stored = Assert.Single(await inbox.ListAsync(InboxStatus.Processed, null, 100_000, CancellationToken.None),
            m => m.MessageId == "QX2110026-GEN-000878000-001");
        var report = System.Text.Json.JsonDocument.Parse(await recovered.GetStringAsync(new Uri($"/adapters/township/batches/{stored.Id}", UriKind.Relative))).RootElement;
        seeds.Delete(recursive: true);

        Assert.Equal("Processed", report.GetProperty("status").GetString());
        Assert.Equal(1000, await CountAsync(recovered, "/fhir/Patient?name=居民878&_summary=count"));
        Assert.Equal(1000, await CountAsync(recovered, "/fhir/Immunization?patient.name=居民878&_summary=count"));
        // The run after the crash applied the rest; the rows committed before it are the hub's already, not "not applied".
        var summary = report.GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;
        var counts = System.Text.RegularExpressions.Regex.Match(summary, @": (\d+) of 2000 rows applied; (\d+) unchanged \(the hub already held them\), 0 stale, 0 refused$");
        Assert.True(counts.Success, summary);
        Assert.True(int.Parse(counts.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, summary);
        Assert.Equal(2000, int.Parse(counts.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + int.Parse(counts.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static async Task<int> CountAsync(HttpClient client, string query)
    {
        // A 503 (the database's command timeout, seen on a loaded machine right after recovery) is to be sent again.
        var response = await client.GetAsync(new Uri(query, UriKind.Relative));
        for (var attempt = 1; attempt < 3 && response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable; attempt++)
        {
            response.Dispose();
            await System.Threading.Tasks.Task.Delay(TimeSpan.FromSeconds(5));
            response = await client.GetAsync(new Uri(query, UriKind.Relative));
        }

        using var answered = response;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{query}: {(int)response.StatusCode} {body}");
        return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("total").GetInt32();
    }

    private static async Task SendUntilCancelledAsync(int port, int connection, string template, ConcurrentBag<string> acknowledged, CancellationToken ct)
    {
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", port, ct);
            var mllp = new MllpStream(tcp.GetStream(), 1 << 20);
            for (var i = 0; !ct.IsCancellationRequested; i++)
            {
                var controlId = $"CRASH-{connection}-{i:D5}";
                var message = template.Replace("QX2110026-20250506-000412", controlId, StringComparison.Ordinal);
                await mllp.WriteAsync(Encoding.UTF8.GetBytes(message), ct);
                var ack = await mllp.ReadAsync(ct);
                if (ack is null)
                {
                    return;
                }

                if (Encoding.UTF8.GetString(ack.Bytes.Span).Contains("MSA|AA|", StringComparison.Ordinal))
                {
                    acknowledged.Add(controlId);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // The server died under us: an unacknowledged message may or may not be stored.
        }
    }

    private Task<ChildProcess> StartServerAsync(int mllpPort, string seeds)
    {
        var environment = hub.StoreSettings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);
        environment["InteropHub__Seeds__Load"] = "true";
        environment["InteropHub__Seeds__Path"] = seeds;
        environment["InteropHub__Mllp__Port"] = mllpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        environment["Logging__LogLevel__Default"] = "Warning";
        return ChildProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "InteropHub.Server.dll"), [], environment, "/fhir/metadata");
    }
}

public sealed class IngestCrashTestsOnSqlite(SqliteHub hub) : IngestCrashTests(hub), IClassFixture<SqliteHub>;

public sealed class IngestCrashTestsOnPostgres(PostgresHub hub) : IngestCrashTests(hub), IClassFixture<PostgresHub>;
