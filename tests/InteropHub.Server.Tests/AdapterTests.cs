using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Hl7.Fhir.Model;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using InteropHub.Server.Seeds;
using InteropHub.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace InteropHub.Server.Tests;

/// <summary>Requests and reads shared by the adapter test classes.</summary>
public abstract class AdapterTestBase(HubFactory hub)
{
    protected HttpClient Client { get; } = hub.CreateClient();

    protected HubFactory Hub => hub;

    public static string Legacy { get; } = Path.Combine(RepositoryRoot(), "seeds", "legacy");

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    protected static async Task<string> ReadAckAsync(MllpStream reader)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var frame = await reader.ReadAsync(timeout.Token);
        Assert.NotNull(frame);
        return Encoding.UTF8.GetString(frame.Bytes.Span);
    }

    protected Task SeedOrganizationsAsync() => SeedOrganizationsAsync(Hub.Services);

    /// <summary>Writes the demo county's organisations (seeds/organizations.json) into the hub behind <paramref name="services"/>.</summary>
    public static async Task SeedOrganizationsAsync(IServiceProvider services)
    {
        var seeds = (Bundle)new InteropHub.Fhir.Serialization.FhirSerializers().ParseJson(await File.ReadAllBytesAsync(Path.Combine(RepositoryRoot(), "seeds", "organizations.json")));
        // (a collection Bundle of Organizations with fixed ids)
        var transaction = new Bundle { Type = Bundle.BundleType.Transaction };
        foreach (var resource in seeds.Entry.Select(e => e.Resource).OfType<Resource>())
        {
            transaction.Entry.Add(new Bundle.EntryComponent
            {
                Resource = resource,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"{resource.TypeName}/{resource.Id}" },
            });
        }

        await services.GetRequiredService<ProcessBundle>().HandleAsync(new BundleRequest(transaction, "http://localhost/fhir"), CancellationToken.None);
    }

    /// <summary>Posts a township batch (a zip) to <c>/adapters/township/batches</c>.</summary>
    protected async Task<HttpResponseMessage> PostTownshipAsync(byte[] zip)
    {
        using var content = new ByteArrayContent(zip);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/zip");
        return await Client.PostAsync(new Uri("/adapters/township/batches", UriKind.Relative), content);
    }

    protected async Task<(HttpStatusCode Status, string Ack)> PostHl7Async(byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("x-application/hl7-v2+er7");
        var response = await Client.PostAsync(new Uri("/adapters/his/hl7v2", UriKind.Relative), content);
        var charset = Encoding.UTF8;
        if (Encoding.UTF8.GetString(body).Contains("|GB18030", StringComparison.Ordinal))
        {
            Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
            charset = Encoding.GetEncoding("GB18030");
        }

        return (response.StatusCode, charset.GetString(await response.Content.ReadAsByteArrayAsync()));
    }

    protected static string Msa(string ack) =>
        ack.Split('\r').Single(s => s.StartsWith("MSA|", StringComparison.Ordinal)).Split('|')[1];

    /// <summary>MSH-10 of an ACK: <c>IHUB</c>, the inbox id of the message it answers and a token of its own.</summary>
    protected static string AckControlId(string ack) =>
        ack.Split('\r').Single(s => s.StartsWith("MSH|", StringComparison.Ordinal)).Split('|')[9];

    /// <summary>The HIS inbox's counts of received and processed messages (GET /adapters/status).</summary>
    protected async Task<(long Received, long Processed)> HisCountsAsync()
    {
        var sources = (await GetJsonAsync("/adapters/status")).GetProperty("sources").EnumerateArray();
        return sources.SingleOrDefault(s => s.GetProperty("source").GetString() == "his") is { ValueKind: JsonValueKind.Object } his
            ? (his.GetProperty("received").GetInt64(), his.GetProperty("processed").GetInt64())
            : (0, 0);
    }

    protected async Task<JsonElement> GetJsonAsync(string url)
    {
        var response = await Client.GetAsync(new Uri(url, UriKind.RelativeOrAbsolute));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    protected async Task<List<T>> SearchAsync<T>(string url)
        where T : Resource
    {
        var bundle = await Fhir.Read<Bundle>(await Client.GetAsync(new Uri("/fhir/" + url, UriKind.Relative)));
        return bundle.Entry.Where(e => e.Search?.Mode == Bundle.SearchEntryMode.Match).Select(e => e.Resource).OfType<T>().ToList();
    }

    protected async Task<int> CountAsync(string url)
    {
        var bundle = await Fhir.Read<Bundle>(await Client.GetAsync(new Uri(url, UriKind.Relative)));
        return bundle.Total ?? bundle.Entry.Count;
    }

    public static string RepositoryRoot()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "InteropHub.sln")))
        {
            folder = folder.Parent;
        }

        return folder?.FullName ?? throw new InvalidOperationException("InteropHub.sln not found above the test binaries.");
    }

    /// <summary>A later batch (sequence 2) of generated resident <paramref name="first"/> that repeats only its dose row, with cells changed.</summary>
    protected static byte[] LaterDoseBatch(int first, params (string Column, string Value)[] changes)
    {
        var batch = Rewrite(LegacyData.TownshipBatch(first, residents: 1, sequence: 2), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1));
        return Rewrite(batch, "immunizations.csv", lines => lines[1] = WithCells(lines[0], lines[1], changes));
    }

    /// <summary>A CSV line with the named cells (by the header's column names) replaced.</summary>
    protected static string WithCells(string header, string line, params (string Column, string Value)[] changes)
    {
        var names = header.TrimStart('\uFEFF').Split(',');
        var cells = line.Split(',');
        foreach (var (column, value) in changes)
        {
            cells[Array.IndexOf(names, column)] = value;
        }

        return string.Join(',', cells);
    }

    /// <summary>A deleted row (township-export.md §2 "Retraction"): its key, status and updated_at, the other cells empty.</summary>
    protected static string DeletedRow(string header, string keyColumn, string key, string updatedAt) =>
        WithCells(header, new string(',', header.Split(',').Length - 1), (keyColumn, key), ("status", "deleted"), ("updated_at", updatedAt));

    /// <summary>A VXU^V04 of the county hospital reporting a 1301 dose given on <paramref name="date"/> (yyyyMMdd) to generated person n.</summary>
    protected static byte[] HisDose(int n, string controlId, string date)
    {
        var id = LegacyData.IdNumber(n);
        var sex = (id[16] - '0') % 2 == 1 ? "M" : "F";
        return Encoding.UTF8.GetBytes($"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|{date}120000||VXU^V04^VXU_V04|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||{n:D10}^^^QX2100012^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||居民{n}||{id[6..14]}|{sex}\r"
            + $"ORC|RE||JZ-{controlId}^QXHIS\r"
            + $"RXA|0|1|{date}100000||1301^流感疫苗^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||202409A011|20250930|M05^^QXMFR|||CP|A\r");
    }

    /// <summary>Posts birth-certificate XML; the outcome's issues.</summary>
    protected async Task<List<OperationOutcome.IssueComponent>> PostCertificateAsync(string xml)
    {
        using var content = new StringContent(xml, Encoding.UTF8, "application/xml");
        var response = await Client.PostAsync(new Uri("/adapters/birth-certificates", UriKind.Relative), content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await Fhir.Read<OperationOutcome>(response)).Issue;
    }

    /// <summary>The mother's ID number in certificate XML.</summary>
    protected static string MotherIdOf(string xml) =>
        System.Text.RegularExpressions.Regex.Match(xml, "<IdDocument typeCode=\"01\">([0-9X]+)</IdDocument>").Groups[1].Value;

    /// <summary>A township batch zip with one file's lines edited and the manifest's checksum of it updated.</summary>
    /// <param name="batchId">A new batch id for the manifest, or null to keep it.</param>
    protected static byte[] Rewrite(byte[] zip, string file, Action<List<string>> edit, string? batchId = null)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using (var archive = new System.IO.Compression.ZipArchive(new MemoryStream(zip)))
        {
            foreach (var entry in archive.Entries)
            {
                using var stream = entry.Open();
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                files[entry.FullName] = copy.ToArray();
            }
        }

        // A file the batch lacks is added (its table named after it).
        var lines = files.TryGetValue(file, out var original) ? Encoding.UTF8.GetString(original).Split("\r\n").ToList() : [];
        edit(lines);
        files[file] = Encoding.UTF8.GetBytes(string.Join("\r\n", lines));
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(files["manifest.json"])!;
        var listed = manifest["files"]!.AsArray().FirstOrDefault(f => (string?)f!["name"] == file);
        if (listed is null)
        {
            listed = new System.Text.Json.Nodes.JsonObject { ["name"] = file, ["table"] = file[..^".csv".Length] };
            manifest["files"]!.AsArray().Add(listed);
        }

        listed["rows"] = lines.Count(l => l.Length > 0) - 1;
        listed["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(files[file]));

        if (batchId is not null)
        {
            manifest["batch_id"] = batchId;
        }

        files["manifest.json"] = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        using var buffer = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(buffer, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in files)
            {
                using var entry = archive.CreateEntry(name).Open();
                entry.Write(bytes);
            }
        }

        return buffer.ToArray();
    }
}

/// <summary>
/// The legacy adapters' ingest over HTTP (issue 5, interface contract): the county sample files of
/// seeds/legacy (samples/README.md) with their documented outcomes, idempotent resends, dead letters and replay.
/// </summary>
public abstract class AdapterTests(HubFactory hub) : AdapterTestBase(hub)
{
    [Fact]
    public async Task Every_HIS_sample_is_acknowledged_AA_and_the_two_invalid_ones_are_refused_with_their_reason()
    {
        await SeedOrganizationsAsync();

        var refused = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Legacy, "his"), "*.hl7").Order(StringComparer.Ordinal))
        {
            var (code, ack) = await PostHl7Async(await File.ReadAllBytesAsync(file));
            if (code != HttpStatusCode.OK || Msa(ack) != "AA")
            {
                refused.Add($"{Path.GetFileName(file)}: {code} {ack}");
            }
        }

        Assert.Empty(refused);

        var (status1, ack1) = await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_01_ADT_A04_bad_id_check_digit.hl7")));
        Assert.Equal(HttpStatusCode.BadRequest, status1);
        Assert.Equal("AE", Msa(ack1));
        Assert.Contains("ID_CHECK_DIGIT", ack1, StringComparison.Ordinal);

        var (status2, ack2) = await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_02_MDM_T02_unsupported.hl7")));
        Assert.Equal(HttpStatusCode.BadRequest, status2);
        Assert.Equal("AR", Msa(ack2));
        Assert.Contains("UNSUPPORTED", ack2, StringComparison.Ordinal);

        // The referral story: 李德福's up-referral completed (24 carries no PV1; the treatment Encounter reported on
        // arrival in 20 is its output), his down-referral accepted, 赵建华's cancelled.
        var tasks = await SearchAsync<Hl7.Fhir.Model.Task>("Task?_count=50");
        Assert.Equal(3, tasks.Count);
        Assert.Equal(
            [Hl7.Fhir.Model.Task.TaskStatus.Accepted, Hl7.Fhir.Model.Task.TaskStatus.Cancelled, Hl7.Fhir.Model.Task.TaskStatus.Completed],
            tasks.Select(t => t.Status!.Value).Order());
        // Each referral's ServiceRequest follows its Task: carried out (completed), cancelled (revoked), or still open.
        var referrals = await SearchAsync<ServiceRequest>("ServiceRequest?category=http://snomed.info/sct|3457005&_count=50");
        Assert.Equal([RequestStatus.Active, RequestStatus.Revoked, RequestStatus.Completed], referrals.Select(r => r.Status!.Value).Order());
        Assert.Equal(RequestStatus.Completed, Assert.Single(referrals, r => r.Id == tasks.Single(t => t.Status == Hl7.Fhir.Model.Task.TaskStatus.Completed).Focus!.Reference!.Split('/')[1]).Status);
        // 钱国栋's admission, cancelled by A11.
        Assert.Single(await SearchAsync<Encounter>("Encounter?status=entered-in-error"));

        var status = await GetJsonAsync("/adapters/status");
        var his = status.GetProperty("sources").EnumerateArray().Single(s => s.GetProperty("source").GetString() == "his");
        Assert.Equal(2, his.GetProperty("failed").GetInt64());
        Assert.Equal(31, his.GetProperty("processed").GetInt64());
        Assert.Equal(33, his.GetProperty("received").GetInt64());

        // 29: the LIS item UREA has no LOINC code; it is kept under its local system and counted.
        Assert.Contains(status.GetProperty("unmappedCodes").EnumerateArray(), c => c.GetProperty("code").GetString()!.EndsWith("|UREA", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Resending_a_message_answers_AA_again_and_writes_nothing()
    {
        await SeedOrganizationsAsync();
        var message = await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7"));
        var (_, firstAck) = await PostHl7Async(message);
        Assert.Equal("AA", Msa(firstAck));
        var history = await CountAsync("/fhir/_history?_count=1000");
        var received = await HisCountsAsync();

        // A resend differs only in MSH-7 and terminators (his-hl7v2.md §1).
        var text = Encoding.UTF8.GetString(message);
        var fields = text.Split('|');
        fields[6] = "20991231235959";
        var resend = string.Join('|', fields).Replace("\r", "\r\n", StringComparison.Ordinal);
        var (status, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(resend));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("AA", Msa(ack));
        Assert.Equal(history, await CountAsync("/fhir/_history?_count=1000"));
        // Answered for the stored message (the ACK's control id names its inbox row), and not stored again; the answer
        // is a message of its own, with an MSH-10 of its own.
        Assert.Matches("^IHUB[0-9]+-[0-9A-Z]+$", AckControlId(firstAck));
        Assert.Equal(AckControlId(firstAck).Split('-')[0], AckControlId(ack).Split('-')[0]);
        Assert.NotEqual(AckControlId(firstAck), AckControlId(ack));
        Assert.Equal(received, await HisCountsAsync());
    }

    [Fact]
    public async Task A_resent_message_accepted_with_a_warning_is_answered_AA_with_the_same_warning()
    {
        await SeedOrganizationsAsync();
        // Sample 28 has no MSH-12: accepted, with a warning at MSH-12.
        var message = await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "28_ADT_A04_county_dengxiaojun_ER_quirks.hl7"));

        var (_, first) = await PostHl7Async(message);
        var (_, resent) = await PostHl7Async(message);

        static string Err(string ack) => Assert.Single(ack.Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal));
        Assert.Equal(("AA", "AA"), (Msa(first), Msa(resent)));
        Assert.Contains("MSH^1^12", Err(first), StringComparison.Ordinal);
        Assert.Equal(Err(first), Err(resent));
    }

    [Fact]
    public async Task A_cut_MLLP_frame_in_an_HTTP_body_is_refused_AR_naming_where_it_ends_and_the_next_frame_still_goes()
    {
        await SeedOrganizationsAsync();
        // Sample 02 as an A28 of two persons of their own: the first frame is cut inside PID-11, then the second starts.
        var sample = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "02_ADT_A31_county_zhaojianhua_repeatedPV1.hl7")))
            .Replace("ADT^A31^ADT_A05", "ADT^A28^ADT_A05", StringComparison.Ordinal).Replace("EVN|A31|", "EVN|A28|", StringComparison.Ordinal)
            .Replace("~369902196302140930^^^&2.16.156.10011.1.3&ISO^NNCHN", "", StringComparison.Ordinal);
        string Person(string mrn, string controlId) => sample.Replace("0000390412", mrn, StringComparison.Ordinal)
            .Replace("QX2100012-20250210-000154", controlId, StringComparison.Ordinal);
        var whole = Person("0099000771", "CUT-FRAME-2");
        var cut = Person("0099000770", "CUT-FRAME-1");
        cut = cut[..(cut.IndexOf("沙坪村", StringComparison.Ordinal) + 2)];
        byte[] body = [0x0B, .. Encoding.UTF8.GetBytes(cut), 0x0B, .. Encoding.UTF8.GetBytes(whole), 0x1C, 0x0D];

        var (status, acks) = await PostHl7Async(body);

        var answers = acks.Split("MSH|", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, answers.Length);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("MSA|AR|CUT-FRAME-1", answers[0], StringComparison.Ordinal);
        var err = Assert.Single(answers[0].Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal));
        Assert.StartsWith("ERR||PID^1^11|100^", err, StringComparison.Ordinal);
        Assert.Contains("|MALFORMED^", err, StringComparison.Ordinal);
        Assert.Contains("断在 PID-11", err, StringComparison.Ordinal);
        Assert.Contains("MSA|AA|CUT-FRAME-2", answers[1], StringComparison.Ordinal);
        // The cut message was neither applied nor stored; the whole one was applied with its whole address.
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=0099000770"));
        var applied = Assert.Single(await SearchAsync<Patient>("Patient?identifier=0099000771"));
        Assert.Contains("沙坪村1组4号", Assert.Single(applied.Address).Line);
        // Sent again whole, it is a new message.
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(Person("0099000770", "CUT-FRAME-1")))).Ack));
    }

    [Fact]
    public async Task With_RejectStatus_200_AE_and_AR_are_answered_200_with_the_NAK_as_his_instances_expect_and_a_body_without_MSH_stays_400()
    {
        await SeedOrganizationsAsync();
        await using var lenient = Hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:His:RejectStatus", "200"));
        using var client = lenient.CreateClient();
        async Task<(HttpStatusCode, string)> PostAsync(byte[] body)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/hl7-v2; charset=utf-8");
            var response = await client.PostAsync(new Uri("/adapters/his/hl7v2", UriKind.Relative), content);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var (aeStatus, ae) = await PostAsync(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_01_ADT_A04_bad_id_check_digit.hl7")));
        Assert.Equal(HttpStatusCode.OK, aeStatus);
        Assert.Equal("AE", Msa(ae));
        Assert.Contains("ID_CHECK_DIGIT", ae, StringComparison.Ordinal);

        var (arStatus, ar) = await PostAsync(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_02_MDM_T02_unsupported.hl7")));
        Assert.Equal(HttpStatusCode.OK, arStatus);
        Assert.Equal("AR", Msa(ar));

        var (noMshStatus, noMsh) = await PostAsync(Encoding.UTF8.GetBytes("PID|1||0099000790\r"));
        Assert.True(noMshStatus == HttpStatusCode.BadRequest, noMsh);
        Assert.Contains("MSH", noMsh, StringComparison.Ordinal);

        // Any other value stops the start-up.
        await using var wrong = Hub.WithWebHostBuilder(b => b.UseSetting("InteropHub:His:RejectStatus", "202"));
        var error = Assert.ThrowsAny<Exception>(() => wrong.CreateClient());
        Assert.Contains("InteropHub:His:RejectStatus", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_ACK_has_a_control_id_of_its_own_also_for_resends_of_a_rejected_message_and_refusals_without_an_inbox_row()
    {
        await SeedOrganizationsAsync();
        var rejected = await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_01_ADT_A04_bad_id_check_digit.hl7"));
        var unsupported = await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "invalid", "invalid_02_MDM_T02_unsupported.hl7"));

        var answers = new List<string>();
        foreach (var body in new[] { rejected, rejected, unsupported, unsupported })
        {
            answers.Add((await PostHl7Async(body)).Ack);
        }

        Assert.Equal(["AE", "AE", "AR", "AR"], answers.Select(Msa));
        var ids = answers.Select(AckControlId).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.All(ids, id => Assert.InRange(id.Length, "IHUB1-0000".Length, 20));
        // The two AEs answer one inbox row, and both say which.
        Assert.Equal(ids[0].Split('-')[0], ids[1].Split('-')[0]);
        Assert.Matches("^IHUB[0-9]+-", ids[0]);
    }

    [Fact]
    public async Task A_township_batch_is_accepted_with_202_and_its_report_names_exactly_the_three_invalid_rows()
    {
        await SeedOrganizationsAsync();
        var response = await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var location = response.Headers.Location!;

        var batch = await GetJsonAsync(location.ToString());
        var errors = batch.GetProperty("outcome").GetProperty("issue").EnumerateArray()
            .Where(i => i.GetProperty("severity").GetString() == "error")
            .Select(i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() + " " + i.GetProperty("location")[0].GetString()!.Split(' ')[0])
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["ID_CHECK_DIGIT residents.csv:20:id_no", "IMPOSSIBLE_DATE child_checkups.csv:18:checkup_date", "UNKNOWN_CODE immunizations.csv:30:vaccine_code"], errors);
        // The summary counts every data row of the manifest, the refused ones too.
        Assert.Contains(" of 150 rows applied;", batch.GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        var patients = await CountAsync("/fhir/Patient?_summary=count");
        Assert.True(patients >= 29, $"{patients} patients from 29 valid resident rows");
        Assert.Equal("Processed", batch.GetProperty("status").GetString());

        // The rows applied together share a Provenance, which names the batch and targets what each wrote; each
        // resource names its own row.
        var lidefu = Assert.Single(await SearchAsync<Patient>("Patient?identifier=369902195804121372"));
        Assert.Equal("urn:interophub:township:QX2110026-20250630-001#residents.csv:1", lidefu.Meta!.Source);
        var provenance = Assert.Single(await SearchAsync<Provenance>($"Provenance?target=Patient/{lidefu.Id}"),
            p => p.Entity.Any(e => e.What.Identifier?.Value == "QX2110026-20250630-001"));
        // One per institution: the 16 accepted resident rows of QX2110026 (the other 13 are QX2120048's).
        Assert.Equal(16, provenance.Target.Count);
        Assert.Equal("Organization/QX2110026", provenance.Agent[0].Who.Reference);
    }

    [Fact]
    public async Task A_row_is_STALE_against_the_updated_at_that_the_row_Provenance_of_mapping_0_1_0_recorded()
    {
        await SeedOrganizationsAsync();
        // What mapping 0.1.0 wrote for a row: a Provenance of its own, id from table and key, occurred = its updated_at.
        var earlier = new Provenance
        {
            Id = "residents.36992110120177001",
            Target = [new ResourceReference("Organization/QX2110026")],
            Occurred = new FhirDateTime("2099-01-01T00:00:00+08:00"),
            Recorded = DateTimeOffset.Parse("2025-06-30T02:00:00+08:00", CultureInfo.InvariantCulture),
            Agent = [new Provenance.AgentComponent { Who = new ResourceReference { Display = "township export adapter" } }],
        };
        var put = await Client.PutAsync(new Uri($"/fhir/Provenance/{earlier.Id}", UriKind.Relative), Fhir.Content(earlier));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);

        var response = await PostTownshipAsync(LegacyData.TownshipBatch(first: 77_001, residents: 2));

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var stale = Assert.Single(issues, i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() == "STALE");
        Assert.Contains("36992110120177001", stale.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=36992110120177001"));
        Assert.Single(await SearchAsync<Patient>("Patient?identifier=36992110120177002"));
    }

    [Fact]
    public async Task A_row_older_than_the_one_applied_is_ignored_with_a_STALE_warning()
    {
        await SeedOrganizationsAsync();
        foreach (var name in new[] { "batch-001", "batch-002" })
        {
            var response = await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", name)));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            if (name == "batch-002")
            {
                var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
                var stale = Assert.Single(issues, i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() == "STALE");
                Assert.Equal("warning", stale.GetProperty("severity").GetString());
                Assert.StartsWith("residents.csv:", stale.GetProperty("location")[0].GetString(), StringComparison.Ordinal);
            }
        }

        var lidefu = Assert.Single(await SearchAsync<Patient>("Patient?identifier=369902195804121372"));
        Assert.Contains(lidefu.Telecom, t => t.Value == "13900001234");
        Assert.DoesNotContain(lidefu.Telecom, t => t.Value == "13900001299");
    }

    [Fact]
    public async Task A_row_changed_without_a_later_updated_at_is_ignored_with_a_STALE_warning_and_a_repeated_one_silently()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 898_001, residents: 2))).StatusCode);
        // The next batch repeats both residents with the same updated_at: the first with another phone, the second as it was.
        var again = Rewrite(LegacyData.TownshipBatch(first: 898_001, residents: 2, sequence: 2), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("phone", "13800009999")));

        var response = await PostTownshipAsync(again);

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray()
            .Where(i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() == "STALE").ToList();
        var stale = Assert.Single(issues);
        Assert.Equal("residents.csv:1:updated_at (column 26)", stale.GetProperty("location")[0].GetString());
        Assert.Contains("same updated_at", stale.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        var resident = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(898_001)}"));
        Assert.DoesNotContain(resident.Telecom, t => t.Value == "13800009999");
    }

    [Fact]
    public async Task Birth_certificates_are_applied_one_outcome_per_certificate()
    {
        await SeedOrganizationsAsync();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Legacy, "birth-certificate"), "*.xml").Order(StringComparer.Ordinal))
        {
            using var content = new ByteArrayContent(await File.ReadAllBytesAsync(file));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/xml");
            var response = await Client.PostAsync(new Uri("/adapters/birth-certificates", UriKind.Relative), content);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{Path.GetFileName(file)}: {response.StatusCode} {body}");
            var outcome = await Fhir.Read<OperationOutcome>(response);
            Assert.Contains(outcome.Issue, i => i.Details?.Coding[0].Code == "APPLIED");
        }

        var documents = await SearchAsync<DocumentReference>("DocumentReference?_count=50");
        Assert.Equal(8, documents.Count);

        // R360007315 (换发) replaced Q360418201.
        var superseded = Assert.Single(documents, d => d.Status == DocumentReferenceStatus.Superseded);
        Assert.Equal("Q360418201", superseded.MasterIdentifier?.Value);
    }

    [Fact]
    public async Task A_certificate_version_applies_once_a_higher_one_replaces_it_and_a_lower_one_is_STALE()
    {
        await SeedOrganizationsAsync();
        var original = await File.ReadAllTextAsync(Path.Combine(Legacy, "birth-certificate", "Q360418201.xml"));
        string Version(int version, int grams, string modified) => original
            .Replace("<RecordVersion>1</RecordVersion>", $"<RecordVersion>{version}</RecordVersion>", StringComparison.Ordinal)
            .Replace("<BirthWeight unit=\"g\">3350</BirthWeight>", $"<BirthWeight unit=\"g\">{grams}</BirthWeight>", StringComparison.Ordinal)
            .Replace("2025-03-17T11:02:00+08:00", modified, StringComparison.Ordinal);

        async Task<string> SendAsync(string xml)
        {
            using var content = new StringContent(xml, Encoding.UTF8, "application/xml");
            var response = await Client.PostAsync(new Uri("/adapters/birth-certificates", UriKind.Relative), content);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return Assert.Single((await Fhir.Read<OperationOutcome>(response)).Issue, i => i.Details?.Coding[0].Code is "APPLIED" or "UNCHANGED" or "STALE").Details!.Coding[0].Code!;
        }

        Assert.Equal("APPLIED", await SendAsync(Version(1, 3350, "2025-03-17T11:02:00+08:00")));
        Assert.Equal("APPLIED", await SendAsync(Version(2, 3360, "2025-03-18T09:00:00+08:00")));
        Assert.Equal("UNCHANGED", await SendAsync(Version(2, 3360, "2025-03-18T09:30:00+08:00")));
        Assert.Equal("STALE", await SendAsync(Version(1, 3350, "2025-03-17T12:00:00+08:00")));

        var document = Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=Q360418201"));
        Assert.Equal("2", document.Meta!.VersionId);
        var weight = Assert.Single(await SearchAsync<Observation>("Observation?code=http://loinc.org|8339-4"));
        Assert.Equal(3360m, ((Quantity)weight.Value!).Value);
    }

    [Fact]
    public async Task HIS_messages_and_a_township_batch_about_one_person_arriving_together_lose_none_of_each_others_identifiers()
    {
        await SeedOrganizationsAsync();
        var template = await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7"));
        var messages = Enumerable.Range(1, 8).Select(i => Encoding.UTF8.GetBytes(template
            .Replace("QX2110026-20250506-000412", $"CONCURRENT-{i:D4}", StringComparison.Ordinal)
            .Replace("0000021875^^^QX2110026^MR", $"77{i:D8}^^^QX2110026^MR", StringComparison.Ordinal)
            .Replace("MZ20250506000087", $"MZ2025050699{i:D4}", StringComparison.Ordinal))).ToList();

        var township = PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")));
        var acks = await Task.WhenAll(messages.Select(PostHl7Async));
        Assert.Equal(HttpStatusCode.Accepted, (await township).StatusCode);

        Assert.All(acks, a => Assert.True(Msa(a.Ack) == "AA", a.Ack));
        var lidefu = Assert.Single(await SearchAsync<Patient>("Patient?identifier=369902195804121372"));
        var history = await Fhir.Read<Bundle>(await Client.GetAsync(new Uri($"/fhir/Patient/{lidefu.Id}/_history", UriKind.Relative)));
        var trace = string.Join("\n", history.Entry.Select(e => $"{e.Resource?.Meta?.VersionId}: {string.Join(",", ((Patient)e.Resource!).Identifier.Select(x => x.Value))}"));
        foreach (var i in Enumerable.Range(1, 8))
        {
            Assert.True(lidefu.Identifier.Any(id => id.Value == $"77{i:D8}"), $"77{i:D8} missing from {string.Join(", ", lidefu.Identifier.Select(x => x.Value))} (version {lidefu.Meta?.VersionId})\n{trace}");
        }

        Assert.Contains(lidefu.Identifier, id => id.Value == "36992110120100023");
    }

    [Fact]
    public async Task A_township_batch_sent_again_even_zipped_anew_is_known_by_its_manifest_batch_id_and_writes_nothing()
    {
        await SeedOrganizationsAsync();
        var zip = LegacyData.TownshipBatch(first: 860_001, residents: 20);
        async Task<Uri> PostAsync(byte[] batch)
        {
            var response = await PostTownshipAsync(batch);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return response.Headers.Location!;
        }

        var first = await PostAsync(zip);
        var history = await CountAsync("/fhir/_history?_count=1000");
        // The same rows in another zip (its manifest written anew): other bytes, the same batch id.
        var again = Rewrite(zip, "residents.csv", _ => { });
        Assert.False(again.AsSpan().SequenceEqual(zip));

        Assert.Equal(first, await PostAsync(again));
        Assert.Equal(history, await CountAsync("/fhir/_history?_count=1000"));

        // The same batch id with other content (another manifest) is rejected whole, and kept as a dead letter of its own.
        var other = Rewrite(zip, "residents.csv", lines => lines[1] = lines[1].Replace("居民860001", "别人860001", StringComparison.Ordinal));
        var rejected = await PostAsync(other);
        Assert.NotEqual(first, rejected);
        var outcome = await GetJsonAsync(rejected.ToString());
        Assert.Equal("Failed", outcome.GetProperty("status").GetString());
        Assert.Contains("INTEGRITY", outcome.GetProperty("outcome").ToString(), StringComparison.Ordinal);
        // A replay refuses it again: nothing of it is ever applied.
        var id = rejected.ToString().Split('/')[^1];
        var replay = await Client.PostAsync(new Uri($"/adapters/dead-letters/{id}/replay", UriKind.Relative), null);
        Assert.Equal("Failed", JsonDocument.Parse(await replay.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
        Assert.Equal(history, await CountAsync("/fhir/_history?_count=1000"));
    }

    [Fact]
    public async Task Rows_applied_many_per_transaction_still_refuse_only_the_row_at_fault()
    {
        await SeedOrganizationsAsync();

        // Data row 50 of 150 vaccinations names a resident no batch ever sent: the store cannot resolve its patient.
        var batch = Rewrite(LegacyData.TownshipBatch(first: 880_001, residents: 150), "immunizations.csv", lines =>
        {
            var cells = lines[50].Split(',');
            cells[1] = "36992110129999";
            lines[50] = string.Join(',', cells);
        });
        var response = await PostTownshipAsync(batch);

        var stored = await GetJsonAsync(response.Headers.Location!.ToString());
        var issues = stored.GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var error = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal("immunizations.csv:50:record_no (column 2)", error.GetProperty("location")[0].GetString());
        Assert.Equal("UNKNOWN_REFERENCE", error.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());
        Assert.Contains("299 of 300 rows applied; 0 unchanged (the hub already held them), 0 stale, 1 refused", issues[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        // A row the hub refuses is the row's fault, not the hub's: the batch is processed, not a dead letter.
        Assert.Equal("Processed", stored.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_batch_report_has_a_line_per_file_counting_applied_unchanged_stale_and_refused_rows()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 881_501, residents: 3))).StatusCode);

        // The next batch sends the three residents and their doses again: resident 1 older than the hub's (stale),
        // resident 2 as it was (unchanged), resident 3 changed later (applied); dose 1 as it was, dose 2 with a vaccine
        // code the county does not have (refused), dose 3 changed later.
        var again = Rewrite(LegacyData.TownshipBatch(first: 881_501, residents: 3, sequence: 2), "residents.csv", lines =>
        {
            lines[1] = lines[1].Replace("2025-05-20 16:40:00", "2025-05-01 08:00:00", StringComparison.Ordinal);
            lines[3] = lines[3].Replace("居民881503", "居民八八一五零三", StringComparison.Ordinal).Replace("2025-05-20 16:40:00", "2025-06-01 09:00:00", StringComparison.Ordinal);
        });
        again = Rewrite(again, "immunizations.csv", lines =>
        {
            lines[2] = lines[2].Replace(",1301,", ",9999,", StringComparison.Ordinal).Replace("2025-05-20 16:40:00", "2025-06-01 09:00:00", StringComparison.Ordinal);
            lines[3] = lines[3].Replace("202409A011", "202409B022", StringComparison.Ordinal).Replace("2025-05-20 16:40:00", "2025-06-01 09:00:00", StringComparison.Ordinal);
        });
        var response = await PostTownshipAsync(again);

        var stored = await GetJsonAsync(response.Headers.Location!.ToString());
        var issues = stored.GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.Equal("batch QX2110026-GEN-000881501-002: 2 of 6 rows applied; 2 unchanged (the hub already held them), 1 stale, 1 refused",
            issues[0].GetProperty("diagnostics").GetString());
        var files = issues.Where(i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() == "FILE")
            .Select(i => (Location: i.GetProperty("location")[0].GetString(), Line: i.GetProperty("diagnostics").GetString())).ToList();
        Assert.Equal(
        [
            ("residents.csv", "residents.csv (residents): 1 of 3 rows applied; 1 unchanged (the hub already held them), 1 stale, 0 refused"),
            ("immunizations.csv", "immunizations.csv (immunizations): 1 of 3 rows applied; 1 unchanged (the hub already held them), 0 stale, 1 refused"),
        ], files);
        // The file lines come right after the summary, before the rows' own issues.
        Assert.Equal(["APPLIED", "FILE", "FILE"], issues.Take(3).Select(i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString()));
        Assert.Contains(issues, i => i.TryGetProperty("location", out var at) && at[0].GetString()!.StartsWith("immunizations.csv:2:vaccine_code", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.TryGetProperty("location", out var at) && at[0].GetString() == "residents.csv:1:updated_at (column 26)");
    }

    [Fact]
    public async Task Deleting_a_row_the_hub_never_had_is_a_warning_and_the_batch_is_processed()
    {
        await SeedOrganizationsAsync();
        var batch = Rewrite(LegacyData.TownshipBatch(first: 897_001, residents: 3), "immunizations.csv", lines =>
        {
            var cells = lines[2].Split(',');
            cells[0] = "JZ-QX2110026-999999999";
            cells[16] = "deleted";
            lines[2] = string.Join(',', cells);
        });

        var response = await PostTownshipAsync(batch);

        var stored = await GetJsonAsync(response.Headers.Location!.ToString());
        Assert.Equal("Processed", stored.GetProperty("status").GetString());
        var issues = stored.GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");
        var warning = Assert.Single(issues, i => i.GetProperty("diagnostics").GetString()!.Contains("holds nothing", StringComparison.Ordinal));
        Assert.Equal("immunizations.csv:2", warning.GetProperty("location")[0].GetString());
    }

    [Fact]
    public async Task A_second_record_of_a_resident_whose_first_is_in_a_chunk_still_in_flight_applies_after_it()
    {
        await SeedOrganizationsAsync();

        // Row 120 (in the second chunk of 100, applied while the first may still run) is another health record of row
        // 20's resident, under a new name: it must find the Patient row 20 wrote, not race it.
        var batch = Rewrite(LegacyData.TownshipBatch(first: 890_001, residents: 200), "residents.csv", lines =>
        {
            lines[120] = lines[20].Replace("36992110120190020", "36992110120190120", StringComparison.Ordinal)
                .Replace("居民890020", "居民改名", StringComparison.Ordinal);
        });
        var response = await PostTownshipAsync(batch);

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");
        var resident = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(890_020)}"));
        Assert.Equal("居民改名", resident.Name[0].Text ?? resident.Name[0].Family + string.Concat(resident.Name[0].Given));
        Assert.Contains(resident.Identifier, i => i.Value == "36992110120190020");
        Assert.Contains(resident.Identifier, i => i.Value == "36992110120190120");
    }


    [Theory]
    [InlineData("x-application/hl7-v2+er7")]
    [InlineData("application/hl7-v2; charset=utf-8")]
    [InlineData("text/plain")]
    public async Task Every_media_type_the_interface_names_is_accepted(string mediaType)
    {
        await SeedOrganizationsAsync();
        using var content = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7")));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(mediaType);

        var response = await Client.PostAsync(new Uri("/adapters/his/hl7v2", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("AA", Msa(await response.Content.ReadAsStringAsync()));
    }

    [Fact]
    public async Task A_message_that_cannot_be_parsed_past_a_readable_MSH_is_refused_with_its_control_id_in_MSA_2()
    {
        var message = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7")))
            .Replace("\rPID|", "\rpid|", StringComparison.Ordinal);

        var (status, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(message));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("MSA|AR|QX2110026-20250506-000412", ack, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Damaged_or_empty_bodies_are_answered_4xx_or_a_NAK_and_never_500()
    {
        var garbage = new byte[] { 0x50, 0x4B, 0x03, 0x04, 0xFF, 0x00, 0x13, 0x37, 0x0B, 0x1C, 0x0D };
        foreach (var (url, type, body) in new[]
        {
            ("/adapters/his/hl7v2", "x-application/hl7-v2+er7", garbage),
            ("/adapters/his/hl7v2", "text/plain", "MSH|^~\\&|X"u8.ToArray()),
            ("/adapters/his/hl7v2", "text/plain", Array.Empty<byte>()),
            ("/adapters/his/hl7v2", "application/json", "{}"u8.ToArray()),
            ("/adapters/township/batches", "application/zip", garbage),
            ("/adapters/township/batches", "application/zip", Array.Empty<byte>()),
            ("/adapters/birth-certificates", "application/xml", garbage),
            ("/adapters/birth-certificates", "application/xml", "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><BirthCertificate>&e;</BirthCertificate>"u8.ToArray()),
        })
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(type);
            var response = await Client.PostAsync(new Uri(url, UriKind.Relative), content);
            var status = (int)response.StatusCode;
            Assert.True(status is (>= 400 and < 500) or 202, $"{url} {type} {body.Length} bytes: {status}");
            if (status == 202)
            {
                // A batch that is no zip is stored, and its outcome gives the reason code.
                var stored = await GetJsonAsync(response.Headers.Location!.ToString());
                Assert.Contains("MALFORMED", stored.GetProperty("outcome").ToString(), StringComparison.Ordinal);
            }
        }

        Assert.Equal(HttpStatusCode.NotFound, (await Client.PostAsync(new Uri("/adapters/dead-letters/999999999/replay", UriKind.Relative), null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync(new Uri("/adapters/township/batches/999999999", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task A_stalled_or_vanished_MLLP_client_does_not_hold_up_another_connection()
    {
        var port = FreePort();
        await using var mllpHub = Hub.Restarted(mllpPort: port);
        _ = mllpHub.CreateClient();
        await SeedOrganizationsAsync();
        var message = MllpStream.Frame(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7")));

        // One client sends half a frame and stalls; another sends half a frame and disconnects.
        using var stalled = new TcpClient();
        await stalled.ConnectAsync("127.0.0.1", port);
        await stalled.GetStream().WriteAsync(message.AsMemory(0, message.Length / 2));
        using (var vanished = new TcpClient())
        {
            await vanished.ConnectAsync("127.0.0.1", port);
            await vanished.GetStream().WriteAsync(message.AsMemory(0, message.Length / 2));
        }

        using var healthy = new TcpClient();
        await healthy.ConnectAsync("127.0.0.1", port);
        await healthy.GetStream().WriteAsync(message);
        Assert.Equal("AA", Msa(await ReadAckAsync(new MllpStream(healthy.GetStream(), 1 << 20))));
    }

    [Fact]
    public async Task MLLP_frames_split_across_writes_and_concatenated_in_one_write_are_each_answered_and_garbage_gets_AR()
    {
        var port = FreePort();
        await using var mllpHub = Hub.Restarted(mllpPort: port);
        _ = mllpHub.CreateClient();
        await SeedOrganizationsAsync();
        var his = Path.Combine(Legacy, "his");
        var first = MllpStream.Frame(await File.ReadAllBytesAsync(Path.Combine(his, "16_ADT_A04_baisha_lidefu.hl7")));
        var second = MllpStream.Frame(await File.ReadAllBytesAsync(Path.Combine(his, "17_REF_I12_baisha_lidefu_up.hl7")));
        var invalid = MllpStream.Frame(await File.ReadAllBytesAsync(Path.Combine(his, "invalid", "invalid_01_ADT_A04_bad_id_check_digit.hl7")));

        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        var reader = new MllpStream(stream, 1 << 20);

        // One frame in three writes.
        await stream.WriteAsync(first.AsMemory(0, 5));
        await stream.FlushAsync();
        await System.Threading.Tasks.Task.Delay(50);
        await stream.WriteAsync(first.AsMemory(5, 40));
        await System.Threading.Tasks.Task.Delay(50);
        await stream.WriteAsync(first.AsMemory(45));
        Assert.Equal("AA", Msa(await ReadAckAsync(reader)));

        // Two frames (one invalid) in one write, then garbage.
        await stream.WriteAsync(second.Concat(invalid).Concat("garbage"u8.ToArray()).Concat(first).ToArray());
        Assert.Equal("AA", Msa(await ReadAckAsync(reader)));
        var nak = await ReadAckAsync(reader);
        Assert.Equal("AE", Msa(nak));
        Assert.Contains("ERR|", nak, StringComparison.Ordinal);
        Assert.Contains("ID_CHECK_DIGIT", nak, StringComparison.Ordinal);
        Assert.Equal("AR", Msa(await ReadAckAsync(reader)));
        Assert.Equal("AA", Msa(await ReadAckAsync(reader)));

        // A frame over the size limit (4 MiB) is refused AR, its readable MSH answered in MSA-2; the connection goes on.
        var oversize = MllpStream.Frame([.. await File.ReadAllBytesAsync(Path.Combine(his, "16_ADT_A04_baisha_lidefu.hl7")),
            .. "NTE|1||"u8.ToArray(), .. Enumerable.Repeat((byte)'x', 5 << 20), (byte)'\r']);
        await stream.WriteAsync(oversize);
        var refused = await ReadAckAsync(reader);
        Assert.Equal("AR", Msa(refused));
        Assert.Contains("MSA|AR|QX2110026-20250506-000412", refused, StringComparison.Ordinal);
        await stream.WriteAsync(first);
        Assert.Equal("AA", Msa(await ReadAckAsync(reader)));
    }
}

/// <summary>Dead letters and replay, on a database of their own: the order of arrival is the point of the test.</summary>
public abstract class DeadLetterTests(HubFactory hub) : AdapterTestBase(hub)
{
    [Fact]
    public async Task Frames_of_an_HTTP_body_that_are_no_HL7_message_are_refused_AR_and_not_kept_as_dead_letters()
    {
        await SeedOrganizationsAsync();
        var before = await HisCountsAsync();
        var junk = Enumerable.Range(1, 5).SelectMany(n => MllpStream.Frame(Encoding.ASCII.GetBytes($"junk{n}"))).ToArray();

        var (status, acks) = await PostHl7Async([.. junk, .. MllpStream.Frame(LegacyData.Hl7Registration(875_121))]);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var answers = acks.Split('\r').Where(l => l.StartsWith("MSA|", StringComparison.Ordinal)).Select(l => l.Split('|')[1]).ToList();
        Assert.Equal(["AR", "AR", "AR", "AR", "AR", "AA"], answers);
        Assert.Contains("第 3 条消息不以 MSH 段开头", acks, StringComparison.Ordinal);
        Assert.Equal((before.Received + 1, before.Processed + 1), await HisCountsAsync());
    }

    [Fact]
    public async Task A_township_batch_refused_whole_reports_only_why_not_a_summary_of_rows_applied()
    {
        var zip = LegacyData.TownshipBatch(first: 879_021, residents: 1);
        using var broken = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(broken, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            using var source = new System.IO.Compression.ZipArchive(new MemoryStream(zip));
            foreach (var entry in source.Entries)
            {
                using var to = archive.CreateEntry(entry.FullName).Open();
                if (entry.FullName == "manifest.json")
                {
                    to.Write("{ not json"u8);
                }
                else
                {
                    using var from = entry.Open();
                    from.CopyTo(to);
                }
            }
        }

        var response = await PostTownshipAsync(broken.ToArray());

        var stored = await GetJsonAsync(response.Headers.Location!.ToString());
        Assert.Equal("Failed", stored.GetProperty("status").GetString());
        var issue = Assert.Single(stored.GetProperty("outcome").GetProperty("issue").EnumerateArray());
        Assert.Equal("MALFORMED", issue.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());

        // The dead letters of one source are listed alone.
        var id = stored.GetProperty("id").GetInt64();
        var township = (await GetJsonAsync("/adapters/dead-letters?source=township&count=1000")).EnumerateArray().ToList();
        Assert.Contains(township, d => d.GetProperty("id").GetInt64() == id);
        Assert.All(township, d => Assert.Equal("township", d.GetProperty("source").GetString()));
        Assert.DoesNotContain((await GetJsonAsync("/adapters/dead-letters?source=his&count=1000")).EnumerateArray(), d => d.GetProperty("id").GetInt64() == id);
        var unknown = await Client.GetAsync(new Uri("/adapters/dead-letters?source=lis", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("source 'lis'", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_messages_run_together_in_one_MLLP_frame_are_refused_naming_the_second_MSH_and_neither_is_applied()
    {
        var port = FreePort();
        await using var mllpHub = Hub.Restarted(mllpPort: port);
        _ = mllpHub.CreateClient();
        await SeedOrganizationsAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();

        await stream.WriteAsync(MllpStream.Frame([.. LegacyData.Hl7Registration(875_101), .. LegacyData.Hl7Registration(875_102)]));
        var nak = await ReadAckAsync(new MllpStream(stream, 1 << 20));

        Assert.Equal("AR", Msa(nak));
        Assert.Contains("MSA|AR|BENCH-000875101", nak, StringComparison.Ordinal);
        Assert.Contains("ERR||MSH^2", nak, StringComparison.Ordinal);
        Assert.Contains("second MSH", nak, StringComparison.Ordinal);
        foreach (var n in new[] { 875_101, 875_102 })
        {
            Assert.Empty(await SearchAsync<Patient>($"Patient?identifier=urn:interophub:sid:mrn:QX2100012|{7_000_000 + n:D10}"));
        }
    }

    [Fact]
    public async Task A_cancelled_report_cancels_every_result_it_had_also_those_the_cancelling_message_does_not_list()
    {
        await SeedOrganizationsAsync();
        var sample = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "29_ORU_R01_countyLIS_dengxiaojun_critical_LF.hl7")))
            .Replace("LIS20250602-1173", "LIS20250602-9173", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(sample.Replace("QX2100012-LIS-20250603-000032", "ORU-CANCEL-1", StringComparison.Ordinal)))).Ack));
        var report = Assert.Single(await SearchAsync<DiagnosticReport>("DiagnosticReport?identifier=LIS20250602-9173"));
        Assert.Equal(3, report.Result.Count);

        // The LIS withdraws the report (OBR-25 X), naming only the potassium result (OBX-11 X).
        var lines = sample.Replace("QX2100012-LIS-20250603-000032", "ORU-CANCEL-2", StringComparison.Ordinal).Split('\n').ToList();
        lines = [.. lines.Where(l => !l.StartsWith("OBX|2|", StringComparison.Ordinal) && !l.StartsWith("OBX|3|", StringComparison.Ordinal) && !l.StartsWith("NTE|", StringComparison.Ordinal))];
        lines = [.. lines.Select(l => l.StartsWith("OBR|", StringComparison.Ordinal) ? l.Replace("||CH|F|", "||CH|X|", StringComparison.Ordinal)
            : l.StartsWith("OBX|1|", StringComparison.Ordinal) ? l.Replace("|HH|||F|", "|HH|||X|", StringComparison.Ordinal) : l)];
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\n', lines)));
        Assert.True(Msa(ack) == "AA", ack);

        var cancelled = Assert.Single(await SearchAsync<DiagnosticReport>("DiagnosticReport?identifier=LIS20250602-9173"));
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Cancelled, cancelled.Status);
        Assert.Equal(3, cancelled.Result.Count);
        var results = await SearchAsync<Observation>($"Observation?_id={string.Join(',', cancelled.Result.Select(r => r.Reference!.Split('/')[1]))}");
        Assert.Equal(3, results.Count);
        Assert.All(results, o => Assert.Equal(ObservationStatus.Cancelled, o.Status));
    }

    [Fact]
    public async Task An_unmapped_local_code_is_counted_in_the_status_once_per_applied_message_and_a_resend_adds_nothing()
    {
        await SeedOrganizationsAsync();
        var code = $"U{Guid.NewGuid():N}"[..10].ToUpperInvariant();
        var sample = await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "29_ORU_R01_countyLIS_dengxiaojun_critical_LF.hl7"));
        byte[] Message(string controlId) => Encoding.UTF8.GetBytes(sample
            .Replace("QX2100012-LIS-20250603-000032", controlId, StringComparison.Ordinal)
            .Replace("UREA^尿素", $"{code}^尿素", StringComparison.Ordinal));
        async Task<long?> CountedAsync() => (await GetJsonAsync("/adapters/status")).GetProperty("unmappedCodes").EnumerateArray()
            .Where(c => c.GetProperty("code").GetString()!.EndsWith($"|{code}", StringComparison.Ordinal))
            .Select(c => (long?)c.GetProperty("count").GetInt64()).SingleOrDefault();

        var before = await CountedAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(Message("UNMAPPED-COUNT-01"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Message("UNMAPPED-COUNT-01"))).Ack));
        var once = await CountedAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(Message("UNMAPPED-COUNT-02"))).Ack));

        Assert.Null(before);
        Assert.Equal(1, once);
        Assert.Equal(2, await CountedAsync());
    }

    [Fact]
    public async Task A_spouse_the_HIS_sends_again_without_a_phone_loses_it_as_kin_the_HIS_alone_writes_whole()
    {
        await SeedOrganizationsAsync();
        static byte[] WithSpouse(int n, string controlId, string phone) => Encoding.UTF8.GetBytes(
            Encoding.UTF8.GetString(LegacyData.Hl7Registration(n)).Replace($"BENCH-{n:D9}", controlId, StringComparison.Ordinal)
            + $"NK1|1|钱丽|SPO^配偶^HL70063||{phone}\r");

        Assert.Equal("AA", Msa((await PostHl7Async(WithSpouse(990_001, "KIN-PHONE-1", "^PRN^CP^^^^^^^^^13900009999"))).Ack));
        var before = Assert.Single(await SearchAsync<RelatedPerson>("RelatedPerson?name=钱丽"));
        Assert.Equal("AA", Msa((await PostHl7Async(WithSpouse(990_001, "KIN-PHONE-2", ""))).Ack));
        var after = Assert.Single(await SearchAsync<RelatedPerson>("RelatedPerson?name=钱丽"));

        Assert.Equal("13900009999", Assert.Single(before.Telecom).Value);
        Assert.Equal(before.Id, after.Id);
        Assert.Empty(after.Telecom);
    }

    [Fact]
    public async Task HIS_messages_about_different_persons_arriving_together_share_transactions_and_one_the_store_refuses_costs_only_itself()
    {
        await SeedOrganizationsAsync();
        var before = (await GetJsonAsync("/adapters/status")).GetProperty("hisSharedTransactions");
        var good = new List<int>();
        var refused = new List<int>();
        JsonElement shared = default;
        for (var round = 0; round < 10; round++)
        {
            // In odd rounds, person a's MRN is on two stored Patients of two ID numbers (not one person, so not merged):
            // the conditional update of its message is ambiguous (412), which only the store finds, so a transaction the
            // message shares fails and each of its messages applies alone. (In a round where every message queues behind one group, that group fails: the
            // even rounds, without it, show messages sharing a transaction that commits.)
            var first = 610_000 + (round * 20);
            var a = round % 2 == 1 ? first + 6 : -1;
            foreach (var copy in a < 0 ? [] : new[] { "a", "b" })
            {
                var patient = new Patient { Id = $"twin-{a}-{copy}" };
                patient.Identifier.Add(new Identifier("urn:interophub:sid:mrn:QX2100012", (7_000_000 + a).ToString("D10", System.Globalization.CultureInfo.InvariantCulture)));
                patient.Identifier.Add(new Identifier("urn:oid:2.16.156.10011.1.3", LegacyData.IdNumber(copy == "a" ? a : a + 29_000)));
                Assert.Equal(HttpStatusCode.Created, (await Client.PutAsync(new Uri($"/fhir/Patient/{patient.Id}", UriKind.Relative), Fhir.Content(patient))).StatusCode);
            }

            // Person first + 9's visit number is first + 3's: the two messages write one Encounter, so they never share
            // a transaction; the first applied owns the visit and the other is refused (another patient's visit).
            var persons = Enumerable.Range(first, 13).ToList();
            var answers = await Task.WhenAll(persons.Select(n => PostHl7Async(n != first + 9 ? LegacyData.Hl7Registration(n)
                : Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(LegacyData.Hl7Registration(n)).Replace($"MZ{n:D12}", $"MZ{first + 3:D12}", StringComparison.Ordinal)))));
            foreach (var (n, (status, ack)) in persons.Zip(answers).Where(p => p.First != first + 3 && p.First != first + 9))
            {
                // The ambiguous person is the message's conflict, not the hub's failure: DUPLICATE_KEY at PID-3, 205.
                Assert.True(n == a ? Msa(ack) == "AE" && status == HttpStatusCode.BadRequest && ack.Contains("DUPLICATE_KEY", StringComparison.Ordinal)
                    && ack.Contains("PID^1^3", StringComparison.Ordinal) && ack.Contains("|205", StringComparison.Ordinal) : Msa(ack) == "AA", $"{n}: {ack}");
            }

            var sharing = new[] { answers[3].Ack, answers[9].Ack };
            Assert.Single(sharing, ack => Msa(ack) == "AA");
            Assert.Single(sharing, ack => Msa(ack) == "AE" && ack.Contains("UNKNOWN_REFERENCE", StringComparison.Ordinal));
            good.AddRange(persons.Where(n => n != a && n != first + 3 && n != first + 9));
            if (a > 0)
            {
                refused.Add(a);
            }

            var visit = Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier=MZ{first + 3:D12}"));
            Assert.Equal("1", visit.Meta?.VersionId);
            shared = (await GetJsonAsync("/adapters/status")).GetProperty("hisSharedTransactions");
            if (shared.GetProperty("messages").GetInt64() > before.GetProperty("messages").GetInt64()
                && shared.GetProperty("failed").GetInt64() > before.GetProperty("failed").GetInt64())
            {
                break;
            }
        }

        // Messages did share transactions, and a shared transaction did fail (the refused message was in it).
        Assert.True(shared.GetProperty("messages").GetInt64() > before.GetProperty("messages").GetInt64(), shared.ToString());
        Assert.True(shared.GetProperty("failed").GetInt64() > before.GetProperty("failed").GetInt64(), shared.ToString());

        // Every accepted message wrote its Patient and its visit exactly once; the refused ones wrote nothing.
        foreach (var n in good)
        {
            Assert.Single(await SearchAsync<Patient>($"Patient?identifier={(7_000_000 + n).ToString("D10", System.Globalization.CultureInfo.InvariantCulture)}"));
            Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier=MZ{n:D12}"));
        }

        var dead = (await GetJsonAsync("/adapters/dead-letters?count=1000")).EnumerateArray().Select(d => d.GetProperty("messageId").GetString()).ToHashSet();
        foreach (var n in refused)
        {
            Assert.Empty(await SearchAsync<Encounter>($"Encounter?identifier=MZ{n:D12}"));
            Assert.All(await SearchAsync<Patient>($"Patient?identifier={(7_000_000 + n).ToString("D10", System.Globalization.CultureInfo.InvariantCulture)}"),
                p => Assert.Equal("1", p.Meta?.VersionId));
            Assert.Contains($"QX2100012|BENCH-{n:D9}", dead);
        }

        foreach (var n in good)
        {
            Assert.DoesNotContain($"QX2100012|BENCH-{n:D9}", dead);
        }
    }

    [Fact]
    public async Task A_message_about_an_unknown_visit_is_a_dead_letter_and_its_replay_applies_it_once_the_visit_exists()
    {
        await SeedOrganizationsAsync();
        var his = Path.Combine(Legacy, "his");
        await PostSamplesAcknowledgedAsync("16_ADT_A04_baisha_lidefu.hl7", "17_REF_I12_baisha_lidefu_up.hl7", "18_REF_I13_county_lidefu_accepted.hl7");

        // The transfer (A02) arrives before the admission (A01) it moves.
        var (status, ack) = await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(his, "22_ADT_A02_county_lidefu_transfer.hl7")));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("AE", Msa(ack));
        Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);

        var dead = (await GetJsonAsync("/adapters/dead-letters")).EnumerateArray().ToList();
        var letter = Assert.Single(dead, d => d.GetProperty("messageId").GetString() == "QX2100012|QX2100012-20250509-000207");
        Assert.Contains("UNKNOWN_REFERENCE", letter.GetProperty("outcome").ToString(), StringComparison.Ordinal);

        Assert.Equal("AA", Msa((await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(his, "19_ADT_A01_county_lidefu.hl7")))).Ack));
        var replay = await Client.PostAsync(new Uri($"/adapters/dead-letters/{letter.GetProperty("id").GetInt64()}/replay", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        var replayed = JsonDocument.Parse(await replay.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Processed", replayed.GetProperty("status").GetString());
        Assert.DoesNotContain((await GetJsonAsync("/adapters/dead-letters")).EnumerateArray(), d => d.GetProperty("id").GetInt64() == letter.GetProperty("id").GetInt64());

        // Applied now, it is no dead letter: replaying it again would reapply an old event.
        var again = await Client.PostAsync(new Uri($"/adapters/dead-letters/{letter.GetProperty("id").GetInt64()}/replay", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("not a dead letter", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // A batch replay with nothing left to fix changes nothing.
        var all = await Client.PostAsync(new Uri("/adapters/dead-letters/replay", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.OK, all.StatusCode);
    }


    [Fact]
    public async Task A_township_upload_that_is_no_zip_or_a_damaged_one_or_certificates_that_are_no_XML_are_415_or_400_with_an_outcome_and_not_stored()
    {
        async Task<long> ReceivedAsync() => (await GetJsonAsync("/adapters/status")).GetProperty("sources").EnumerateArray()
            .Where(s => s.GetProperty("source").GetString() is "township" or "birth-certificate").Sum(s => s.GetProperty("received").GetInt64());
        var before = await ReceivedAsync();
        using var zipped = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(zipped, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            await using var entry = archive.CreateEntry("manifest.json").Open();
            await entry.WriteAsync(Encoding.UTF8.GetBytes(new string('x', 2000)));
        }

        // A zip whose directory reads but whose entry's data was damaged in transit: its CRC-32 no longer matches.
        using var stored = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(stored, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            await using var entry = archive.CreateEntry("manifest.json", System.IO.Compression.CompressionLevel.NoCompression).Open();
            await entry.WriteAsync(Encoding.UTF8.GetBytes(new string('x', 2000)));
        }

        var damaged = stored.ToArray();
        damaged[30 + "manifest.json".Length + 100] = (byte)'y';

        foreach (var (url, type, body, expected) in new[]
        {
            ("/adapters/township/batches", "text/plain", "hello"u8.ToArray(), HttpStatusCode.UnsupportedMediaType),
            ("/adapters/township/batches", "application/json", "{\"a\":1}"u8.ToArray(), HttpStatusCode.UnsupportedMediaType),
            ("/adapters/township/batches", "application/zip", "hello"u8.ToArray(), HttpStatusCode.BadRequest),
            // A zip cut short: its signature is there, its central directory is not.
            ("/adapters/township/batches", "application/zip", zipped.ToArray()[..(int)(zipped.Length / 2)], HttpStatusCode.BadRequest),
            ("/adapters/township/batches", "application/zip", damaged, HttpStatusCode.BadRequest),
            ("/adapters/birth-certificates", "application/json", "{\"a\":1}"u8.ToArray(), HttpStatusCode.UnsupportedMediaType),
            ("/adapters/birth-certificates", "text/plain", "<BirthCertificateBatch/>"u8.ToArray(), HttpStatusCode.UnsupportedMediaType),
        })
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(type);
            var response = await Client.PostAsync(new Uri(url, UriKind.Relative), content);

            Assert.Equal(expected, response.StatusCode);
            var outcome = await Fhir.Read<OperationOutcome>(response);
            Assert.NotEmpty(outcome.Issue);
            if (body == damaged)
            {
                Assert.Contains("manifest.json", outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
            }
        }

        Assert.Equal(before, await ReceivedAsync());
    }

    /// <summary>
    /// A referral sample of the county (17, 18, 20…) under referral number <paramref name="key"/> and control id
    /// <paramref name="controlId"/>, without its PV1 (the visit numbers are the samples'), each other segment through
    /// <paramref name="edit"/>; the ACK.
    /// </summary>
    private async Task<string> PostReferralSampleAsync(string sample, string key, string controlId, Func<string, string>? edit = null)
    {
        var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZZ-QX2110026-20250506-0007", key, StringComparison.Ordinal);
        var lines = text.Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal)).Select(l => l.StartsWith("MSH|", StringComparison.Ordinal)
            ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : f)) : edit?.Invoke(l) ?? l);
        return (await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', lines)))).Ack;
    }

    [Fact]
    public async Task Replays_of_one_dead_letter_sent_at_once_apply_it_once_and_the_others_are_409()
    {
        await SeedOrganizationsAsync();
        const string Key = "ZZ-QX2110026-20250506-9041";
        Task<string> PostAsync(string sample, string controlId) => PostReferralSampleAsync(sample, Key, controlId);

        // The receiver's acceptance arrives before the referral: a dead letter until the I12 is in.
        Assert.Equal("AE", Msa(await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "RACE-REF-2")));
        var letter = Assert.Single((await GetJsonAsync("/adapters/dead-letters?count=1000")).EnumerateArray(),
            d => d.GetProperty("messageId").GetString() == "QX2100012|RACE-REF-2").GetProperty("id").GetInt64();
        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "RACE-REF-1")));

        var replays = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            Client.PostAsync(new Uri($"/adapters/dead-letters/{letter}/replay", UriKind.Relative), null)));

        Assert.Equal(1, replays.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(3, replays.Count(r => r.StatusCode == HttpStatusCode.Conflict));
        var stored = JsonDocument.Parse(await replays.Single(r => r.StatusCode == HttpStatusCode.OK).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Processed", stored.GetProperty("status").GetString());
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Accepted, Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}")).Status);
    }

    [Fact]
    public async Task A_batch_replay_for_one_reason_replays_only_the_dead_letters_refused_for_it()
    {
        await SeedOrganizationsAsync();
        // Two refused doses: an unknown vaccine code (mended by extending the code table), a wrong check character.
        var unknownCode = Encoding.UTF8.GetString(HisDose(873_171, "REPLAY-REASON-1", "20241108")).Replace("1301^流感疫苗^QXVAC", "9999^新疫苗^QXVAC", StringComparison.Ordinal);
        var badId = LegacyData.IdNumber(873_172);
        var badCheck = Encoding.UTF8.GetString(HisDose(873_172, "REPLAY-REASON-2", "20241108")).Replace(badId, badId[..17] + (badId[17] == '0' ? '1' : '0'), StringComparison.Ordinal);
        Assert.Equal("AE", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(unknownCode))).Ack));
        Assert.Equal("AE", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(badCheck))).Ack));

        var response = await Client.PostAsync(new Uri("/adapters/dead-letters/replay?source=his&reason=UNKNOWN_CODE", UriKind.Relative), null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var replayed = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("messages").EnumerateArray()
            .Select(m => m.GetProperty("messageId").GetString()).ToList();
        Assert.Contains("QX2100012|REPLAY-REASON-1", replayed);
        Assert.DoesNotContain("QX2100012|REPLAY-REASON-2", replayed);

        var unknown = await Client.PostAsync(new Uri("/adapters/dead-letters/replay?reason=NOT_A_REASON", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("UNKNOWN_CODE", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.PostAsync(new Uri("/adapters/dead-letters/replay?source=lis", UriKind.Relative), null)).StatusCode);
    }

    [Fact]
    public async Task A_pregnancy_registered_for_a_resident_of_an_earlier_batch_recorded_as_a_man_is_applied_with_a_warning()
    {
        await SeedOrganizationsAsync();
        var n = Enumerable.Range(873_181, 10).First(i => (LegacyData.IdNumber(i)[16] - '0') % 2 == 1);
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: n, residents: 1))).StatusCode);
        var recordNo = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(n)}")).Identifier
            .Single(i => i.System == "urn:oid:2.16.156.10011.1.2").Value!;

        // The next batch holds only the registration, naming him.
        var csv = Encoding.UTF8.GetBytes("reg_id,record_no,register_date,lmp_date,edd,gest_weeks,gest_days,gravidity,parity_vaginal,parity_cesarean,high_risk,doctor_name,org_code,status,updated_at\r\n"
            + $"YC-QX2110026-{n:D7},{recordNo},2025-05-01,2025-03-10,2025-12-15,7,3,1,0,0,0,何丽萍,QX2110026,active,2025-05-02 08:00:00\r\n");
        var folder = Directory.CreateTempSubdirectory("interophub-registration-").FullName;
        await File.WriteAllBytesAsync(Path.Combine(folder, "maternal_registrations.csv"), csv);
        await File.WriteAllTextAsync(Path.Combine(folder, "manifest.json"), $$"""
            {"manifest_version":"1.0","batch_id":"QX2110026-20250502-{{n % 1000:D3}}","source_system":"QX-PHS","source_institution_code":"QX2110026",
             "export_type":"incremental","sequence":2,"export_time":"2025-05-03T02:00:00+08:00","encoding":"UTF-8",
             "files":[{"name":"maternal_registrations.csv","table":"maternal_registrations","rows":1,"sha256":"{{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(csv))}}"}]}
            """);
        var response = await PostTownshipAsync(SeedLoader.Zip(folder));

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");
        var warning = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "warning");
        Assert.EndsWith(":record_no (column 2)", warning.GetProperty("location")[0].GetString(), StringComparison.Ordinal);
        Assert.Single(await SearchAsync<EpisodeOfCare>($"EpisodeOfCare?identifier=YC-QX2110026-{n:D7}"));
    }

    [Fact]
    public async Task A_township_batch_about_a_patient_the_HIS_registered_keeps_the_hospital_MRN()
    {
        await SeedOrganizationsAsync();

        // A new control ID, so the message is applied before the batch whatever ran before in this class.
        var message = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "16_ADT_A04_baisha_lidefu.hl7")))
            .Replace("QX2110026-20250506-000412", "MERGE-TEST-0001", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(message))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")))).StatusCode);

        var patient = Assert.Single(await SearchAsync<Patient>("Patient?identifier=369902195804121372"));
        Assert.Contains(patient.Identifier, i => i.System == "urn:oid:2.16.156.10011.1.2" && i.Value == "36992110120100023");
        Assert.Contains(patient.Identifier, i => i.Value == "0000021875");
    }

    [Fact]
    public async Task A_deleted_resident_row_retracts_the_health_record_and_rows_naming_it_afterwards_are_unknown_references()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 870_001, residents: 2))).StatusCode);
        var record = "36992110120170001";
        Assert.Single(await SearchAsync<Patient>($"Patient?identifier={record}"));

        static void Delete(List<string> lines, int line, string key, string updatedAt)
        {
            var header = lines[0].Split(',');
            var cells = new string[header.Length];
            Array.Fill(cells, "");
            cells[0] = key;
            cells[Array.IndexOf(header, "status")] = "deleted";
            cells[Array.IndexOf(header, "updated_at")] = updatedAt;
            lines[line] = string.Join(',', cells);
        }

        static void Touch(List<string> lines, int line, string updatedAt) =>
            lines[line] = string.Join(',', lines[line].Split(',')[..^1].Append(updatedAt));

        // Batch 2: resident 1 deleted, then a changed dose of theirs (in the same batch); a deletion of a record never sent.
        var second = Rewrite(LegacyData.TownshipBatch(first: 870_001, residents: 2, sequence: 2), "residents.csv", lines =>
        {
            Delete(lines, 1, record, "2025-06-01 08:00:00");
            Delete(lines, 2, "36992110120179999", "2025-06-01 08:00:00");
        });
        second = Rewrite(second, "immunizations.csv", lines => Touch(lines, 1, "2025-06-02 08:00:00"));
        var issues = (await GetJsonAsync((await PostTownshipAsync(second)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();

        var sameBatch = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal(("immunizations.csv:1:record_no (column 2)", "UNKNOWN_REFERENCE"),
            (sameBatch.GetProperty("location")[0].GetString(), sameBatch.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString()));
        Assert.Single(issues, i => i.GetProperty("diagnostics").GetString()!.Contains("36992110120179999", StringComparison.Ordinal)
            && i.GetProperty("diagnostics").GetString()!.Contains("holds nothing", StringComparison.Ordinal));
        // The person stays, without the health record; the other resident keeps theirs.
        Assert.Empty(await SearchAsync<Patient>($"Patient?identifier={record}"));
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(870_001)}"));
        Assert.DoesNotContain(person.Identifier, i => i.Value == record);
        // Only the township ever reported them: the record is no longer in use.
        Assert.False(person.Active);
        Assert.NotEqual(false, Assert.Single(await SearchAsync<Patient>("Patient?identifier=36992110120170002")).Active);

        // Batch 3: a later dose of the deleted resident is an unknown reference too.
        var third = Rewrite(LegacyData.TownshipBatch(first: 870_001, residents: 1, sequence: 3), "immunizations.csv", lines => Touch(lines, 1, "2025-06-03 08:00:00"));
        var later = (await GetJsonAsync((await PostTownshipAsync(third)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var unknown = Assert.Single(later, i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal("UNKNOWN_REFERENCE", unknown.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_deleted_resident_row_leaves_a_person_a_hospital_reported_too_in_use()
    {
        await SeedOrganizationsAsync();
        const int N = 884_301;
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        var idNumber = LegacyData.IdNumber(N);
        // A result: the hospital names the person (its MRN, the ID number) without maintaining their record.
        var result = $"MSH|^~\\&|QXLIS|QX2100012|IHUB|QX-PLATFORM|20250601090000||ORU^R01^ORU_R01|RETRACT-RES-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||0000884301^^^QX2100012^MR~{idNumber}^^^&2.16.156.10011.1.3&ISO^NNCHN||居民{N}||{idNumber[6..14]}|{((idNumber[16] - '0') % 2 == 1 ? "M" : "F")}\r"
            + "ORC|RE||RETRACT-LAB-884301\r"
            + "OBR|1||RETRACT-LAB-884301^QXLIS|BIO-RF^肾功能^QXLIS|||20250601080000|||||||||||||||20250601085000||CH|F\r"
            + "OBX|1|NM|NA^钠^QXLIS||140|mmol/L|137-147||||F\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(result))).Ack));

        var deletion = Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "residents.csv", lines =>
        {
            var header = lines[0].Split(',');
            var cells = new string[header.Length];
            Array.Fill(cells, "");
            cells[0] = "369921101201" + (N % 100_000).ToString("D5", System.Globalization.CultureInfo.InvariantCulture);
            cells[Array.IndexOf(header, "status")] = "deleted";
            cells[Array.IndexOf(header, "updated_at")] = "2025-06-02 08:00:00";
            lines[1] = string.Join(',', cells);
        });
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(deletion)).StatusCode);

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={idNumber}"));
        Assert.DoesNotContain(person.Identifier, i => i.System == "urn:oid:2.16.156.10011.1.2");
        Assert.Contains(person.Identifier, i => i.Value == "0000884301");
        Assert.NotEqual(false, person.Active);
    }

    [Fact]
    public async Task A_second_institutions_MRN_on_a_result_or_referral_joins_the_person_without_changing_their_demographics()
    {
        await SeedOrganizationsAsync();
        // The person as the county hospital's ADT keeps them, under a name of its own.
        var admission = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250401080000||ADT^A28^ADT_A05|SECOND-MRN-A28-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A28|20250401080000\r"
            + "PID|1||0000390412^^^QX2100012^MR~369902196302140930^^^&2.16.156.10011.1.3&ISO^NNCHN||赵建华甲||19630214|M\r"
            + "PV1|1|N\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(admission))).Ack));

        // A referral from 白沙镇卫生院 names them by its own MRN and the ID number (sample 14).
        var referral = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "14_REF_I12_baisha_zhaojianhua_up.hl7")))
            .Replace("QX2110026-20250416-000233", "SECOND-MRN-REF-1", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(referral))).Ack));

        // Later 白沙 names them by its MRN alone: the same person, not a new Patient.
        var byMrnAlone = "MSH|^~\\&|QXHIS|QX2110026|IHUB|QX-PLATFORM|20250501100000||ADT^A31^ADT_A05|SECOND-MRN-A31-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A31|20250501100000\r"
            + "PID|1||0000019342^^^QX2110026^MR||赵建华甲||19630214|M\r"
            + "PV1|1|N\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(byMrnAlone))).Ack));

        var person = Assert.Single(await SearchAsync<Patient>("Patient?identifier=369902196302140930"));
        Assert.Contains(person.Identifier, i => i.Value == "0000390412");
        Assert.Contains(person.Identifier, i => i.Value == "0000019342");
        Assert.Equal(person.Id, Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000019342")).Id);
        // The referral's PID did not rename them.
        Assert.Equal("赵建华甲", person.Name[0].Text ?? person.Name[0].Family + string.Concat(person.Name[0].Given));
    }

    [Fact]
    public async Task A_referral_completed_without_any_visit_is_completed_with_the_notice_as_its_summary()
    {
        await SeedOrganizationsAsync();
        // 李德福's up-referral under a key of its own; the arrival (IP) and the completion (C) name no visit (PV1 is optional, §6).
        async Task<byte[]> OwnReferralAsync(string sample, string controlId) => Encoding.UTF8.GetBytes(string.Join('\r',
            (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-9007", StringComparison.Ordinal)
                .Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal))
                .Select(l => l.StartsWith("MSH|", StringComparison.Ordinal) ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : f)) : l)));
        foreach (var (sample, controlId) in new[]
        {
            ("17_REF_I12_baisha_lidefu_up.hl7", "NOVISIT-REF-1"), ("18_REF_I13_county_lidefu_accepted.hl7", "NOVISIT-REF-2"),
            ("20_REF_I13_county_lidefu_arrived.hl7", "NOVISIT-REF-3"), ("24_REF_I13_county_lidefu_completed.hl7", "NOVISIT-REF-4"),
        })
        {
            var (_, ack) = await PostHl7Async(await OwnReferralAsync(sample, controlId));
            Assert.True(Msa(ack) == "AA", $"{sample}: {ack}");
        }

        var task = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>("Task?identifier=ZZ-QX2110026-20250506-9007"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Completed, task.Status);
        var notice = Assert.Single(task.Output, o => o.Value is ResourceReference { Reference: { } r } && r.StartsWith("DocumentReference/", StringComparison.Ordinal));
        var document = await Fhir.Read<DocumentReference>(await Client.GetAsync(new Uri("/fhir/" + ((ResourceReference)notice.Value).Reference, UriKind.Relative)));
        Assert.Equal(task.For!.Reference, document.Subject!.Reference);
        Assert.NotEmpty(document.Content.Single().Attachment.Data!);
    }

    [Fact]
    public async Task A_referral_changed_by_an_I13_P_without_DG1_keeps_its_diagnoses_and_one_without_RF1_10_keeps_its_reason()
    {
        await SeedOrganizationsAsync();
        var original = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "17_REF_I12_baisha_lidefu_up.hl7")))
            .Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-9017", StringComparison.Ordinal);
        async Task PostAsync(string controlId, Func<string, bool> keep, Func<string, string>? change = null)
        {
            var lines = original.Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal) && keep(l)).Select(l => l.StartsWith("MSH|", StringComparison.Ordinal)
                ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : i == 8 && controlId != "I13P-REF-1" ? "REF^I13^REF_I12" : f)) : change?.Invoke(l) ?? l);
            var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', lines)));
            Assert.True(Msa(ack) == "AA", ack);
        }

        static bool IsDiagnosis(CodeableConcept reason) => reason.Coding.Any(c => c.Code == "I10");
        await PostAsync("I13P-REF-1", _ => true);
        var sent = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-9017"));
        Assert.Contains(sent.ReasonCode, IsDiagnosis);
        Assert.Contains(sent.ReasonCode, r => r.Coding.Any(c => c.Code == "O"));

        // A content change (I13 P) with another RF1-10 and no DG1: the diagnosis stays, the reason is the new one.
        await PostAsync("I13P-REF-2", l => !l.StartsWith("DG1|", StringComparison.Ordinal),
            l => l.StartsWith("RF1|", StringComparison.Ordinal) ? l.Replace("O^病情需要^HL70336", "P^患者意愿^HL70336", StringComparison.Ordinal) : l);
        var changed = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-9017"));
        Assert.Contains(changed.ReasonCode, IsDiagnosis);
        Assert.Contains(changed.ReasonCode, r => r.Coding.Any(c => c.Code == "P"));
        Assert.DoesNotContain(changed.ReasonCode, r => r.Coding.Any(c => c.Code == "O"));

        // One with a diagnosis and no RF1-10: the reason stays.
        await PostAsync("I13P-REF-3", _ => true, l => l.StartsWith("RF1|", StringComparison.Ordinal) ? l.Replace("P^患者意愿^HL70336", "", StringComparison.Ordinal)
            .Replace("O^病情需要^HL70336", "", StringComparison.Ordinal) : l);
        var again = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-9017"));
        Assert.Single(again.ReasonCode, IsDiagnosis);
        Assert.Contains(again.ReasonCode, r => r.Coding.Any(c => c.Code == "P"));

        // A diagnosis without its coding system replaces the diagnoses, and the reason still stays.
        await PostAsync("I13P-REF-4", l => true, l => l.StartsWith("RF1|", StringComparison.Ordinal) ? l.Replace("O^病情需要^HL70336", "", StringComparison.Ordinal)
            : l.StartsWith("DG1|", StringComparison.Ordinal) ? l.Replace("I10^原发性高血压(3级,很高危)^ICD10", "E11.9^2型糖尿病^", StringComparison.Ordinal) : l);
        var uncoded = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-9017"));
        Assert.DoesNotContain(uncoded.ReasonCode, IsDiagnosis);
        Assert.Contains(uncoded.ReasonCode, r => r.Coding.Any(c => c.Code == "E11.9"));
        Assert.Contains(uncoded.ReasonCode, r => r.Coding.Any(c => c.Code == "P"));
    }

    [Fact]
    public async Task An_I13_P_on_an_accepted_referral_keeps_its_local_status_and_an_I13_for_an_unknown_referral_is_located_at_RF1_6()
    {
        await SeedOrganizationsAsync();
        async Task<string> PostAsync(string sample, string controlId, string key, string? trigger = null)
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZZ-QX2110026-20250506-0007", key, StringComparison.Ordinal);
            var lines = text.Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal)).Select(l => l.StartsWith("MSH|", StringComparison.Ordinal)
                ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : i == 8 && trigger is not null ? trigger : f)) : l);
            return (await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', lines)))).Ack;
        }

        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "BS-REF-1", "ZZ-QX2110026-20250506-9027")));
        Assert.Equal("AA", Msa(await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "BS-REF-2", "ZZ-QX2110026-20250506-9027")));
        var accepted = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>("Task?identifier=ZZ-QX2110026-20250506-9027"));

        // The referrer's content change (I13 P) leaves the state as it is (his-hl7v2.md §6), and so the local status that names it.
        var ack = await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "BS-REF-3", "ZZ-QX2110026-20250506-9027", "REF^I13^REF_I12");
        Assert.True(Msa(ack) == "AA", ack);
        var changed = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>("Task?identifier=ZZ-QX2110026-20250506-9027"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Accepted, changed.Status);
        Assert.Equal(accepted.BusinessStatus!.Coding.Single().Code, changed.BusinessStatus!.Coding.Single().Code);

        // An I13 for a referral the hub never received: ERR-2 names RF1-6, the referral number.
        ack = await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "BS-REF-4", "ZZ-QX2110026-20250506-9028");
        Assert.Equal("AE", Msa(ack));
        Assert.StartsWith("ERR||RF1^1^6|", Assert.Single(ack.Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_referral_keeps_its_patient_parties_and_direction_when_a_later_message_names_others()
    {
        await SeedOrganizationsAsync();
        const string Key = "ZZ-QX2110026-20250506-9031";
        async Task<string> PostAsync(string sample, string controlId, string? trigger = null, Func<string, string>? edit = null)
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZZ-QX2110026-20250506-0007", Key, StringComparison.Ordinal);
            var lines = text.Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal)).Select(l => l.StartsWith("MSH|", StringComparison.Ordinal)
                ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : i == 8 && trigger is not null ? trigger : f)) : edit?.Invoke(l) ?? l);
            return (await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', lines)))).Ack;
        }

        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "KEEP-REF-1")));
        var request = Assert.Single(await SearchAsync<ServiceRequest>($"ServiceRequest?identifier={Key}"));
        var task = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}"));

        // The receiver accepts, naming the patient by an MRN of its own that no ID number links to the referred person.
        var ack = await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "KEEP-REF-2",
            edit: l => l.StartsWith("PID|", StringComparison.Ordinal) ? "PID|1||0000875301^^^QX2100012^MR||李某||19580412|M" : l);
        Assert.True(Msa(ack) == "AA", ack);
        Assert.Equal(task.For!.Reference, Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}")).For!.Reference);
        // The referrer changes content (I13 P) naming the other direction and another receiving institution.
        ack = await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "KEEP-REF-3", "REF^I13^REF_I12", l => l
            .Replace("|UP^上转^QXREF|", "|DOWN^下转^QXREF|", StringComparison.Ordinal).Replace("0304^^^QX2100012", "0304^^^QX2100020", StringComparison.Ordinal));
        Assert.True(Msa(ack) == "AA", ack);

        var accepted = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Accepted, accepted.Status);
        Assert.Equal(task.For!.Reference, accepted.For!.Reference);
        Assert.Equal(task.Owner!.Reference, accepted.Owner!.Reference);
        Assert.Equal(task.Requester!.Reference, accepted.Requester!.Reference);
        var changed = Assert.Single(await SearchAsync<ServiceRequest>($"ServiceRequest?identifier={Key}"));
        Assert.Equal(request.Subject!.Reference, changed.Subject!.Reference);
        Assert.Equal(request.Performer.Select(p => p.Reference), changed.Performer.Select(p => p.Reference));
        Assert.Contains(changed.Category.SelectMany(c => c.Coding), c => c.Code == "UP");
        Assert.DoesNotContain(changed.Category.SelectMany(c => c.Coding), c => c.Code == "DOWN");
    }

    [Fact]
    public async Task A_dose_sent_again_with_another_completion_status_drops_what_only_the_old_status_meant()
    {
        await SeedOrganizationsAsync();
        byte[] Dose(int n, string controlId, string completion) => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HisDose(n, controlId, "20250612"))
            .Replace("|M05^^QXMFR|||CP|A", completion == "RE" ? "|M05^^QXMFR|00^家长拒绝^NIP002||RE|A" : $"|M05^^QXMFR|||{completion}|A", StringComparison.Ordinal));
        async Task<Immunization> SendAsync(int n, string controlId, string completion)
        {
            Assert.Equal("AA", Msa((await PostHl7Async(Dose(n, controlId, completion))).Ack));
            return Assert.Single(await SearchAsync<Immunization>($"Immunization?patient.identifier={LegacyData.IdNumber(n)}"));
        }

        // Refused, then given: a completed dose has no reason it was not given (Immunization.statusReason).
        Assert.NotNull((await SendAsync(875_211, "STATUS-1", "RE")).StatusReason);
        var given = await SendAsync(875_211, "STATUS-2", "CP");
        Assert.Equal(Immunization.ImmunizationStatusCodes.Completed, given.Status);
        Assert.Null(given.StatusReason);

        // Partly given, then refused: a dose not given is not a partial one.
        Assert.True((await SendAsync(875_212, "STATUS-3", "PA")).IsSubpotent);
        var refused = await SendAsync(875_212, "STATUS-4", "RE");
        Assert.Equal(Immunization.ImmunizationStatusCodes.NotDone, refused.Status);
        Assert.Null(refused.IsSubpotent);
    }

    [Fact]
    public async Task A_dose_the_hospital_reported_first_hand_stays_so_and_keeps_its_identifier_when_the_township_sends_it_again_and_again()
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("04_ADT_A01_county_wangxiuying_delivery.hl7", "05_ADT_A01_county_newborn.hl7", "06_VXU_V04_county_newborn_birthdoses.hl7");
        await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")));
        const string Row = "Immunization?identifier=urn:interophub:sid:township-vaccination|JZ-QX2110026-0000301";
        // The township's 历史补录 row of the hospital's HepB birth dose, sent again in two later batches: each writes a version.
        for (var n = 1; n <= 2; n++)
        {
            var day = n;
            var before = Assert.Single(await SearchAsync<Immunization>(Row)).Meta!.VersionId;
            var batch = Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")), "immunizations.csv", lines =>
            {
                lines.RemoveRange(2, lines.Count - 2);
                lines[1] = string.Join(',', lines[1].Split(',')[..^1].Append($"2025-06-0{day} 08:00:00"));
            }, batchId: $"QX2110026-2025060{day}-96{day}");
            Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);
            Assert.NotEqual(before, Assert.Single(await SearchAsync<Immunization>(Row)).Meta!.VersionId);
        }

        var dose = Assert.Single(await SearchAsync<Immunization>(Row));
        Assert.True(dose.PrimarySource);
        Assert.Null(dose.ReportOrigin);
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
        Assert.Contains("-962#immunizations.csv:1", dose.Meta!.Source, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_down_referral_naming_an_up_referral_never_received_is_applied_with_a_warning_at_RF1_11()
    {
        await SeedOrganizationsAsync();
        async Task<string> PostAsync(string sample, string controlId, string upKey, string downKey)
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
                .Replace("ZZ-QX2110026-20250506-0007", upKey, StringComparison.Ordinal)
                .Replace("ZZ-QX2100012-20250514-0031", downKey, StringComparison.Ordinal);
            // Without PV1: the samples' visit belongs to other tests of this hub.
            var lines = text.Split('\r').Where(l => !l.StartsWith("PV1|", StringComparison.Ordinal)).Select(l => l.StartsWith("MSH|", StringComparison.Ordinal)
                ? string.Join('|', l.Split('|').Select((f, i) => i == 9 ? controlId : f)) : l);
            var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', lines)));
            Assert.True(Msa(ack) == "AA", ack);
            return ack;
        }

        var unknown = await PostAsync("25_REF_I12_county_lidefu_down.hl7", "RF111-DOWN-1", "ZZ-QX2110026-20250506-9911", "ZZ-QX2100012-20250514-9931");
        await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "RF111-UP-2", "ZZ-QX2110026-20250506-9912", "-");
        var known = await PostAsync("25_REF_I12_county_lidefu_down.hl7", "RF111-DOWN-2", "ZZ-QX2110026-20250506-9912", "ZZ-QX2100012-20250514-9932");

        var warning = Assert.Single(unknown.Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal));
        Assert.StartsWith("ERR||RF1^1^11|", warning, StringComparison.Ordinal);
        Assert.Contains("|W|", warning, StringComparison.Ordinal);
        Assert.Contains("ZZ-QX2110026-20250506-9911", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(known.Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal));
        var request = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2100012-20250514-9931"));
        Assert.Equal("ZZ-QX2110026-20250506-9911", Assert.Single(request.BasedOn).Identifier!.Value);
    }

    [Fact]
    public async Task Retracting_a_pregnancy_registration_leaves_its_visits_without_a_link_to_the_removed_episode()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")))).StatusCode);
        // A registration of its own (the sample's first, under another reg_id) and two visits of it, so the sample's stays.
        var registrations = File.ReadAllLines(Path.Combine(Legacy, "township", "batch-001", "maternal_registrations.csv"));
        var visitLines = File.ReadAllLines(Path.Combine(Legacy, "township", "batch-001", "maternal_visits.csv"));
        var own = Rewrite(Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-002")), "maternal_registrations.csv", lines =>
        {
            lines.Add(registrations[0]);
            lines.Add(registrations[1].Replace("YC-QX2110026-0000001", "YC-QX2110026-0009801", StringComparison.Ordinal));
            lines.Add("");
        }, batchId: "QX2110026-20250731-904"), "maternal_visits.csv", lines =>
        {
            lines.Add(visitLines[0]);
            lines.Add(visitLines[1].Replace("YC-QX2110026-0000001", "YC-QX2110026-0009801", StringComparison.Ordinal).Replace("YF-QX2110026-0000001", "YF-QX2110026-0009811", StringComparison.Ordinal));
            lines.Add(visitLines[2].Replace("YC-QX2110026-0000001", "YC-QX2110026-0009801", StringComparison.Ordinal).Replace("YF-QX2110026-0000002", "YF-QX2110026-0009812", StringComparison.Ordinal));
            lines.Add("");
        }, batchId: "QX2110026-20250731-904");
        var first = await GetJsonAsync((await PostTownshipAsync(own)).Headers.Location!.ToString());
        Assert.DoesNotContain(first.GetProperty("outcome").GetProperty("issue").EnumerateArray(), i => i.GetProperty("severity").GetString() == "error");
        var episode = Assert.Single(await SearchAsync<EpisodeOfCare>("EpisodeOfCare?identifier=YC-QX2110026-0009801"));
        var visits = await SearchAsync<Encounter>($"Encounter?episode-of-care=EpisodeOfCare/{episode.Id}");
        Assert.Equal(3, visits.Count);

        var batch = Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-002")), "maternal_registrations.csv", lines =>
        {
            lines.Add(registrations[0]);
            lines.Add(DeletedRow(registrations[0], "reg_id", "YC-QX2110026-0009801", "2025-07-30 09:00:00"));
            lines.Add("");
        }, batchId: "QX2110026-20250731-905");
        var report = await GetJsonAsync((await PostTownshipAsync(batch)).Headers.Location!.ToString());
        Assert.DoesNotContain(report.GetProperty("outcome").GetProperty("issue").EnumerateArray(), i => i.GetProperty("severity").GetString() == "error");

        Assert.Empty(await SearchAsync<EpisodeOfCare>("EpisodeOfCare?identifier=YC-QX2110026-0009801"));
        Assert.Empty(await SearchAsync<Encounter>($"Encounter?episode-of-care=EpisodeOfCare/{episode.Id}"));
        // The visits other rows wrote stay (the registration's own first visit goes with it).
        var kept = await SearchAsync<Encounter>($"Encounter?_id={string.Join(',', visits.Select(v => v.Id))}");
        Assert.Equal(2, kept.Count);
        Assert.All(kept, v => Assert.Empty(v.EpisodeOfCare));
        Assert.Single(await SearchAsync<EpisodeOfCare>("EpisodeOfCare?identifier=YC-QX2110026-0000001"));
    }

    [Fact]
    public async Task A_maternal_visit_must_name_a_registration_the_hub_has_for_the_same_woman_and_not_predate_it()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")))).StatusCode);
        var template = File.ReadAllLines(Path.Combine(Legacy, "township", "batch-001", "maternal_visits.csv"));
        string Visit(string visitId, string regId, string recordNo, string? visitDate = null)
        {
            var header = template[0].Split(',');
            var cells = template[1].Split(',');
            cells[0] = visitId;
            cells[Array.IndexOf(header, "reg_id")] = regId;
            cells[Array.IndexOf(header, "record_no")] = recordNo;
            cells[Array.IndexOf(header, "updated_at")] = "2025-07-30 09:00:00";
            if (visitDate is not null)
            {
                cells[Array.IndexOf(header, "visit_date")] = visitDate;
            }

            return string.Join(',', cells);
        }

        // Registrations of an earlier batch: YC-…0001 is 36992110120200041's (registered 2024-07-22); 36992110120100057 is another woman.
        var batch = Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-002")), "maternal_visits.csv", lines =>
        {
            lines.Add(template[0]);
            lines.Add(Visit("YF-QX2110026-0009901", "YC-QX2110026-9999999", "36992110120200041"));
            lines.Add(Visit("YF-QX2110026-0009902", "YC-QX2110026-0000001", "36992110120100057"));
            lines.Add(Visit("YF-QX2110026-0009903", "YC-QX2110026-0000001", "36992110120200041"));
            lines.Add(Visit("YF-QX2110026-0009904", "YC-QX2110026-0000001", "36992110120200041", visitDate: "2024-07-21"));
            lines.Add("");
        }, batchId: "QX2110026-20250731-903");
        var all = (await GetJsonAsync((await PostTownshipAsync(batch)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var issues = all.Where(i => i.GetProperty("severity").GetString() == "error")
            .Select(i => (Location: i.GetProperty("location")[0].GetString()!, Code: i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString()))
            .OrderBy(i => i.Location, StringComparer.Ordinal).ToList();

        Assert.Equal(["maternal_visits.csv:1", "maternal_visits.csv:2", "maternal_visits.csv:4"], issues.Select(i => string.Join(':', i.Location.Split(':')[..2])));
        Assert.Equal(["UNKNOWN_REFERENCE", "UNKNOWN_REFERENCE", "IMPOSSIBLE_DATE"], issues.Select(i => i.Code));
        Assert.EndsWith(":visit_date (column 6)", issues[2].Location, StringComparison.Ordinal);
        // The registration the hub never had is named by its column, not by the store's criteria.
        Assert.Equal("maternal_visits.csv:1:reg_id (column 2)", issues[0].Location);
        Assert.Contains(all, i => i.GetProperty("diagnostics").GetString()!.EndsWith(": reg_id YC-QX2110026-9999999 的建册记录不在平台中（从未上报，或已在之前的批次中删除）", StringComparison.Ordinal));
        Assert.Empty(await SearchAsync<Encounter>("Encounter?identifier=YF-QX2110026-0009901"));
        Assert.Empty(await SearchAsync<Encounter>("Encounter?identifier=YF-QX2110026-0009902"));
        Assert.Empty(await SearchAsync<Encounter>("Encounter?identifier=YF-QX2110026-0009904"));
        var applied = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=YF-QX2110026-0009903"));
        var episode = Assert.Single(await SearchAsync<EpisodeOfCare>("EpisodeOfCare?identifier=YC-QX2110026-0000001"));
        Assert.Equal($"EpisodeOfCare/{episode.Id}", applied.EpisodeOfCare.Single().Reference);
    }

    [Fact]
    public async Task A_township_row_naming_a_resident_only_the_HIS_reported_is_refused_until_a_batch_sends_the_resident()
    {
        await SeedOrganizationsAsync();
        const int n = 884_601;
        const string recordNo = "36992110120184601";
        // The township's own HIS instance gives the patient the health-record number (ZPI-5); the township never sent the resident.
        var registration = Encoding.UTF8.GetString(LegacyData.Hl7Registration(n)).Replace("\rPV1|", $"\rZPI|1|02^城乡居民基本医疗保险||0|{recordNo}\rPV1|", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(registration))).Ack));
        var patient = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={recordNo}"));

        var doseOnly = Rewrite(LegacyData.TownshipBatch(first: n, residents: 1), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1),
            batchId: "QX2110026-20250601-884");
        var issues = (await GetJsonAsync((await PostTownshipAsync(doseOnly)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue")
            .EnumerateArray().Where(i => i.GetProperty("severity").GetString() == "error").ToList();
        var refused = Assert.Single(issues);
        Assert.Equal("UNKNOWN_REFERENCE", refused.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());
        Assert.Equal("immunizations.csv:1:record_no (column 2)", refused.GetProperty("location")[0].GetString());
        Assert.Empty(await SearchAsync<Immunization>($"Immunization?patient=Patient/{patient.Id}"));

        // Once a batch has sent the resident (the same person, by ID number), a later batch's dose of it is applied.
        var withResident = Rewrite(LegacyData.TownshipBatch(first: n, residents: 1), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1),
            batchId: "QX2110026-20250602-884");
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(withResident)).StatusCode);
        var laterDose = Rewrite(doseOnly, "immunizations.csv", _ => { }, batchId: "QX2110026-20250603-884");
        var later = (await GetJsonAsync((await PostTownshipAsync(laterDose)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue");
        Assert.DoesNotContain(later.EnumerateArray(), i => i.GetProperty("severity").GetString() == "error");
        Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{patient.Id}"));
    }

    [Fact]
    public async Task A_corrected_certificate_updates_the_mother_from_the_new_document()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_301));
        var motherId = MotherIdOf(first);
        async Task<string> SendAsync(string xml) =>
            Assert.Single(await PostCertificateAsync(xml), i => i.Details?.Coding[0].Code is "APPLIED" or "UNCHANGED" or "STALE").Details!.Coding[0].Code!;

        Assert.Equal("APPLIED", await SendAsync(first));
        Assert.Equal("母亲7301", Assert.Single(await SearchAsync<Patient>($"Patient?identifier={motherId}")).Name[0].Text);

        // 信息更正: the same certificate, RecordVersion 2, the mother's name corrected (§3 "update the stored data").
        var corrected = first.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Name>母亲7301</Name>", "<Name>母亲七三零一</Name>", StringComparison.Ordinal)
            .Replace("<LastModified>", "<Corrections><Correction><Field>Mother/Name</Field><OldValue>母亲7301</OldValue><NewValue>母亲七三零一</NewValue>"
                + "<Reason>姓名录入错误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><LastModified>", StringComparison.Ordinal);
        Assert.Equal("APPLIED", await SendAsync(corrected));

        var mother = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={motherId}"));
        Assert.Equal("母亲七三零一", mother.Name[0].Text);
        Assert.NotEmpty(mother.Address);
    }

    [Fact]
    public async Task A_dose_of_a_resident_of_an_earlier_batch_and_the_same_dose_from_the_HIS_are_one_Immunization()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 872_001, residents: 1))).StatusCode);
        var id = LegacyData.IdNumber(872_001);
        var sex = (id[16] - '0') % 2 == 1 ? "M" : "F";
        var vxu = "MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20241105120000||VXU^V04^VXU_V04|DOSE-XSRC-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||0000872001^^^QX2100012^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||居民872001||{id[6..14]}|{sex}\r"
            + "ORC|RE||JZ-XSRC-1^QXHIS\r"
            + "RXA|0|1|20241105100000||1301^流感疫苗^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||202409A011|20250930|M05^^QXMFR|||CP|A\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(vxu));
        Assert.True(Msa(ack) == "AA", ack);

        // A later batch reports the same dose; the resident came in the first batch, not in this one.
        var later = LaterDoseBatch(872_001, ("vacc_id", "JZ-QX2110026-XSRC00001"), ("vacc_date", "2024-11-05"), ("updated_at", "2025-06-01 08:00:00"));
        var issues = (await GetJsonAsync((await PostTownshipAsync(later)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        var doses = await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-05");
        var dose = Assert.Single(doses);
        Assert.Contains(dose.Identifier, i => i.Value == "JZ-QX2110026-XSRC00001");
    }

    [Fact]
    public async Task Another_hospitals_transcription_of_a_dose_given_first_hand_adds_its_identifier_and_changes_nothing_else()
    {
        await SeedOrganizationsAsync();
        var (_, ack) = await PostHl7Async(HisDose(873_151, "DOSE-FIRSTHAND-1", "20241107"));
        Assert.True(Msa(ack) == "AA", ack);

        // The township hospital copies the dose from the vaccination card: 历史记录, no vaccinator, another time of day.
        var transcription = Encoding.UTF8.GetString(HisDose(873_151, "DOSE-FIRSTHAND-2", "20241107"))
            .Replace("|QX2100012|IHUB|", "|QX2100039|IHUB|", StringComparison.Ordinal)
            .Replace("^^^QX2100012^MR", "^^^QX2100039^MR", StringComparison.Ordinal)
            .Replace("RXA|0|1|20241107100000|", "RXA|0|1|20241107180000|", StringComparison.Ordinal)
            .Replace("|00^新接种^NIP001|N0107^江燕|^^^QX2100012|", "|01^历史记录^NIP001||^^^QX2100039|", StringComparison.Ordinal);
        (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(transcription));
        Assert.True(Msa(ack) == "AA", ack);

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(873_151)}"));
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}"));
        Assert.True(dose.PrimarySource);
        Assert.StartsWith("2024-11-07T10:00:00", ((FhirDateTime)dose.Occurrence).Value, StringComparison.Ordinal);
        Assert.Contains(dose.Performer, p => p.Actor?.Display == "江燕" || p.Actor?.Reference?.StartsWith("Practitioner/", StringComparison.Ordinal) == true);
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100039");
    }

    [Fact]
    public async Task A_township_row_of_a_dose_the_HIS_reports_too_corrected_to_another_date_leaves_the_hospitals_dose_and_becomes_a_dose_of_its_own()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 874_091, residents: 1))).StatusCode);
        var id = LegacyData.IdNumber(874_091);
        var (_, ack) = await PostHl7Async(HisDose(874_091, "DOSE-XSRC-MOVE", "20241106"));
        Assert.True(Msa(ack) == "AA", ack);
        var report = LaterDoseBatch(874_091, ("vacc_id", "JZ-QX2110026-XSRCMOV01"), ("vacc_date", "2024-11-06"), ("updated_at", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(report)).StatusCode);
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        var shared = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-06"));
        Assert.Contains(shared.Identifier, i => i.Value == "JZ-QX2110026-XSRCMOV01");

        // The township's next version of the row is of another day (§2: rows are replaced whole).
        var moved = Rewrite(LaterDoseBatch(874_091, ("vacc_id", "JZ-QX2110026-XSRCMOV01"), ("vacc_date", "2024-11-08"), ("updated_at", "2025-06-02 08:00:00")),
            "immunizations.csv", _ => { }, batchId: "QX2110026-GEN-000874091-003");
        var issues = (await GetJsonAsync((await PostTownshipAsync(moved)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        // The hospital's dose stays as the hospital reported it; the row's is another dose.
        var hospital = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-06"));
        Assert.Equal(shared.Id, hospital.Id);
        Assert.DoesNotContain(hospital.Identifier, i => i.System == "urn:interophub:sid:township-vaccination");
        Assert.Contains(hospital.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
        var township = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-08"));
        Assert.Contains(township.Identifier, i => i.Value == "JZ-QX2110026-XSRCMOV01");
        Assert.DoesNotContain(township.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
    }

    [Fact]
    public async Task A_township_deletion_of_a_dose_the_HIS_reports_too_takes_back_only_the_township_identifier()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 872_101, residents: 1))).StatusCode);
        var id = LegacyData.IdNumber(872_101);
        var (_, ack) = await PostHl7Async(HisDose(872_101, "DOSE-XSRC-DEL", "20241106"));
        Assert.True(Msa(ack) == "AA", ack);
        var report = LaterDoseBatch(872_101, ("vacc_id", "JZ-QX2110026-XSRCDEL01"), ("vacc_date", "2024-11-06"), ("updated_at", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(report)).StatusCode);
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.Contains(Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-06")).Identifier,
            i => i.Value == "JZ-QX2110026-XSRCDEL01");

        // The township retracts its row (township-export.md §2): only its key, status and updated_at.
        var deletion = Rewrite(LaterDoseBatch(872_101), "immunizations.csv",
            lines => lines[1] = DeletedRow(lines[0], "vacc_id", "JZ-QX2110026-XSRCDEL01", "2025-06-02 08:00:00"), batchId: "QX2110026-GEN-000872101-003");
        var issues = (await GetJsonAsync((await PostTownshipAsync(deletion)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        // The hospital still reports the dose: it stays, without the township's identifier.
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-06"));
        Assert.DoesNotContain(dose.Identifier, i => i.System == "urn:interophub:sid:township-vaccination");
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
    }

    [Fact]
    public async Task A_township_row_naming_a_resident_deleted_in_an_earlier_batch_is_refused_naming_its_record_no()
    {
        await SeedOrganizationsAsync();
        const int N = 873_091;
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        var recordNo = (await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(N)}")).Single().Identifier
            .Single(i => i.System == "urn:oid:2.16.156.10011.1.2").Value!;
        var removal = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "residents.csv", lines => lines[1] = DeletedRow(lines[0], "record_no", recordNo, "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(removal)).StatusCode);

        var later = LaterDoseBatch(N, ("vacc_id", "JZ-QX2110026-GONE00001"), ("updated_at", "2025-06-02 08:00:00"));
        var response = await PostTownshipAsync(Rewrite(later, "immunizations.csv", _ => { }, batchId: "QX2110026-GEN-000873091-003"));

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var refused = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.Contains($"record_no {recordNo}", refused.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Bundle.entry", refused.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        Assert.EndsWith(":record_no (column 2)", refused.GetProperty("location").EnumerateArray().Single().GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_a_duplicate_township_row_of_a_dose_keeps_the_dose_the_other_row_reports()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 873_201, residents: 1))).StatusCode);
        // The same dose entered again under another vacc_id (a 历史补录 by mistake): one Immunization with both.
        var duplicate = LaterDoseBatch(873_201, ("vacc_id", "JZ-QX2110026-DUP000001"), ("updated_at", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(duplicate)).StatusCode);
        const string Original = "Immunization?identifier=urn:interophub:sid:township-vaccination|JZ-QX2110026-000873201";
        Assert.Contains(Assert.Single(await SearchAsync<Immunization>(Original)).Identifier, i => i.Value == "JZ-QX2110026-DUP000001");

        var deletion = Rewrite(LaterDoseBatch(873_201), "immunizations.csv",
            lines => lines[1] = DeletedRow(lines[0], "vacc_id", "JZ-QX2110026-DUP000001", "2025-06-02 08:00:00"), batchId: "QX2110026-GEN-000873201-003");
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(deletion)).StatusCode);

        var dose = Assert.Single(await SearchAsync<Immunization>(Original));
        Assert.DoesNotContain(dose.Identifier, i => i.Value == "JZ-QX2110026-DUP000001");
    }

    [Fact]
    public async Task A_dose_row_whose_date_is_corrected_in_a_batch_that_repeats_its_resident_updates_the_one_Immunization()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 872_201, residents: 1))).StatusCode);

        var later = Rewrite(LegacyData.TownshipBatch(first: 872_201, residents: 1, sequence: 2), "immunizations.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("vacc_date", "2024-12-02"), ("updated_at", "2025-06-01 08:00:00")));
        later = Rewrite(later, "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("phone", "13900000000"), ("updated_at", "2025-06-01 08:00:00")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(later)).StatusCode);

        var dose = Assert.Single(await SearchAsync<Immunization>("Immunization?identifier=urn:interophub:sid:township-vaccination|JZ-QX2110026-000872201"));
        Assert.Equal("2024-12-02", ((FhirDateTime)dose.Occurrence!).Value);
    }

    [Fact]
    public async Task A_late_batch_cannot_bring_back_a_resident_a_newer_batch_deleted_before_the_hub_had_it()
    {
        await SeedOrganizationsAsync();
        var resident = LegacyData.TownshipBatch(first: 872_301, residents: 1);
        var recordNo = "36992110120172301";
        var deletion = Rewrite(Rewrite(resident, "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)), "residents.csv",
            lines => lines[1] = DeletedRow(lines[0], "record_no", recordNo, "2025-06-05 08:00:00"), batchId: "QX2110026-GEN-000872301-012");
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(deletion)).StatusCode);

        // The batch exported before the deletion arrives after it: its resident row is older than the deletion.
        var issues = (await GetJsonAsync((await PostTownshipAsync(resident)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();

        Assert.Contains(issues, i => i.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString() == "STALE"
            && i.GetProperty("diagnostics").GetString()!.Contains(recordNo, StringComparison.Ordinal));
        Assert.Empty(await SearchAsync<Patient>($"Patient?identifier=urn:oid:2.16.156.10011.1.2|{recordNo}"));
    }

    [Fact]
    public async Task A_resident_row_replaces_the_townships_earlier_row_whole_so_an_emptied_death_phone_marital_status_and_responsible_doctor_are_gone()
    {
        await SeedOrganizationsAsync();
        var first = Rewrite(LegacyData.TownshipBatch(first: 872_401, residents: 1), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("archive_status", "3"), ("death_date", "2025-05-01"), ("responsible_doctor", "医生甲")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(first)).StatusCode);
        var recordNo = "urn:oid:2.16.156.10011.1.2|36992110120172401";
        var dead = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={recordNo}"));
        Assert.NotNull(dead.Deceased);
        Assert.NotNull(dead.MaritalStatus);
        Assert.NotEmpty(dead.Telecom);
        Assert.Equal("医生甲", Assert.Single(dead.GeneralPractitioner).Display);

        // The death was recorded in error: the next version of the row has no death, no phone, no marital status and no
        // responsible doctor.
        var corrected = Rewrite(Rewrite(LegacyData.TownshipBatch(first: 872_401, residents: 1, sequence: 2), "immunizations.csv",
            lines => lines.RemoveRange(1, lines.Count - 1)), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("archive_status", "1"), ("death_date", ""), ("phone", ""), ("marital_status_code", ""),
                ("responsible_doctor", ""), ("updated_at", "2025-06-01 08:00:00")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(corrected)).StatusCode);

        var alive = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={recordNo}"));
        Assert.Null(alive.Deceased);
        Assert.Null(alive.MaritalStatus);
        Assert.Empty(alive.Telecom);
        Assert.Empty(alive.GeneralPractitioner);
        Assert.Contains(alive.Identifier, i => i.System == "urn:oid:2.16.156.10011.1.3");
    }

    [Fact]
    public async Task A_resident_rows_later_version_leaves_what_the_HIS_said_of_the_person_that_no_version_of_the_row_gave()
    {
        await SeedOrganizationsAsync();
        var id = LegacyData.IdNumber(872_501);
        var sex = (id[16] - '0') % 2 == 1 ? "M" : "F";
        var a28 = "MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250501120000||ADT^A28^ADT_A05|HIS-KEEPS-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A28|20250501120000\r"
            + $"PID|1||0000872501^^^QX2100012^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||居民872501||{id[6..14]}|{sex}|||||^PRN^CP^^^^^^^^^13812345678|||20^已婚\r"
            + "PV1|1|N\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(a28));
        Assert.True(Msa(ack) == "AA", ack);

        // Two versions of the township's row, neither with a phone or a marital status.
        foreach (var (sequence, updated) in new[] { (1, "2025-05-20 16:40:00"), (2, "2025-06-01 08:00:00") })
        {
            var batch = Rewrite(Rewrite(LegacyData.TownshipBatch(first: 872_501, residents: 1, sequence), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
                "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("phone", ""), ("marital_status_code", ""), ("updated_at", updated)));
            Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);
        }

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.Contains(person.MaritalStatus!.Coding, c => c.Code == "20");
        Assert.Contains(person.Telecom, t => t.Value == "13812345678");
        Assert.Contains(person.Identifier, i => i.Value == "36992110120172501");
    }

    [Fact]
    public async Task A_corrected_ID_number_replaces_the_old_one_so_the_old_number_no_longer_joins_another_person()
    {
        await SeedOrganizationsAsync();
        string Registration(string trigger, string controlId, string institution, string mrn, string id, string name) =>
            $"MSH|^~\\&|QXHIS|{institution}|IHUB|QX-PLATFORM|20250501120000||ADT^{trigger}^ADT_A05|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"EVN|{trigger}|20250501120000\r"
            + $"PID|1||{mrn}^^^{institution}^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||{name}||{id[6..14]}|{((id[16] - '0') % 2 == 1 ? "M" : "F")}\r"
            + "PV1|1|N\r";
        var wrong = LegacyData.IdNumber(872_601);
        var right = LegacyData.IdNumber(872_602);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(Registration("A28", "ID-FIX-1", "QX2100012", "0000872601", wrong, "张三")))).Ack));
        // The hospital corrects the ID number it registered.
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(Registration("A08", "ID-FIX-2", "QX2100012", "0000872601", right, "张三")))).Ack));

        var corrected = Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000872601"));
        Assert.Equal([right], corrected.Identifier.Where(i => i.System == "urn:oid:2.16.156.10011.1.3").Select(i => i.Value));
        // Someone else, who has the number registered in error, is another person.
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(Registration("A28", "ID-FIX-3", "QX2100039", "0000872603", wrong, "王五")))).Ack));
        var other = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={wrong}"));
        Assert.NotEqual(corrected.Id, other.Id);
        Assert.Equal("张三", Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000872601")).Name[0].Text);
    }

    [Fact]
    public async Task An_ID_number_that_passes_the_check_links_the_person_whatever_document_type_the_row_names()
    {
        await SeedOrganizationsAsync();
        var id = LegacyData.IdNumber(872_701);
        var a28 = "MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250501120000||ADT^A28^ADT_A05|ID-TYPE-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A28|20250501120000\r"
            + $"PID|1||0000872701^^^QX2100012^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||居民872701||{id[6..14]}|{((id[16] - '0') % 2 == 1 ? "M" : "F")}\r"
            + "PV1|1|N\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(a28))).Ack));

        // The township wrote the same number under document type 02 (README "Linking persons" rule 1).
        var batch = Rewrite(LegacyData.TownshipBatch(first: 872_701, residents: 1), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("id_type", "02")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.Contains(person.Identifier, i => i.Value == "0000872701");
        Assert.Contains(person.Identifier, i => i.Value == "36992110120172701");
    }

    [Fact]
    public async Task A_reused_control_id_is_DUPLICATE_KEY_and_the_message_is_kept_as_a_dead_letter_a_replay_refuses_again()
    {
        await SeedOrganizationsAsync();
        var message = LegacyData.Hl7Registration(872_901);
        var (_, firstAck) = await PostHl7Async(message);
        Assert.Equal("AA", Msa(firstAck));
        var history = await CountAsync("/fhir/_history?_count=1000");
        var received = await HisCountsAsync();

        var changed = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(message).Replace("测试872901", "测试八七二九〇一", StringComparison.Ordinal));
        var (status, ack) = await PostHl7Async(changed);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("AE", Msa(ack));
        Assert.Contains("DUPLICATE_KEY", ack, StringComparison.Ordinal);
        Assert.Equal(history, await CountAsync("/fhir/_history?_count=1000"));
        // Refused, but kept (issue 5: every inbound message is stored before it is answered): a dead letter of its own,
        // which a replay refuses again.
        Assert.Equal(received.Received + 1, (await HisCountsAsync()).Received);
        var letter = AckControlId(ack).Split('-')[0];
        Assert.NotEqual(AckControlId(firstAck).Split('-')[0], letter);
        var replay = await Client.PostAsync(new Uri($"/adapters/dead-letters/{letter["IHUB".Length..]}/replay", UriKind.Relative), null);
        Assert.Contains("DUPLICATE_KEY", await replay.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(history, await CountAsync("/fhir/_history?_count=1000"));

        // Sent again, with another MSH-7: the same refusal, for the copy already kept.
        var fields = Encoding.UTF8.GetString(changed).Split('|');
        fields[6] = "20991231235959";
        var (_, again) = await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('|', fields)));
        Assert.Contains("DUPLICATE_KEY", again, StringComparison.Ordinal);
        Assert.Equal(letter, AckControlId(again).Split('-')[0]);
        Assert.Equal(received.Received + 1, (await HisCountsAsync()).Received);
    }

    [Fact]
    public async Task A_resident_row_whose_identifiers_belong_to_two_stored_persons_is_DUPLICATE_KEY()
    {
        await SeedOrganizationsAsync();
        var two = Rewrite(LegacyData.TownshipBatch(first: 872_801, residents: 2), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("health_card_no", "8728010001")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(two)).StatusCode);

        // The second resident's next version names the first one's health card.
        var later = Rewrite(Rewrite(LegacyData.TownshipBatch(first: 872_802, residents: 1, sequence: 2), "immunizations.csv",
            lines => lines.RemoveRange(1, lines.Count - 1)), "residents.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("health_card_no", "8728010001"), ("updated_at", "2025-06-01 08:00:00")));
        var issues = (await GetJsonAsync((await PostTownshipAsync(later)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();

        var error = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal("DUPLICATE_KEY", error.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());
    }

    /// <summary>An ADT event of the county hospital naming MRN <paramref name="mrn"/> and, when given, the ID number of generated person n.</summary>
    private static byte[] PersonEvent(string trigger, string controlId, string mrn, int n, bool withId, string extra = "")
    {
        var id = LegacyData.IdNumber(n);
        return Encoding.UTF8.GetBytes($"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250501120000||ADT^{trigger}^ADT_A05|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"EVN|{trigger}|20250501120000\r"
            + $"PID|1||{mrn}^^^QX2100012^MR{(withId ? $"~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN" : "")}||居民{n}||{id[6..14]}|{((id[16] - '0') % 2 == 1 ? "M" : "F")}\r"
            + (trigger == "A40" ? "" : "PV1|1|N\r") + extra);
    }

    [Theory]
    [InlineData(true, 873_001)]
    [InlineData(false, 873_011)]
    public async Task A40_merges_an_MRN_into_another_also_when_an_ID_number_already_linked_them(bool newMrnHasTheId, int n)
    {
        await SeedOrganizationsAsync();
        var (old, kept) = ($"{n:D10}", $"{n + 5:D10}");
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"A40-{n}-1", old, n, withId: true))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"A40-{n}-2", kept, n, withId: newMrnHasTheId))).Ack));

        var (_, ack) = await PostHl7Async(PersonEvent("A40", $"A40-{n}-3", kept, n, withId: true, extra: $"MRG|{old}^^^QX2100012^MR\r"));
        Assert.True(Msa(ack) == "AA", ack);

        var survivor = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(n)}&active=true"));
        Assert.Contains(survivor.Identifier, i => i.Value == kept);
        Assert.DoesNotContain(survivor.Identifier, i => i.Value == old);
        var retired = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={old}"));
        Assert.False(retired.Active);
        Assert.Contains(retired.Link, l => l.Type == Patient.LinkType.ReplacedBy && l.Other.Reference == $"Patient/{survivor.Id}");
        // his-hl7v2.md §5: a later message with the retired MRN is refused.
        var (_, later) = await PostHl7Async(PersonEvent("A08", $"A40-{n}-4", old, n, withId: false));
        Assert.Contains("UNKNOWN_REFERENCE", later, StringComparison.Ordinal);

        // The merge sent again under another control ID changes nothing: still one link to the retired record.
        var (_, again) = await PostHl7Async(PersonEvent("A40", $"A40-{n}-5", kept, n, withId: true, extra: $"MRG|{old}^^^QX2100012^MR\r"));
        Assert.True(Msa(again) == "AA", again);
        var after = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(n)}&active=true"));
        Assert.Equal([$"Patient/{retired.Id}"], after.Link.Where(l => l.Type == Patient.LinkType.Replaces).Select(l => l.Other.Reference));
    }

    [Fact]
    public async Task A_message_naming_a_hospital_record_and_a_township_record_of_one_person_merges_them_into_the_first_and_is_applied()
    {
        await SeedOrganizationsAsync();
        const int N = 879_011;
        // The hospital knows the person by MRN only; the township by ID number and health record, with a dose.
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"LINK-{N}-1", $"{N:D10}", N, withId: false))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        Assert.Equal(2, (await SearchAsync<Patient>($"Patient?identifier={N:D10},{LegacyData.IdNumber(N)}")).Count);

        // An update with both: README linking rules 1 and 2 make them one person.
        var (status, ack) = await PostHl7Async(PersonEvent("A08", $"LINK-{N}-2", $"{N:D10}", N, withId: true));

        Assert.True(Msa(ack) == "AA" && status == HttpStatusCode.OK, ack);
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10},{LegacyData.IdNumber(N)}"));
        Assert.Contains(person.Identifier, i => i.Value == $"369921101201{N % 100_000:D5}");
        var retired = Assert.Single(await SearchAsync<Patient>($"Patient?link=Patient/{person.Id}"));
        Assert.False(retired.Active);
        Assert.Empty(retired.Identifier);
        Assert.Contains(person.Link, l => l.Type == Patient.LinkType.Replaces && l.Other.Reference == $"Patient/{retired.Id}");
        // The township's dose moved to the one person.
        Assert.Contains(person.Identifier, i => i.Value == $"{N:D10}");
        Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}"));
        Assert.Empty(await SearchAsync<Immunization>($"Immunization?patient=Patient/{retired.Id}"));

        // The township's next version of the resident now finds the one person.
        var later = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("phone", "13900001111"), ("updated_at", "2025-06-01 08:00:00")));
        var report = await GetJsonAsync((await PostTownshipAsync(later)).Headers.Location!.ToString());
        Assert.DoesNotContain(report.GetProperty("outcome").GetProperty("issue").EnumerateArray(), i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal(person.Id, Assert.Single(await SearchAsync<Patient>($"Patient?telecom=13900001111")).Id);
    }

    [Fact]
    public async Task Three_records_of_one_person_merge_into_the_first_with_one_dose_a_day_what_each_alone_said_and_a_Provenance()
    {
        await SeedOrganizationsAsync();
        const int N = 879_061;
        var day = $"2024-10-{N % 28 + 1:D2}";
        // The hospital by MRN; the township by ID number, with the dose given (first hand); a third record by health
        // card alone, with a transcription of the same dose and an extension of its own.
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"THREE-{N}-1", $"{N:D10}", N, withId: false))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        var third = new Patient { Id = $"three-{N}", Identifier = [new Identifier("urn:oid:2.16.156.10011.1.19", $"H{N}")] };
        third.Extension.Add(new Extension("urn:interophub:test:only-here", new FhirString("kept")));
        Assert.Equal(HttpStatusCode.Created, (await Client.PutAsync(new Uri($"/fhir/Patient/{third.Id}", UriKind.Relative), Fhir.Content(third))).StatusCode);
        var card = new Immunization
        {
            Id = $"three-{N}-dose",
            Status = Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = new CodeableConcept("urn:interophub:cs:qxvac", "1301"),
            Patient = new ResourceReference($"Patient/{third.Id}"),
            Occurrence = new FhirDateTime(day),
            PrimarySource = false,
            Identifier = [new Identifier("urn:interophub:test:card", $"C{N}")],
        };
        Assert.Equal(HttpStatusCode.Created, (await Client.PutAsync(new Uri($"/fhir/Immunization/{card.Id}", UriKind.Relative), Fhir.Content(card))).StatusCode);

        var message = Encoding.UTF8.GetString(PersonEvent("A08", $"THREE-{N}-2", $"{N:D10}", N, withId: true)).Replace("^NNCHN||", $"^NNCHN~H{N}^^^^HC||", StringComparison.Ordinal);
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(message));

        Assert.True(Msa(ack) == "AA", ack);
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10},{LegacyData.IdNumber(N)},H{N}"));
        Assert.Equal(2, (await SearchAsync<Patient>($"Patient?link=Patient/{person.Id}")).Count);
        Assert.Contains(person.Extension, e => e.Url == "urn:interophub:test:only-here");
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}"));
        Assert.Equal(("202409A011", true), (dose.LotNumber, dose.PrimarySource));
        Assert.Contains(dose.Identifier, i => i.Value == $"C{N}");
        Assert.Contains(dose.Identifier, i => i.Value == $"JZ-QX2110026-{N:D9}");
        var provenance = Assert.Single(await SearchAsync<Provenance>($"Provenance?target=Patient/{third.Id}"));
        Assert.Contains(provenance.Target, t => t.Reference == $"Patient/{person.Id}");
    }

    [Fact]
    public async Task A_merge_prepared_before_a_record_of_the_retired_Patient_was_written_fails_with_409_instead_of_leaving_it_behind()
    {
        await SeedOrganizationsAsync();
        const int N = 879_071;
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"RACE-{N}-1", $"{N:D10}", N, withId: false))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        var message = new Bundle { Type = Bundle.BundleType.Transaction };
        message.Entry.Add(new Bundle.EntryComponent
        {
            Resource = new Patient { Identifier = [new Identifier("urn:interophub:sid:mrn:QX2100012", $"{N:D10}"), new Identifier("urn:oid:2.16.156.10011.1.3", LegacyData.IdNumber(N))] },
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Patient?identifier=urn:interophub:sid:mrn:QX2100012|{N:D10},urn:oid:2.16.156.10011.1.3|{LegacyData.IdNumber(N)}" },
        });
        var records = Hub.Services.GetRequiredService<InteropHub.Adapters.Ingest.MergedRecords>();
        var merge = await records.SamePersonAsync(message, CancellationToken.None);
        Assert.NotNull(merge);

        // Meanwhile another writer gives the Patient to be retired a visit.
        var retired = merge.Entry.Select(e => e.Resource).OfType<Patient>().Single(p => p.Active == false);
        var visit = new Encounter { Status = Encounter.EncounterStatus.Finished, Class = new Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"), Subject = new ResourceReference($"Patient/{retired.Id}") };
        Assert.Equal(HttpStatusCode.Created, (await Client.PostAsync(new Uri("/fhir/Encounter", UriKind.Relative), Fhir.Content(visit))).StatusCode);

        var failure = await Assert.ThrowsAsync<InteropHub.Fhir.Errors.FhirException>(() => Hub.Services.GetRequiredService<ProcessBundle>()
            .HandleAsync(new BundleRequest(merge, "urn:test/fhir", AfterLocks: records.CheckNothingLeftAsync), CancellationToken.None));
        Assert.Equal(HttpStatusCode.Conflict, failure.Status);
        Assert.NotEqual(false, Assert.Single(await SearchAsync<Patient>($"Patient?_id={retired.Id}")).Active);
    }

    [Fact]
    public async Task Two_records_a_message_names_together_that_hold_different_health_cards_are_not_merged_and_the_message_is_DUPLICATE_KEY()
    {
        await SeedOrganizationsAsync();
        const int N = 879_051;
        foreach (var (id, identifier, card) in new[]
        {
            ($"card-{N}-a", new Identifier("urn:interophub:sid:mrn:QX2100012", $"{N:D10}"), "H3699210000879051"),
            ($"card-{N}-b", new Identifier("urn:oid:2.16.156.10011.1.3", LegacyData.IdNumber(N)), "H3699210000879052"),
        })
        {
            var patient = new Patient { Id = id, Identifier = [identifier, new Identifier("urn:oid:2.16.156.10011.1.19", card)] };
            Assert.Equal(HttpStatusCode.Created, (await Client.PutAsync(new Uri($"/fhir/Patient/{id}", UriKind.Relative), Fhir.Content(patient))).StatusCode);
        }

        var (_, ack) = await PostHl7Async(PersonEvent("A08", $"CARD-{N}", $"{N:D10}", N, withId: true));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("DUPLICATE_KEY", ack, StringComparison.Ordinal);
        Assert.Equal(2, (await SearchAsync<Patient>($"Patient?_id=card-{N}-a,card-{N}-b&active:not=false")).Count);
    }

    [Fact]
    public async Task Merging_two_records_of_one_person_keeps_one_dose_a_day_with_the_first_hand_report_over_a_transcription()
    {
        await SeedOrganizationsAsync();
        const int N = 879_031;
        var day = $"202410{N % 28 + 1:D2}";
        // The hospital transcribed the dose from a card (RXA-9 01) for the person it knows by MRN alone; the township
        // gave it (record_source 1, lot 202409A011) to the person it knows by ID number.
        var transcribed = Encoding.UTF8.GetString(HisDose(N, $"MERGE-DOSE-{N}-1", day))
            .Replace($"~{LegacyData.IdNumber(N)}^^^&2.16.156.10011.1.3&ISO^NNCHN", "", StringComparison.Ordinal)
            .Replace("|00^新接种^NIP001|", "|01^历史记录^NIP001|", StringComparison.Ordinal).Replace("|202409A011|", "|CARDLOT|", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(transcribed))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        Assert.Equal(2, (await SearchAsync<Immunization>($"Immunization?patient.identifier={N:D10},{LegacyData.IdNumber(N)}")).Count);

        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A08", $"MERGE-DOSE-{N}-2", $"{N:D10}", N, withId: true))).Ack));

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(N)}"));
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}"));
        Assert.Equal(("202409A011", true), (dose.LotNumber, dose.PrimarySource));
        Assert.Contains(dose.Identifier, i => i.Value == $"JZ-QX2110026-{N:D9}");
        Assert.Contains(dose.Identifier, i => i.Value == $"JZ-MERGE-DOSE-{N}-1");
    }

    [Fact]
    public async Task A_township_dose_row_sent_again_as_a_transcription_replaces_its_own_first_hand_version()
    {
        await SeedOrganizationsAsync();
        const int N = 879_041;
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        var later = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "immunizations.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("record_source", "2"), ("lot_no", "NEWLOT1"), ("updated_at", "2025-06-01 08:00:00")));

        var report = await GetJsonAsync((await PostTownshipAsync(later)).Headers.Location!.ToString());

        Assert.StartsWith("batch QX2110026-GEN-000879041-002: 1 of 1 rows applied", report.GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?identifier=JZ-QX2110026-{N:D9}"));
        Assert.Equal(("NEWLOT1", false), (dose.LotNumber, dose.PrimarySource));
    }

    [Fact]
    public async Task An_A40_whose_PID_names_an_ID_number_a_third_record_holds_is_DUPLICATE_KEY_and_writes_nothing()
    {
        await SeedOrganizationsAsync();
        const int N = 873_021;
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: N, residents: 1))).StatusCode);
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"A40-{N}-1", $"{N:D10}", N, withId: false))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"A40-{N}-2", $"{N + 5:D10}", N, withId: false))).Ack));

        var (_, ack) = await PostHl7Async(PersonEvent("A40", $"A40-{N}-3", $"{N + 5:D10}", N, withId: true, extra: $"MRG|{N:D10}^^^QX2100012^MR\r"));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("DUPLICATE_KEY", ack, StringComparison.Ordinal);
        Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(N)}"));
        var notRetired = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10}"));
        Assert.NotEqual(false, notRetired.Active);
        Assert.Empty(notRetired.Link);
    }

    [Fact]
    public async Task A_township_row_changing_the_ID_number_a_hospital_registered_adds_its_number_without_taking_the_hospitals_away()
    {
        await SeedOrganizationsAsync();
        const int N = 873_031;
        var registered = LegacyData.IdNumber(N);
        var other = LegacyData.IdNumber(N + 29_000); // the same birth date, another number
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"ID-KEEP-{N}", $"{N:D10}", N, withId: true))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1), "immunizations.csv",
            lines => lines.RemoveRange(1, lines.Count - 1)))).StatusCode);
        var changed = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("id_no", other), ("updated_at", "2025-06-01 08:00:00")));
        var response = await PostTownshipAsync(changed);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10}"));
        Assert.Contains(person.Identifier, i => i.Value == registered);
        Assert.Contains(person.Identifier, i => i.Value == other);
        Assert.Single(await SearchAsync<Patient>($"Patient?identifier={registered}"));

        // The batch's outcome tells the township that its number and the hospital's disagree.
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        var warning = Assert.Single(issues, i => i.GetProperty("diagnostics").GetString()!.Contains($"ID number {other} differs from {registered}", StringComparison.Ordinal));
        Assert.Equal("warning", warning.GetProperty("severity").GetString());
        Assert.Contains(":id_no", warning.GetProperty("location").EnumerateArray().Select(e => e.GetString()).Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_naming_a_mother_by_one_of_two_ID_numbers_her_record_holds_is_warned_of_the_other()
    {
        await SeedOrganizationsAsync();
        const int N = 873_041;
        var registered = LegacyData.IdNumber(N);
        var other = LegacyData.IdNumber(N + 29_000);
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"ID-CERT-{N}", $"{N:D10}", N, withId: true))).Ack));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1), "immunizations.csv",
            lines => lines.RemoveRange(1, lines.Count - 1)))).StatusCode);
        var changed = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("id_no", other), ("updated_at", "2025-06-01 08:00:00")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(changed)).StatusCode);

        // Her child's certificate names her by the hospital's number. Its first issue finds her and does not write her.
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_441));
        var age = 2025 - int.Parse(registered[6..10], CultureInfo.InvariantCulture) - 1;
        certificate = System.Text.RegularExpressions.Regex.Replace(certificate.Replace(MotherIdOf(certificate), registered, StringComparison.Ordinal),
            "<Age>[0-9]+</Age>", $"<Age>{age}</Age>");
        var issues = await PostCertificateAsync(certificate);
        Assert.Contains(issues, i => i.Details?.Coding[0].Code == "APPLIED");
        Assert.DoesNotContain(issues, i => i.Severity == OperationOutcome.IssueSeverity.Warning);

        // A correction of her name updates her from the document (birth-certificate.md §3): the number the township gave is kept, and said.
        var corrected = certificate.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Name>母亲7441</Name>", "<Name>母亲七四四一</Name>", StringComparison.Ordinal)
            .Replace("<LastModified>", "<Corrections><Correction><Field>Mother/Name</Field><OldValue>母亲7441</OldValue><NewValue>母亲七四四一</NewValue>"
                + "<Reason>姓名录入错误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><LastModified>", StringComparison.Ordinal);
        issues = await PostCertificateAsync(corrected);

        Assert.Contains(issues, i => i.Details?.Coding[0].Code == "APPLIED");
        var warning = Assert.Single(issues, i => i.Diagnostics?.Contains($"ID number {registered} differs from {other}", StringComparison.Ordinal) == true);
        Assert.Equal(OperationOutcome.IssueSeverity.Warning, warning.Severity);
        Assert.Equal("BirthCertificate[Q360007441]", Assert.Single(warning.Location));
        var mother = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={registered}"));
        Assert.Equal("母亲七四四一", mother.Name[0].Text);
        Assert.Contains(mother.Identifier, i => i.Value == other);
        Assert.Contains(mother.Identifier, i => i.Value == $"{N:D10}");
    }

    [Theory]
    [InlineData(true, 873_051)]
    [InlineData(false, 873_061)]
    public async Task A_dose_reported_once_by_MRN_alone_and_once_with_the_ID_number_is_one_Immunization(bool registeredWithId, int n)
    {
        await SeedOrganizationsAsync();
        var id = LegacyData.IdNumber(n);
        var byMrn = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HisDose(n, $"DOSE-KEY-{n}-1", "20241106"))
            .Replace($"~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN", "", StringComparison.Ordinal));
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"DOSE-KEY-{n}", $"{n:D10}", n, withId: registeredWithId))).Ack));

        // The hospital reports the dose naming the person by MRN alone (his-hl7v2.md §4 PID-3: at least the MRN): keyed by
        // the stored Patient's ID number when the hub has it, else by the MRN.
        Assert.Equal("AA", Msa((await PostHl7Async(byMrn)).Ack));
        if (!registeredWithId)
        {
            Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A08", $"DOSE-KEY-{n}-A08", $"{n:D10}", n, withId: true))).Ack));
        }

        // The same dose again, with the ID number in PID-3, and listed twice.
        var again = Encoding.UTF8.GetString(HisDose(n, $"DOSE-KEY-{n}-2", "20241106"));
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(again + again[again.IndexOf("ORC|", StringComparison.Ordinal)..]));
        Assert.True(ack.Contains("MSA|", StringComparison.Ordinal) && Msa(ack) == "AA", ack);

        var patient = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{patient.Id}"));
    }

    [Fact]
    public async Task A_hospitals_deletion_of_a_dose_the_township_reports_too_takes_back_only_the_hospitals_report()
    {
        await SeedOrganizationsAsync();
        const int N = 873_071;
        var batch = Rewrite(LegacyData.TownshipBatch(first: N, residents: 1), "immunizations.csv", lines => lines[1] = WithCells(lines[0], lines[1],
            ("vaccine_code", "1301"), ("dose_no", "1"), ("vacc_date", "2024-11-06")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(batch)).StatusCode);
        Assert.Equal("AA", Msa((await PostHl7Async(HisDose(N, $"DOSE-DEL-{N}", "20241106"))).Ack));
        var patient = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(N)}"));
        var reported = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{patient.Id}"));
        Assert.Contains(reported.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");

        // The hospital deletes its report of the dose (RXA-21 D).
        var deletion = Encoding.UTF8.GetString(HisDose(N, $"DOSE-DEL-{N}-D", "20241106")).Replace("|CP|A\r", "|CP|D\r", StringComparison.Ordinal);
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(deletion));

        Assert.True(Msa(ack) == "AA", ack);
        Assert.Contains("ERR|", ack, StringComparison.Ordinal);
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{patient.Id}"));
        Assert.Equal(reported.Id, dose.Id);
        Assert.DoesNotContain(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:township-vaccination");
    }

    [Fact]
    public async Task A_health_card_a_later_township_row_corrects_no_longer_identifies_the_resident()
    {
        await SeedOrganizationsAsync();
        const int N = 873_081;
        var (wrong, right) = ("H3699219990873081", "H3699219990873082");
        static byte[] Batch(int sequence, string card, string updatedAt) =>
            Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: sequence), "immunizations.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
                "residents.csv", lines => lines[1] = WithCells(lines[0], lines[1], ("health_card_no", card), ("updated_at", updatedAt)));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(Batch(1, wrong, "2025-05-01 08:00:00"))).StatusCode);
        Assert.Single(await SearchAsync<Patient>($"Patient?identifier={wrong}"));

        // township-export.md §2: the row's next version replaces it whole; its corrected card is the resident's.
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(Batch(2, right, "2025-06-01 08:00:00"))).StatusCode);

        var resident = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={right}"));
        Assert.DoesNotContain(resident.Identifier, i => i.Value == wrong);
        Assert.Empty(await SearchAsync<Patient>($"Patient?identifier={wrong}"));
    }

    [Fact]
    public async Task A_new_health_card_from_the_hospital_that_registered_the_person_replaces_the_old_one()
    {
        await SeedOrganizationsAsync();
        const int N = 873_111;
        var (old, reissued) = ("H3699219990873111", "H3699219990873112");
        byte[] Registration(string trigger, string control, string card) => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250501120000||ADT^{trigger}^ADT_A05|{control}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"EVN|{trigger}|20250501120000\r"
            + $"PID|1||{N:D10}^^^QX2100012^MR~{card}^^^&2.16.156.10011.1.19&ISO^HC||居民{N}||19800101|M\r"
            + "PV1|1|N\r");
        Assert.Equal("AA", Msa((await PostHl7Async(Registration("A28", $"HC-{N}-1", old))).Ack));

        // The card was reissued (his-hl7v2.md §4 PID-3): the hospital updates the person with the new one.
        Assert.Equal("AA", Msa((await PostHl7Async(Registration("A31", $"HC-{N}-2", reissued))).Ack));

        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10}"));
        Assert.Contains(person.Identifier, i => i.Value == reissued);
        Assert.DoesNotContain(person.Identifier, i => i.Value == old);
        Assert.Empty(await SearchAsync<Patient>($"Patient?identifier={old}"));
    }

    [Fact]
    public async Task Messages_sharing_a_transaction_each_carry_their_own_ID_number_warning()
    {
        await SeedOrganizationsAsync();
        var before = (await GetJsonAsync("/adapters/status")).GetProperty("hisSharedTransactions").GetProperty("messages").GetInt64();
        var shared = before;
        for (var round = 0; round < 10 && shared == before; round++)
        {
            var persons = Enumerable.Range(873_701 + (round * 10), 8).ToList();
            foreach (var n in persons)
            {
                Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"ID-GROUP-{n}", $"{n:D10}", n, withId: true))).Ack));
            }

            // Each person's vaccination names another ID number; those ready together share a transaction.
            var answers = await Task.WhenAll(persons.Select(n => PostHl7Async(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HisDose(n, $"ID-GROUP-{n}-V", "20241106"))
                .Replace(LegacyData.IdNumber(n), LegacyData.IdNumber(n + 29_000), StringComparison.Ordinal)))));
            foreach (var (n, (_, ack)) in persons.Zip(answers))
            {
                Assert.True(Msa(ack) == "AA", ack);
                Assert.Contains(ack.Split('\r'), line => line.StartsWith("ERR||PID^1^3|", StringComparison.Ordinal)
                    && line.Contains($"身份证号 {LegacyData.IdNumber(n + 29_000)} 与平台已存的 {LegacyData.IdNumber(n)} 不一致", StringComparison.Ordinal));
            }

            shared = (await GetJsonAsync("/adapters/status")).GetProperty("hisSharedTransactions").GetProperty("messages").GetInt64();
        }

        Assert.True(shared > before, "No two vaccinations shared a transaction in ten rounds.");
    }

    [Fact]
    public async Task A_message_that_does_not_maintain_the_person_and_names_another_ID_number_is_applied_with_a_warning_and_the_number_not_taken()
    {
        await SeedOrganizationsAsync();
        const int N = 873_511;
        var registered = LegacyData.IdNumber(N);
        var other = LegacyData.IdNumber(N + 29_000); // the same birth date, another number
        Assert.Equal("AA", Msa((await PostHl7Async(PersonEvent("A28", $"ID-WARN-{N}", $"{N:D10}", N, withId: true))).Ack));

        // A vaccination the same hospital reports, its PID carrying another ID number.
        var dose = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(HisDose(N, $"ID-WARN-{N}-V", "20241106")).Replace(registered, other, StringComparison.Ordinal));
        var (_, ack) = await PostHl7Async(dose);

        Assert.Equal("AA", Msa(ack));
        var err = Assert.Single(ack.Split('\r'), line => line.StartsWith("ERR||PID^1^3|", StringComparison.Ordinal));
        Assert.Contains($"身份证号 {other} 与平台已存的 {registered} 不一致", err, StringComparison.Ordinal);
        Assert.Equal("W", err.Split('|')[4]);
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={N:D10}"));
        Assert.Equal([registered], person.Identifier.Where(i => i.System == "urn:oid:2.16.156.10011.1.3").Select(i => i.Value));
        Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}"));
    }

    [Fact]
    public async Task A_follow_up_row_sent_again_without_its_measurements_removes_the_observations_its_earlier_version_wrote()
    {
        await SeedOrganizationsAsync();
        await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-001")));
        byte[] Version(string batchId, params (string Column, string Value)[] changes) =>
            Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-002")), "followups_hypertension.csv",
                lines => lines[1] = WithCells(lines[0], lines[1], [("followup_id", "GXY-QX2110026-9990300"), .. changes]), batchId: batchId);
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(Version("QX2110026-20250731-931"))).StatusCode);
        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=GXY-QX2110026-9990300"));
        var before = await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}");
        Assert.Contains(before, o => o.Code.Coding.Any(c => c.Code == "85354-9"));

        // The visit was by telephone after all: no blood pressure, weight, heart rate or salt intake.
        var response = await PostTownshipAsync(Version("QX2110026-20250731-932", ("followup_method", "3"), ("sbp", ""), ("dbp", ""), ("weight_kg", ""),
            ("heart_rate", ""), ("salt_intake", ""), ("updated_at", "2025-07-20 09:00:00")));
        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        Assert.Equal("VR", Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=GXY-QX2110026-9990300")).Class.Code);
        var after = await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}");
        Assert.DoesNotContain(after, o => o.Code.Coding.Any(c => c.Code is "85354-9" or "29463-7" or "8867-4"));
        Assert.DoesNotContain(after, o => o.Code.Coding.Any(c => c.Code?.EndsWith(".salt_intake", StringComparison.Ordinal) == true));
        Assert.Contains(after, o => o.Code.Coding.Any(c => c.Code?.EndsWith(".compliance", StringComparison.Ordinal) == true));
    }

    /// <summary>An inpatient ADT event of the county hospital for visit <paramref name="visit"/> (PV1-44 admitted, PV1-45 discharged).</summary>
    private static byte[] InpatientEvent(string trigger, string controlId, string visit, string eventTime, string admitted, string discharged = "", string obx = "")
    {
        var pv1 = new string[46];
        Array.Fill(pv1, "");
        pv1[0] = "PV1";
        pv1[1] = "1";
        pv1[2] = "I";
        pv1[3] = "0307^^^QX2100012^^^^^内分泌科";
        pv1[4] = "R";
        pv1[7] = "D0155^许文涛";
        pv1[19] = $"{visit}^^^QX2100012&2.16.156.10011.1.11&ISO^VN";
        pv1[36] = discharged.Length > 0 ? "1" : "";
        pv1[44] = admitted;
        pv1[45] = discharged;
        return Encoding.UTF8.GetBytes($"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250610120000||ADT^{trigger}^ADT_A01|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"EVN|{trigger}|{eventTime}\r"
            + $"PID|1||{visit[^7..]}^^^QX2100012^MR||住院{visit[^4..]}||19700101|1\r"
            + string.Join('|', pv1) + "\r" + obx);
    }

    [Fact]
    public async Task Observations_of_two_ADT_events_of_one_visit_are_both_kept_each_at_its_events_time()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "OBX-EVENTS-1", "ZY2098000001", "20250601085000", "20250601085000",
            obx: "OBX|1|NM|8480-6^收缩压^LN||186|mm[Hg]|||||F\r"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A03", "OBX-EVENTS-2", "ZY2098000001", "20250605100000", "", "20250605100000",
            obx: "OBX|1|NM|8867-4^心率^LN||72|/min|||||F\r"))).Ack));

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000001"));
        var observations = await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}");
        var pressure = Assert.Single(observations, o => o.Code.Coding.Any(c => c.Code == "8480-6"));
        var rate = Assert.Single(observations, o => o.Code.Coding.Any(c => c.Code == "8867-4"));
        Assert.StartsWith("2025-06-01T08:50", ((FhirDateTime)pressure.Effective!).Value, StringComparison.Ordinal);
        Assert.StartsWith("2025-06-05T10:00", ((FhirDateTime)rate.Effective!).Value, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_readings_of_one_code_in_an_admission_are_two_observations_and_the_admission_resent_updates_them()
    {
        await SeedOrganizationsAsync();
        const string Readings = "OBX|1|NM|8480-6^收缩压^LN||186|mm[Hg]|||||F\rOBX|2|NM|8480-6^收缩压^LN||176|mm[Hg]|||||F\r";
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "OBX-SAME-1", "ZY2098000004", "20250601085000", "20250601085000", obx: Readings))).Ack));
        // The same admission sent again after a change, recorded later: the readings are the same two, corrected.
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "OBX-SAME-2", "ZY2098000004", "20250601093000", "20250601085000",
            obx: Readings.Replace("||186|", "||168|", StringComparison.Ordinal)))).Ack));

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000004"));
        var readings = await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}&code=8480-6");
        Assert.Equal([168m, 176m], readings.Select(o => ((Quantity)o.Value!).Value!.Value).Order());
    }

    [Fact]
    public async Task A_discharge_before_the_admission_an_earlier_message_gave_is_IMPOSSIBLE_DATE_at_PV1_45()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "DATES-1", "ZY2098000002", "20250601085000", "20250601085000"))).Ack));

        var (_, ack) = await PostHl7Async(InpatientEvent("A03", "DATES-2", "ZY2098000002", "20250601090000", "", "20250530100000"));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("IMPOSSIBLE_DATE", ack, StringComparison.Ordinal);
        Assert.Contains("PV1^1^45", ack, StringComparison.Ordinal);
        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000002"));
        Assert.Equal(Encounter.EncounterStatus.InProgress, visit.Status);
        Assert.Null(visit.Period!.End);
    }

    [Fact]
    public async Task A_discharge_ends_the_time_in_the_last_place_and_a_cancelled_discharge_reopens_it()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "PLACE-END-1", "ZY2098000009", "20250601085000", "20250601085000"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A03", "PLACE-END-2", "ZY2098000009", "20250605100000", "20250601085000", "20250605100000"))).Ack));
        var discharged = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000009"));
        var place = Assert.Single(discharged.Location);
        Assert.Equal((Encounter.EncounterLocationStatus.Completed, discharged.Period!.End), (place.Status, place.Period?.End));

        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A13", "PLACE-END-3", "ZY2098000009", "20250605103000", "20250601085000"))).Ack));
        var reopened = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000009"));
        Assert.Equal(Encounter.EncounterStatus.InProgress, reopened.Status);
        Assert.Null(Assert.Single(reopened.Location).Period?.End);

        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A03", "PLACE-END-4", "ZY2098000009", "20250606100000", "20250601085000", "20250606100000"))).Ack));
        var again = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000009"));
        Assert.StartsWith("2025-06-06T10:00", Assert.Single(again.Location).Period!.End, StringComparison.Ordinal);

        // A place an A08 moved the patient out of (no transfer time known) does not take the discharge time.
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "PLACE-END-5", "ZY2098000011", "20250601085000", "20250601085000"))).Ack));
        var moved = Encoding.UTF8.GetString(InpatientEvent("A08", "PLACE-END-6", "ZY2098000011", "20250602090000", "20250601085000"))
            .Replace("|0307^^^QX2100012^^^^^内分泌科|", "|0308^^^QX2100012^^^^^心内科|", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(moved))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(
            InpatientEvent("A03", "PLACE-END-7", "ZY2098000011", "20250605100000", "20250601085000", "20250605100000"))
            .Replace("|0307^^^QX2100012^^^^^内分泌科|", "|0308^^^QX2100012^^^^^心内科|", StringComparison.Ordinal)))).Ack));
        var twoPlaces = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000011"));
        Assert.Equal(2, twoPlaces.Location.Count);
        Assert.Null(twoPlaces.Location[0].Period?.End);
        Assert.StartsWith("2025-06-05T10:00", twoPlaces.Location[1].Period!.End, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_A08_with_two_double_quotes_in_PV1_7_removes_the_attending_doctor_and_an_empty_PV1_7_keeps_it()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "ATND-DEL-1", "ZY2098000010", "20250601085000", "20250601085000"))).Ack));
        static byte[] Update(string controlId, string pv17) => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(
            InpatientEvent("A08", controlId, "ZY2098000010", "20250602090000", "20250601085000")).Replace("|D0155^许文涛|", $"|{pv17}|", StringComparison.Ordinal));
        async Task<IEnumerable<string?>> RolesAsync() => Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000010"))
            .Participant.SelectMany(p => p.Type).SelectMany(t => t.Coding).Select(c => c.Code);

        Assert.Equal("AA", Msa((await PostHl7Async(Update("ATND-DEL-2", ""))).Ack));
        Assert.Contains("ATND", await RolesAsync());

        Assert.Equal("AA", Msa((await PostHl7Async(Update("ATND-DEL-3", "\"\""))).Ack));
        Assert.DoesNotContain("ATND", await RolesAsync());
        Assert.DoesNotContain(Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000010")).Extension, e => e.Url?.Contains("cleared", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Transfers_and_discharges_out_of_step_with_the_visit_are_refused_and_a_resent_admission_does_not_move_the_patient_back()
    {
        await SeedOrganizationsAsync();
        const string Visit = "ZY2098000013";
        static byte[] Transfer(string controlId, string to, string at) => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(
            InpatientEvent("A02", controlId, Visit, at, "20250601085000"))
            .Replace("|0307^^^QX2100012^^^^^内分泌科|R|||", $"|{to}^^^QX2100012|R||0307^^^QX2100012^^^^^内分泌科|", StringComparison.Ordinal));
        async Task<Encounter> VisitAsync() => Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier={Visit}"));
        static string Err(string ack) => ack.Split('\r').First(l => l.StartsWith("ERR|", StringComparison.Ordinal));

        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "STEP-1", Visit, "20250601085000", "20250601085000"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Transfer("STEP-2", "0304", "20250603100000"))).Ack));

        // A transfer dated before the patient took the place they are in now.
        var late = (await PostHl7Async(Transfer("STEP-3", "0305", "20250602100000"))).Ack;
        Assert.Equal("AE", Msa(late));
        Assert.Contains("|EVN^1^2|", Err(late), StringComparison.Ordinal);
        Assert.Contains("IMPOSSIBLE_DATE", Err(late), StringComparison.Ordinal);

        // The admission sent again: the patient stays where the transfer put them.
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "STEP-4", Visit, "20250603120000", "20250601085000"))).Ack));
        var moved = await VisitAsync();
        Assert.Equal(2, moved.Location.Count);
        Assert.Single(moved.Location, l => l.Status == Encounter.EncounterLocationStatus.Active);
        Assert.StartsWith("2025-06-03T10:00", Assert.Single(moved.Location, l => l.Status == Encounter.EncounterLocationStatus.Active).Period!.Start, StringComparison.Ordinal);
        Assert.StartsWith("2025-06-03T10:00", Assert.Single(moved.Location, l => l.Status == Encounter.EncounterLocationStatus.Completed).Period!.End, StringComparison.Ordinal);

        // A discharge dated before that transfer, then the right one, then a transfer of the discharged visit.
        var early = (await PostHl7Async(InpatientEvent("A03", "STEP-5", Visit, "20250602120000", "20250601085000", discharged: "20250602120000"))).Ack;
        Assert.Equal("AE", Msa(early));
        Assert.Contains("|PV1^1^45|", Err(early), StringComparison.Ordinal);
        Assert.Contains("IMPOSSIBLE_DATE", Err(early), StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A03", "STEP-6", Visit, "20250605120000", "20250601085000", discharged: "20250605120000"))).Ack));
        var afterDischarge = (await PostHl7Async(Transfer("STEP-7", "0305", "20250606100000"))).Ack;
        Assert.Equal("AE", Msa(afterDischarge));
        Assert.Contains("INVALID_TRANSITION", Err(afterDischarge), StringComparison.Ordinal);

        // An update of the discharged visit naming the admission's place leaves the history as it was.
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A08", "STEP-8", Visit, "20250606120000", "20250601085000"))).Ack));

        // Every place was left after it was taken (FHIR per-1), and the visit ended where it was.
        var ended = await VisitAsync();
        Assert.Equal(Encounter.EncounterStatus.Finished, ended.Status);
        Assert.Equal(2, ended.Location.Count);
        Assert.All(ended.Location, l => Assert.True(l.Period?.End is not null && string.CompareOrdinal(l.Period.Start, l.Period.End) <= 0,
            string.Join(" / ", ended.Location.Select(x => $"{x.Location?.Reference} {x.Status} {x.Period?.Start}-{x.Period?.End}"))));
    }

    [Fact]
    public async Task A_patient_moved_back_to_a_ward_has_both_stays_there_and_an_A13_naming_a_stale_place_reopens_the_stay_the_discharge_ended()
    {
        await SeedOrganizationsAsync();
        const string Visit = "ZY2098000016";
        const string Endocrinology = "0307^^^QX2100012^^^^^内分泌科";
        const string Cardiology = "0304^^^QX2100012^^^^^心血管内科";
        static byte[] At(string trigger, string controlId, string time, string place, string prior = "", string discharged = "") =>
            Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(InpatientEvent(trigger, controlId, Visit, time, "20250601085000", discharged))
                .Replace($"|{Endocrinology}|R|||", $"|{place}|R||{prior}|", StringComparison.Ordinal));
        async Task<Encounter> VisitAsync() => Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier={Visit}"));
        static string Stays(Encounter visit) => string.Join(" / ", visit.Location.Select(l => $"{l.Location?.Display} {l.Status} {l.Period?.Start}-{l.Period?.End}"));

        foreach (var message in new[]
        {
            At("A01", "BACK-1", "20250601085000", Endocrinology),
            At("A02", "BACK-2", "20250603100000", Cardiology, Endocrinology),
            At("A02", "BACK-3", "20250604100000", Endocrinology, Cardiology),
            // The admission sent again names the ward the patient is in: its stay keeps when it was taken.
            At("A01", "BACK-4", "20250604120000", Endocrinology),
        })
        {
            var (_, ack) = await PostHl7Async(message);
            Assert.True(Msa(ack) == "AA", ack);
        }

        var back = await VisitAsync();
        Assert.True(back.Location.Count == 3, Stays(back));
        var now = Assert.Single(back.Location, l => l.Status == Encounter.EncounterLocationStatus.Active);
        Assert.StartsWith("2025-06-04T10:00", now.Period!.Start, StringComparison.Ordinal);
        Assert.StartsWith("2025-06-03T10:00", back.Location[0].Period!.End, StringComparison.Ordinal);

        // Discharged, and the discharge cancelled by messages naming the cardiology ward the patient left.
        Assert.Equal("AA", Msa((await PostHl7Async(At("A03", "BACK-5", "20250605120000", Cardiology, discharged: "20250605120000"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(At("A13", "BACK-6", "20250605130000", Cardiology))).Ack));

        var reopened = await VisitAsync();
        Assert.True(reopened.Location.Count == 3, Stays(reopened));
        Assert.Equal(Encounter.EncounterStatus.InProgress, reopened.Status);
        var active = Assert.Single(reopened.Location, l => l.Status == Encounter.EncounterLocationStatus.Active);
        Assert.True(active.Period!.End is null && active.Period.Start!.StartsWith("2025-06-04T10:00", StringComparison.Ordinal), Stays(reopened));
        Assert.All(reopened.Location.Where(l => l != active), l => Assert.True(string.CompareOrdinal(l.Period!.Start, l.Period.End) <= 0, Stays(reopened)));
    }

    [Fact]
    public async Task A_result_or_a_dose_naming_another_patients_visit_is_UNKNOWN_REFERENCE()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "OWNER-DOSE-1", "ZY2098000017", "20250601085000", "20250601085000"))).Ack));

        var dose = Encoding.UTF8.GetString(HisDose(884_101, "OWNER-DOSE-2", "20250602")).Replace("\rORC|",
            "\rPV1|1|I|0307^^^QX2100012||||||||||||||||ZY2098000017^^^QX2100012&2.16.156.10011.1.11&ISO^VN\rORC|", StringComparison.Ordinal);
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(dose));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("ERR||PV1^1^19|", ack, StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<Immunization>("Immunization?identifier=JZ-OWNER-DOSE-2"));
        Assert.Contains("ERR||PV1^1^19|", ack, StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<Immunization>("Immunization?identifier=JZ-OWNER-DOSE-2"));
    }

    [Fact]
    public async Task A_discharge_of_the_day_alone_on_the_day_of_a_transfer_is_accepted()
    {
        await SeedOrganizationsAsync();
        const string Visit = "ZY2098000015";
        var transfer = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(InpatientEvent("A02", "DAY-2", Visit, "20250603100000", "20250601085000"))
            .Replace("|0307^^^QX2100012^^^^^内分泌科|R|||", "|0304^^^QX2100012|R||0307^^^QX2100012^^^^^内分泌科|", StringComparison.Ordinal));
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "DAY-1", Visit, "20250601085000", "20250601085000"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(transfer)).Ack));

        var (_, ack) = await PostHl7Async(InpatientEvent("A03", "DAY-3", Visit, "20250603180000", "20250601085000", discharged: "20250603"));

        Assert.True(Msa(ack) == "AA", ack);
    }

    [Theory]
    [InlineData("QX2110034", "NOPARTNER-1")]
    [InlineData("QX2110026", "NOPARTNER-2")]
    public async Task An_HIS_referral_to_an_organisation_without_a_referral_agreement_is_refused_as_over_FHIR(string receiver, string key)
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("16_ADT_A04_baisha_lidefu.hl7");
        var referral = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "17_REF_I12_baisha_lidefu_up.hl7")))
            .Replace("ZZ-QX2110026-20250506-0007", $"ZZ-QX2110026-20250506-{key}", StringComparison.Ordinal)
            .Replace("QX2110026-20250506-000418", $"QX2110026-{key}", StringComparison.Ordinal)
            .Replace("0304^^^QX2100012^^^^^心血管内科", $"0304^^^{receiver}", StringComparison.Ordinal);

        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(referral));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("referral-partner", ack, StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<ServiceRequest>($"ServiceRequest?identifier=ZZ-QX2110026-20250506-{key}"));
    }

    [Fact]
    public async Task A_retracted_township_dose_row_gives_the_dose_back_to_the_hospitals_report_and_a_row_of_the_day_keeps_the_hospitals_time()
    {
        await SeedOrganizationsAsync();
        const int N = 883_701;
        var day = $"2024-10-{N % 28 + 1:D2}";
        var hospital = Encoding.UTF8.GetString(HisDose(N, "RETRACT-HIS-1", day.Replace("-", "", StringComparison.Ordinal)))
            .Replace("|202409A011|", "|HIS-LOT-A|", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(hospital))).Ack));

        // The township reports the same dose first hand, with its own lot, vaccinator and trace code: one Immunization, the later report's.
        var township = Rewrite(LegacyData.TownshipBatch(first: N, residents: 1), "immunizations.csv",
            lines => lines[1] = WithCells(lines[0], lines[1], ("trace_code", "81234567890123456789")));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(township)).StatusCode);
        var shared = Assert.Single(await SearchAsync<Immunization>($"Immunization?identifier=JZ-QX2110026-{N:D9}"));
        Assert.Equal("202409A011", shared.LotNumber);
        Assert.StartsWith($"{day}T10:00", ((FhirDateTime)shared.Occurrence).Value, StringComparison.Ordinal);

        // Another hospital's transcription of the dose adds its identifiers and changes nothing else.
        var transcription = Encoding.UTF8.GetString(HisDose(N, "RETRACT-HIS-2", day.Replace("-", "", StringComparison.Ordinal)))
            .Replace("|00^新接种^NIP001|", "|01^历史记录^NIP001|", StringComparison.Ordinal).Replace("|QXHIS|QX2100012|", "|QXHIS|QX2100020|", StringComparison.Ordinal)
            .Replace("^^^QX2100012^MR", "^^^QX2100020^MR", StringComparison.Ordinal).Replace("|^^^QX2100012|", "|^^^QX2100020|", StringComparison.Ordinal);
        var (_, transcribed) = await PostHl7Async(Encoding.UTF8.GetBytes(transcription));
        Assert.True(Msa(transcribed) == "AA", transcribed);

        // The township retracts its row: the dose is the hospital's report again, without the row's number.
        var deleted = Rewrite(Rewrite(LegacyData.TownshipBatch(first: N, residents: 1, sequence: 2), "residents.csv", lines => lines.RemoveRange(1, lines.Count - 1)),
            "immunizations.csv", lines => lines[1] = DeletedRow(lines[0], "vacc_id", $"JZ-QX2110026-{N:D9}", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(deleted)).StatusCode);

        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?identifier=JZ-RETRACT-HIS-1"));
        Assert.Equal(shared.Id, dose.Id);
        Assert.Equal("HIS-LOT-A", dose.LotNumber);
        Assert.StartsWith($"{day}T10:00", ((FhirDateTime)dose.Occurrence).Value, StringComparison.Ordinal);
        Assert.DoesNotContain(dose.Identifier, i => i.Value == $"JZ-QX2110026-{N:D9}" || i.Value == "81234567890123456789");
        Assert.Contains(dose.Performer, p => p.Actor?.Display == "江燕");
    }

    [Fact]
    public async Task A_referral_under_way_is_answered_after_its_agreement_is_withdrawn()
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("16_ADT_A04_baisha_lidefu.hl7");
        async Task<string> PostAsync(string sample, string controlId) => (await PostHl7Async(Encoding.UTF8.GetBytes(
            (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-9051", StringComparison.Ordinal)
            .Replace("|QX2110026-20250506-000418|", $"|{controlId}|", StringComparison.Ordinal).Replace("|QX2100012-20250506-000702|", $"|{controlId}|", StringComparison.Ordinal)))).Ack;
        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "WITHDRAWN-1")));

        var response = await Client.GetAsync(new Uri("/fhir/Organization/QX2110026", UriKind.Relative));
        var original = await Fhir.Read<Organization>(response);
        var withdrawn = (Organization)original.DeepCopy();
        withdrawn.Extension.RemoveAll(e => e.Url == "https://interophub.dev/fhir/StructureDefinition/referral-partner");
        Assert.True((await Client.PutAsync(new Uri("/fhir/Organization/QX2110026", UriKind.Relative), Fhir.Content(withdrawn))).IsSuccessStatusCode);
        try
        {
            // The receiver accepts the referral made while the agreement held.
            var ack = await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "WITHDRAWN-2");
            Assert.True(Msa(ack) == "AA", ack);
        }
        finally
        {
            original.Meta = null;
            Assert.True((await Client.PutAsync(new Uri("/fhir/Organization/QX2110026", UriKind.Relative), Fhir.Content(original))).IsSuccessStatusCode);
        }
    }

    [Fact]
    public async Task A_mother_named_by_her_childs_certificate_and_then_by_the_HIS_keeps_one_name()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_491));
        var mother = MotherIdOf(certificate);
        Assert.Contains(await PostCertificateAsync(certificate), i => i.Details?.Coding[0].Code == "APPLIED");

        var registration = "MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250620090000||ADT^A04^ADT_A01|MOTHER-NAME-1|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A04|20250620090000\r"
            + $"PID|1||0000874911^^^QX2100012^MR~{mother}^^^&2.16.156.10011.1.3&ISO^NNCHN||母亲7491||{mother[6..14]}|F\r"
            + "PV1|1|O|0307^^^QX2100012^^^^^内分泌科|R|||D0155^许文涛||||||||||||MZ2098749101^^^QX2100012&2.16.156.10011.1.11&ISO^VN|||||||||||||||||||||||||20250620090000\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(registration));
        Assert.True(Msa(ack) == "AA", ack);

        var patient = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={mother}"));
        Assert.Equal("母亲7491", Assert.Single(patient.Name).Text);
    }

    [Fact]
    public async Task A_certificate_correcting_the_name_of_a_mother_the_HIS_registered_in_characters_and_pinyin_replaces_the_characters_and_keeps_the_pinyin()
    {
        await SeedOrganizationsAsync();
        var certificate = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_492)).Replace("<Name>母亲7492</Name>", "<Name>陈思雨</Name>", StringComparison.Ordinal);
        var mother = MotherIdOf(certificate);
        var registration = "MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250620090000||ADT^A04^ADT_A01|MOTHER-NAME-2|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A04|20250620090000\r"
            + $"PID|1||0000874921^^^QX2100012^MR~{mother}^^^&2.16.156.10011.1.3&ISO^NNCHN||陈^思雨^^^^^L^I~CHEN^SIYU^^^^^L^A||{mother[6..14]}|F\r"
            + "PV1|1|O|0307^^^QX2100012^^^^^内分泌科|R|||D0155^许文涛||||||||||||MZ2098749201^^^QX2100012&2.16.156.10011.1.11&ISO^VN|||||||||||||||||||||||||20250620090000\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(registration));
        Assert.True(Msa(ack) == "AA", ack);

        Assert.Contains(await PostCertificateAsync(certificate), i => i.Details?.Coding[0].Code == "APPLIED");
        var corrected = certificate.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Name>陈思雨</Name>", "<Name>陈思语</Name>", StringComparison.Ordinal)
            .Replace("<LastModified>", "<Corrections><Correction><Field>Mother/Name</Field><OldValue>陈思雨</OldValue><NewValue>陈思语</NewValue>"
                + "<Reason>姓名录入错误</Reason><ApprovedDate>2025-06-01</ApprovedDate></Correction></Corrections><LastModified>", StringComparison.Ordinal);
        Assert.Contains(await PostCertificateAsync(corrected), i => i.Details?.Coding[0].Code == "APPLIED");

        // The corrected name replaces the one in characters; the pinyin repetition, another representation, stays.
        var names = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={mother}")).Name;
        Assert.Equal(["陈思语", "CHEN SIYU"], names.Select(n => n.Text).Order(StringComparer.Ordinal).Reverse());
    }

    [Fact]
    public async Task A_cancelled_discharge_takes_back_its_final_diagnoses_and_keeps_the_admission_diagnoses()
    {
        await SeedOrganizationsAsync();
        const string Visit = "ZY2098000014";
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "UNDO-DX-1", Visit, "20250601085000", "20250601085000",
            obx: "DG1|1||E11.9^2型糖尿病^ICD10|||A\r"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A03", "UNDO-DX-2", Visit, "20250605120000", "20250601085000", discharged: "20250605120000",
            obx: "DG1|1||E11.9^2型糖尿病^ICD10|||F\r"))).Ack));
        var discharged = Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier={Visit}"));
        var final = Assert.Single(discharged.Diagnosis, d => d.Use!.Coding.Any(c => c.Code == "F")).Condition!.Reference!;

        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A13", "UNDO-DX-3", Visit, "20250605130000", "20250601085000"))).Ack));

        var reopened = Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier={Visit}"));
        Assert.Equal(Encounter.EncounterStatus.InProgress, reopened.Status);
        Assert.Equal(["A"], reopened.Diagnosis.Select(d => d.Use!.Coding.First().Code));
        var condition = await Fhir.Read<Condition>(await Client.GetAsync(new Uri($"/fhir/{final}", UriKind.Relative)));
        Assert.Equal("entered-in-error", condition.VerificationStatus!.Coding[0].Code);
    }

    [Fact]
    public async Task A_transfer_or_a_result_naming_another_patients_visit_is_UNKNOWN_REFERENCE_and_the_visit_stays_with_its_patient()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "OWNER-1", "ZY2098000012", "20250601085000", "20250601085000"))).Ack));
        var owner = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000012")).Subject!.Reference;

        // The same visit number under another MRN (PID-3): an A02, then a result.
        static byte[] OtherPatient(byte[] message) => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(message)
            .Replace("PID|1||8000012^", "PID|1||8000099^", StringComparison.Ordinal));
        var transfer = await PostHl7Async(OtherPatient(InpatientEvent("A02", "OWNER-2", "ZY2098000012", "20250602090000", "20250601085000")));
        var result = await PostHl7Async(OtherPatient(InpatientEvent("A08", "OWNER-3", "ZY2098000012", "20250602100000", "20250601085000",
            obx: "OBX|1|NM|8480-6^收缩压^LN||130|mm[Hg]|||||F\r")));

        foreach (var (_, ack) in new[] { transfer, result })
        {
            Assert.Equal("AE", Msa(ack));
            Assert.Contains("ERR||PV1^1^19|", ack, StringComparison.Ordinal);
            Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        }

        Assert.Equal(owner, Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000012")).Subject!.Reference);
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=8000099"));
    }

    [Fact]
    public async Task A_result_naming_another_patients_report_number_is_UNKNOWN_REFERENCE_and_the_report_stays_with_its_patient()
    {
        await SeedOrganizationsAsync();
        static byte[] Result(string controlId, string mrn, string value, string status = "F") => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXLIS|QX2100012|IHUB|QX-PLATFORM|20250620110000||ORU^R01^ORU_R01|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||{mrn}^^^QX2100012^MR||患者{mrn}||19700303|F\r"
            + "ORC|RE||OWNLAB-884201\r"
            + $"OBR|1||OWNLAB-884201^QXLIS|BIO-RF^肾功能^QXLIS|||20250620080000|||||||||||||||20250620090000||CH|{status}\r"
            + $"OBX|1|NM|NA^钠^QXLIS||{value}|mmol/L|137-147||||{status}\r");
        Assert.Equal("AA", Msa((await PostHl7Async(Result("OWNLAB-1", "0000884201", "140"))).Ack));
        var report = Assert.Single(await SearchAsync<DiagnosticReport>("DiagnosticReport?identifier=OWNLAB-884201"));

        // The same report number (MSH-4, OBR-3) under another MRN of the laboratory's hospital: a result, then a correction.
        foreach (var (controlId, status) in new[] { ("OWNLAB-2", "F"), ("OWNLAB-3", "C") })
        {
            var (_, ack) = await PostHl7Async(Result(controlId, "0000884202", "150", status));
            Assert.Equal("AE", Msa(ack));
            Assert.Contains("ERR||OBR^1^3|", ack, StringComparison.Ordinal);
            Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        }

        Assert.Equal(report.Subject!.Reference, Assert.Single(await SearchAsync<DiagnosticReport>("DiagnosticReport?identifier=OWNLAB-884201")).Subject!.Reference);
        var sodium = Assert.Single(await SearchAsync<Observation>($"Observation?subject={report.Subject.Reference}&code=NA"));
        Assert.Equal(140m, Assert.IsType<Quantity>(sodium.Value).Value);
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=0000884202"));
        // Its own patient's correction is applied.
        Assert.Equal("AA", Msa((await PostHl7Async(Result("OWNLAB-4", "0000884201", "141", "C"))).Ack));
    }

    [Fact]
    public async Task A_training_message_is_refused_and_leaves_its_control_ID_to_the_production_message()
    {
        await SeedOrganizationsAsync();
        var production = LegacyData.Hl7Registration(884_501);
        var training = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(production).Replace("|P|2.5|", "|T|2.5|", StringComparison.Ordinal));

        var (_, refused) = await PostHl7Async(training);
        Assert.Equal("AR", Msa(refused));
        Assert.Contains("UNSUPPORTED", refused, StringComparison.Ordinal);
        Assert.Equal("AR", Msa((await PostHl7Async(training)).Ack));

        // The production message with the same MSH-10 is new data, not a reuse of the control ID.
        Assert.Equal("AA", Msa((await PostHl7Async(production)).Ack));
        Assert.Single(await SearchAsync<Patient>("Patient?identifier=0007884501"));
    }

    [Fact]
    public async Task A_referral_message_without_notes_keeps_the_notes_earlier_messages_left_on_its_Task()
    {
        await SeedOrganizationsAsync();
        const string Key = "ZZ-QX2110026-20250506-9071";
        Task<string> PostAsync(string sample, string controlId) => PostReferralSampleAsync(sample, Key, controlId);

        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "TASKNOTE-1")));
        Assert.Equal("AA", Msa(await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "TASKNOTE-2")));
        // The arrival carries no NTE.
        Assert.Equal("AA", Msa(await PostAsync("20_REF_I13_county_lidefu_arrived.hl7", "TASKNOTE-3")));

        var task = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.InProgress, task.Status);
        Assert.Contains(task.Note, n => (n.Text ?? "").StartsWith("已预留心内科床位", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_final_result_sent_again_after_its_correction_is_refused_and_the_corrected_value_stays()
    {
        await SeedOrganizationsAsync();
        static byte[] Result(string controlId, string value, string status, string? reportStatus = null) => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXLIS|QX2100012|IHUB|QX-PLATFORM|20250620110000||ORU^R01^ORU_R01|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "PID|1||0000884211^^^QX2100012^MR||患者884211||19700303|F\r"
            + "ORC|RE||STEPLAB-884211\r"
            + $"OBR|1||STEPLAB-884211^QXLIS|BIO-RF^肾功能^QXLIS|||20250620080000|||||||||||||||20250620090000||CH|{reportStatus ?? status}\r"
            + $"OBX|1|NM|NA^钠^QXLIS||{value}|mmol/L|137-147||||{status}\r");
        Assert.Equal("AA", Msa((await PostHl7Async(Result("STEPLAB-1", "140", "F"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Result("STEPLAB-2", "150", "C"))).Ack));

        // The original final again under a new control id (a resend from a queue), a preliminary, and the corrected value
        // in a report sent final: none may take the corrected result back a step.
        foreach (var (controlId, value, status) in new[] { ("STEPLAB-3", "140", "F"), ("STEPLAB-4", "140", "P"), ("STEPLAB-7", "150", "F") })
        {
            var (_, ack) = await PostHl7Async(Result(controlId, value, status));
            Assert.Equal("AE", Msa(ack));
            Assert.Contains("ERR||OBX^1^11|", ack, StringComparison.Ordinal);
            Assert.Contains("INVALID_TRANSITION", ack, StringComparison.Ordinal);
        }

        // A corrected report (OBR-25 C) sent whole carries the result as final with its corrected value: taken, still corrected.
        Assert.Equal("AA", Msa((await PostHl7Async(Result("STEPLAB-5", "150", "F", reportStatus: "C"))).Ack));
        var sodium = Assert.Single(await SearchAsync<Observation>("Observation?patient.identifier=0000884211&code=NA"));
        Assert.Equal(ObservationStatus.Corrected, sodium.Status);
        Assert.Equal(DiagnosticReport.DiagnosticReportStatus.Corrected,
            Assert.Single(await SearchAsync<DiagnosticReport>("DiagnosticReport?identifier=STEPLAB-884211")).Status);
        Assert.Equal(150m, Assert.IsType<Quantity>(sodium.Value).Value);
        // A second correction is taken.
        Assert.Equal("AA", Msa((await PostHl7Async(Result("STEPLAB-6", "151", "C"))).Ack));
        Assert.Equal(151m, Assert.IsType<Quantity>(Assert.Single(await SearchAsync<Observation>("Observation?patient.identifier=0000884211&code=NA")).Value).Value);
    }

    [Fact]
    public async Task A_referral_message_naming_another_patients_referral_number_is_UNKNOWN_REFERENCE_and_the_referral_stays_as_it_was()
    {
        await SeedOrganizationsAsync();
        const string Key = "ZZ-QX2110026-20250506-9061";
        Task<string> PostAsync(string sample, string controlId, string? pid = null) =>
            PostReferralSampleAsync(sample, Key, controlId, pid is null ? null : l => l.StartsWith("PID|", StringComparison.Ordinal) ? pid : l);

        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "OTHERREF-1")));
        var request = Assert.Single(await SearchAsync<ServiceRequest>($"ServiceRequest?identifier={Key}"));

        // The referring centre's I12 again under another of its MRNs; the receiving hospital's acceptance naming an MRN of
        // its own the referral's patient does not hold, with another person's ID number.
        var amended = await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "OTHERREF-2", "PID|1||0000884203^^^QX2110026^MR||另一人||19610101|F");
        var accepted = await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "OTHERREF-3",
            $"PID|1||0000884204^^^QX2100012^MR~{LegacyData.IdNumber(884_204)}^^^&2.16.156.10011.1.3&ISO^NNCHN||另一人||19610101|F");

        foreach (var ack in new[] { amended, accepted })
        {
            Assert.Equal("AE", Msa(ack));
            Assert.Contains("ERR||RF1^1^6|", ack, StringComparison.Ordinal);
            Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        }

        var after = Assert.Single(await SearchAsync<ServiceRequest>($"ServiceRequest?identifier={Key}"));
        Assert.Equal(request.Meta!.VersionId, after.Meta!.VersionId);
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.Requested, Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>($"Task?identifier={Key}")).Status);
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=0000884203"));
        // The receiving hospital naming the patient by its own MRN and the same ID number is the same patient; so is the
        // referring centre naming its MRN of the patient with an ID number the hub did not take.
        Assert.Equal("AA", Msa(await PostAsync("18_REF_I13_county_lidefu_accepted.hl7", "OTHERREF-4")));
        Assert.Equal("AA", Msa(await PostAsync("17_REF_I12_baisha_lidefu_up.hl7", "OTHERREF-5",
            $"PID|1||0000021875^^^QX2110026^MR~{LegacyData.IdNumber(884_205)}^^^&2.16.156.10011.1.3&ISO^NNCHN||李德福||19580412|M")));
    }

    [Fact]
    public async Task A_visit_cancelled_by_A11_is_unknown_to_a_later_discharge_and_an_A08_leaves_it_cancelled()
    {
        await SeedOrganizationsAsync();
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A01", "CANCELLED-1", "ZY2098000003", "20250601085000", "20250601085000"))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A11", "CANCELLED-2", "ZY2098000003", "20250601093000", "20250601085000"))).Ack));

        var (_, discharge) = await PostHl7Async(InpatientEvent("A03", "CANCELLED-3", "ZY2098000003", "20250605100000", "", "20250605100000"));
        Assert.Equal("AE", Msa(discharge));
        Assert.Contains("UNKNOWN_REFERENCE", discharge, StringComparison.Ordinal);
        var (_, reopen) = await PostHl7Async(InpatientEvent("A13", "CANCELLED-5", "ZY2098000003", "20250605103000", "20250601085000"));
        Assert.Contains("UNKNOWN_REFERENCE", reopen, StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(InpatientEvent("A08", "CANCELLED-4", "ZY2098000003", "20250605110000", "20250601085000"))).Ack));

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2098000003"));
        Assert.Equal(Encounter.EncounterStatus.EnteredInError, visit.Status);
        Assert.Null(visit.Period!.End);
    }

    [Fact]
    public async Task A_cancelled_referral_keeps_the_clinical_summary_of_its_I12_beside_the_cancel_remark()
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("14_REF_I12_baisha_zhaojianhua_up.hl7", "15_REF_I14_baisha_zhaojianhua_cancel.hl7");

        var referral = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250416-0004"));
        Assert.Contains(referral.Note, n => n.Text?.Contains("2型糖尿病", StringComparison.Ordinal) == true);
        Assert.Contains(referral.Note, n => n.Text?.Contains("市级医院", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task A_content_change_once_the_patient_arrived_and_a_rejection_without_its_reason_are_refused_and_change_nothing()
    {
        await SeedOrganizationsAsync();
        // The sample referral under a number of its own: the class's other tests use the sample's.
        async Task<string> SendAsync(string sample)
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
                .Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-8127", StringComparison.Ordinal)
                .Replace("|QX2110026-20250506-", "|QX2110026-20250506-8127", StringComparison.Ordinal)
                .Replace("|QX2100012-2025050", "|QX2100012-8127-2025050", StringComparison.Ordinal)
                .Replace("ZY2025001873", "ZY2025812701", StringComparison.Ordinal);
            var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(text));
            return ack;
        }

        Assert.Equal("AA", Msa(await SendAsync("17_REF_I12_baisha_lidefu_up.hl7")));
        Assert.Equal("AA", Msa(await SendAsync("18_REF_I13_county_lidefu_accepted.hl7")));
        Assert.Equal("AA", Msa(await SendAsync("20_REF_I13_county_lidefu_arrived.hl7")));

        // his-hl7v2.md §6: an I13 P changes content only while the referral is requested, received or accepted; an I12
        // for a stored referral is an I13 P.
        var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "17_REF_I12_baisha_lidefu_up.hl7")))
            .Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-8127", StringComparison.Ordinal)
            .Replace("QX2110026-20250506-000418", "QX2110026-20250506-812799", StringComparison.Ordinal);
        var (_, amended) = await PostHl7Async(Encoding.UTF8.GetBytes(text));

        Assert.Contains("INVALID_TRANSITION", amended, StringComparison.Ordinal);
        var task = Assert.Single(await SearchAsync<Hl7.Fhir.Model.Task>("Task?identifier=ZZ-QX2110026-20250506-8127"));
        Assert.Equal(Hl7.Fhir.Model.Task.TaskStatus.InProgress, task.Status);
        Assert.Equal(RequestStatus.Active, Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-8127")).Status);

        // A rejection names its reason in an NTE with NTE-4 RJ; without it the message lacks a required field.
        var rejection = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "18_REF_I13_county_lidefu_accepted.hl7")))
            .Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-8137", StringComparison.Ordinal)
            .Replace("QX2100012-20250506-000702", "QX2100012-20250506-813702", StringComparison.Ordinal)
            .Replace("RF1|A^同意接收^QXREF", "RF1|R^拒绝^QXREF", StringComparison.Ordinal);
        var (_, refused) = await PostHl7Async(Encoding.UTF8.GetBytes(string.Join('\r', rejection.Split('\r', '\n').Where(l => !l.StartsWith("NTE|", StringComparison.Ordinal)))));
        Assert.Contains("MISSING_REQUIRED", refused, StringComparison.Ordinal);
        Assert.Contains("NTE", refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_amended_I12_replaces_the_clinical_summary_and_a_remark_adds_to_it()
    {
        await SeedOrganizationsAsync();
        // The sample referral under a number of its own: the class's other tests use the sample's.
        var sample = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "17_REF_I12_baisha_lidefu_up.hl7")))
            .Replace("ZZ-QX2110026-20250506-0007", "ZZ-QX2110026-20250506-8117", StringComparison.Ordinal)
            .Replace("QX2110026-20250506-000418", "QX2110026-20250506-900418", StringComparison.Ordinal);
        var (_, first) = await PostHl7Async(Encoding.UTF8.GetBytes(sample));
        Assert.True(Msa(first) == "AA", first);

        // his-hl7v2.md §6: an I12 whose RF1-6 exists is a content change; this one corrects the summary and adds a remark.
        var amended = sample.Replace("QX2110026-20250506-900418", "QX2110026-20250506-900419", StringComparison.Ordinal)
            .Replace("规律服用氨氯地平5mg qd", "规律服用氨氯地平10mg qd", StringComparison.Ordinal).TrimEnd('\r', '\n') + "\rNTE|1|P|家属陪同转诊|RE\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(amended));
        Assert.True(Msa(ack) == "AA", ack);

        var referral = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-8117"));
        Assert.Contains(referral.Note, n => n.Text?.Contains("氨氯地平10mg", StringComparison.Ordinal) == true);
        Assert.DoesNotContain(referral.Note, n => n.Text?.Contains("氨氯地平5mg", StringComparison.Ordinal) == true);
        Assert.Contains(referral.Note, n => n.Text == "家属陪同转诊");

        // A cancellation's remark, without a summary, keeps both.
        var cancel = $"MSH|^~\\&|QXHIS|QX2110026|IHUB|QX-PLATFORM|20250506120000||REF^I14^REF_I12|QX2110026-20250506-900420|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "RF1|X^撤销^QXREF|A^尽快^HL70280|UP^上转^QXREF|RP^诊治后转回^HL70282|I^住院^HL70284|ZZ-QX2110026-20250506-8117^QX2110026|20250506091000||||\r"
            + sample.Split('\r', '\n').First(l => l.StartsWith("PRD|RP", StringComparison.Ordinal)) + "\r"
            + sample.Split('\r', '\n').First(l => l.StartsWith("PRD|RT", StringComparison.Ordinal)) + "\r"
            + sample.Split('\r', '\n').First(l => l.StartsWith("PID|", StringComparison.Ordinal)) + "\r"
            + "NTE|1|P|患者要求转往市级医院|RE\r";
        (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(cancel));
        Assert.True(Msa(ack) == "AA", ack);
        referral = Assert.Single(await SearchAsync<ServiceRequest>("ServiceRequest?identifier=ZZ-QX2110026-20250506-8117"));
        Assert.Equal(RequestStatus.Revoked, referral.Status);
        Assert.Contains(referral.Note, n => n.Text?.Contains("氨氯地平10mg", StringComparison.Ordinal) == true);
        Assert.Contains(referral.Note, n => n.Text == "家属陪同转诊");
        Assert.Contains(referral.Note, n => n.Text == "患者要求转往市级医院");
    }

    [Fact]
    public async Task A_delete_marker_in_ZPI_removes_the_payment_method_and_the_registered_poor_flag()
    {
        await SeedOrganizationsAsync();
        var id = LegacyData.IdNumber(990_777);
        var sex = (id[16] - '0') % 2 == 1 ? "M" : "F";
        byte[] A31(string controlId, string zpi) => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250601100000||ADT^A31^ADT_A05|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A31|20250601100000\r"
            + $"PID|1||0990777^^^QX2100012^MR~{id}^^^&2.16.156.10011.1.3&ISO^NNCHN||测试付费||{id[6..14]}|{sex}\r"
            + $"{zpi}\r"
            + "PV1|1|N\r");

        Assert.Equal("AA", Msa((await PostHl7Async(A31("ZPI-DELETE-1", "ZPI|1|02^城乡居民基本医疗保险||1"))).Ack));
        var before = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.Contains(before.Extension, e => e.Url == "urn:interophub:ext:payment-method");
        Assert.Contains(before.Extension, e => e.Url == "urn:interophub:ext:registered-poor");

        // §2: "" deletes the stored value, where an empty field would leave it.
        Assert.Equal("AA", Msa((await PostHl7Async(A31("ZPI-DELETE-2", "ZPI|1|\"\"||\"\""))).Ack));
        var after = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={id}"));
        Assert.DoesNotContain(after.Extension, e => e.Url is "urn:interophub:ext:payment-method" or "urn:interophub:ext:registered-poor");
    }

    [Fact]
    public async Task A_gap_in_a_sources_batch_sequence_is_a_warning_and_the_batch_is_applied()
    {
        await SeedOrganizationsAsync();
        async Task<List<System.Text.Json.JsonElement>> PostAsync(int sequence) =>
            (await GetJsonAsync((await PostTownshipAsync(LegacyData.TownshipBatch(first: 874_001, residents: 1, sequence))).Headers.Location!.ToString()))
                .GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        static bool Gap(System.Text.Json.JsonElement issue) => issue.GetProperty("diagnostics").GetString()!.Contains("have not arrived", StringComparison.Ordinal);

        // Past the sequences other tests of the database send for the centre (the first of these may follow a gap).
        await PostAsync(901);
        var second = await PostAsync(902);
        var fifth = await PostAsync(905);
        var late = await PostAsync(903);

        Assert.DoesNotContain(second.Concat(late), Gap);
        var gap = Assert.Single(fifth, Gap);
        Assert.Equal("warning", gap.GetProperty("severity").GetString());
        Assert.Contains("sequence 905 follows 902", gap.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(fifth, i => i.GetProperty("severity").GetString() == "error");
    }

    [Fact]
    public async Task A_certificate_arriving_after_the_one_replacing_it_is_stored_superseded_and_the_newborn_keeps_the_new_name_and_number()
    {
        await SeedOrganizationsAsync();
        // The samples' reissue and its original under numbers and a mother of their own (a valid ID number of another woman).
        var mother = LegacyData.IdNumber(873_101);
        string Own(string file) => File.ReadAllText(Path.Combine(Legacy, "birth-certificate", file))
            .Replace("R360007315", "R369990101", StringComparison.Ordinal).Replace("Q360418201", "Q369990101", StringComparison.Ordinal)
            .Replace("36992119960823078X", mother, StringComparison.Ordinal);

        Assert.Contains(await PostCertificateAsync(Own("R360007315_reissue_of_Q360418201.xml")), i => i.Details?.Coding[0].Code == "APPLIED");
        var issues = await PostCertificateAsync(Own("Q360418201.xml"));

        Assert.Contains(issues, i => i.Severity == OperationOutcome.IssueSeverity.Warning && (i.Diagnostics ?? "").Contains("replaces it", StringComparison.Ordinal));
        Assert.Equal(DocumentReferenceStatus.Superseded, Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=Q369990101")).Status);
        Assert.Equal(DocumentReferenceStatus.Current, Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=R369990101")).Status);
        var newborn = Assert.Single(await SearchAsync<Patient>("Patient?identifier=R369990101"));
        Assert.Equal("陈思雨", newborn.Name.Single(n => n.Use != HumanName.NameUse.Old).Text);
        Assert.Equal([("Q369990101", Identifier.IdentifierUse.Old), ("R369990101", Identifier.IdentifierUse.Official)],
            newborn.Identifier.Where(i => i.System == "urn:interophub:sid:birth-certificate").Select(i => (i.Value!, i.Use!.Value)).Order());
    }

    [Fact]
    public async Task A_reissued_certificate_leaves_the_mothers_managing_organisation_to_her_township()
    {
        await SeedOrganizationsAsync();
        var mother = LegacyData.IdNumber(873_121);
        string Own(string file) => File.ReadAllText(Path.Combine(Legacy, "birth-certificate", file))
            .Replace("R360007315", "R369990121", StringComparison.Ordinal).Replace("Q360418201", "Q369990121", StringComparison.Ordinal)
            .Replace("36992119960823078X", mother, StringComparison.Ordinal);
        Assert.Contains(await PostCertificateAsync(Own("Q360418201.xml")), i => i.Details?.Coding[0].Code == "APPLIED");
        var stored = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={mother}"));
        stored.ManagingOrganization = new ResourceReference("Organization/QX2120048");
        Assert.Equal(HttpStatusCode.OK, (await Client.PutAsync($"/fhir/Patient/{stored.Id}", Fhir.Content(stored))).StatusCode);

        Assert.Contains(await PostCertificateAsync(Own("R360007315_reissue_of_Q360418201.xml")), i => i.Details?.Coding[0].Code == "APPLIED");

        var after = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={mother}"));
        Assert.Equal("Organization/QX2120048", after.ManagingOrganization?.Reference);
    }

    [Fact]
    public async Task A_certificate_replacing_one_the_hub_never_received_is_applied_with_a_warning()
    {
        await SeedOrganizationsAsync();
        var xml = (await File.ReadAllTextAsync(Path.Combine(Legacy, "birth-certificate", "R360007315_reissue_of_Q360418201.xml")))
            .Replace("R360007315", "R369990001", StringComparison.Ordinal).Replace("Q360418201", "Q369990001", StringComparison.Ordinal);

        var issues = await PostCertificateAsync(xml);

        Assert.Contains(issues, i => i.Details?.Coding[0].Code == "APPLIED");
        var warning = Assert.Single(issues, i => i.Severity == OperationOutcome.IssueSeverity.Warning && (i.Diagnostics ?? "").Contains("never received", StringComparison.Ordinal));
        Assert.Contains("Q369990001", warning.Diagnostics, StringComparison.Ordinal);
        Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=R369990001"));
    }

    [Fact]
    public async Task A_resent_rejected_message_is_rejected_again_for_the_same_reason()
    {
        await SeedOrganizationsAsync();
        async Task<byte[]> OwnVisitAsync(string sample) => Encoding.UTF8.GetBytes((await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
            .Replace("ZY2025001873", "ZY2099000077", StringComparison.Ordinal).Replace("|QX2100012-2025", "|RESEND-2025", StringComparison.Ordinal));
        var transfer = await OwnVisitAsync("22_ADT_A02_county_lidefu_transfer.hl7");

        // The transfer arrives before the admission: the visit is unknown (§1 "Order").
        var (_, first) = await PostHl7Async(transfer);
        Assert.Equal("AE", Msa(first));
        Assert.Contains("UNKNOWN_REFERENCE", first, StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(await OwnVisitAsync("19_ADT_A01_county_lidefu.hl7"))).Ack));

        // The same message again: rejected again, for the same reason, and not applied (§1 "Durability and idempotency").
        var (status, again) = await PostHl7Async(transfer);
        Assert.Equal((HttpStatusCode.BadRequest, "AE"), (status, Msa(again)));
        Assert.Contains("UNKNOWN_REFERENCE", again, StringComparison.Ordinal);
        Assert.Contains("PV1^1^19", again, StringComparison.Ordinal);
        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000077"));
        Assert.All(visit.Location, l => Assert.DoesNotContain("心血管内科", l.Location!.Display ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_transfer_ends_the_place_left_and_starts_the_new_one_at_its_clinical_time()
    {
        await SeedOrganizationsAsync();
        async Task<byte[]> OwnVisitAsync(string sample, Func<string, string>? change = null)
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
                .Replace("ZY2025001873", "ZY2099000078", StringComparison.Ordinal).Replace("|QX2100012-2025", "|MOVE-2025", StringComparison.Ordinal);
            return Encoding.UTF8.GetBytes(change?.Invoke(text) ?? text);
        }

        Assert.Equal("AA", Msa((await PostHl7Async(await OwnVisitAsync("19_ADT_A01_county_lidefu.hl7"))).Ack));
        var admitted = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000078"));
        // Recorded at 10:00 (EVN-2), moved at 09:30 (EVN-6, the clinical time).
        var (_, ack) = await PostHl7Async(await OwnVisitAsync("22_ADT_A02_county_lidefu_transfer.hl7",
            t => t.Replace("EVN|A02|20250509100000|||N0211^谢芳", "EVN|A02|20250509100000|||N0211^谢芳|20250509093000", StringComparison.Ordinal)));
        Assert.True(Msa(ack) == "AA", ack);

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000078"));
        var left = Assert.Single(visit.Location, l => l.Status == Encounter.EncounterLocationStatus.Completed);
        var now = Assert.Single(visit.Location, l => l.Status == Encounter.EncounterLocationStatus.Active);
        Assert.Equal(admitted.Period!.Start, left.Period!.Start);
        Assert.StartsWith("2025-05-09T09:30:00", left.Period.End, StringComparison.Ordinal);
        Assert.StartsWith("2025-05-09T09:30:00", now.Period!.Start, StringComparison.Ordinal);
        Assert.Null(now.Period.End);

        // A second transfer whose PV1-6 names another place than the one the visit is in: that one is left at its time too.
        (_, ack) = await PostHl7Async(await OwnVisitAsync("22_ADT_A02_county_lidefu_transfer.hl7", t => t
            .Replace("|MOVE-2025", "|MOVE2-2025", StringComparison.Ordinal)
            .Replace("EVN|A02|20250509100000|||N0211^谢芳", "EVN|A02|20250509100000|||N0211^谢芳|20250509095000", StringComparison.Ordinal)
            .Replace("0304^0512^02^QX2100012^^^^^心血管内科", "0305^0601^01^QX2100012^^^^^康复科", StringComparison.Ordinal)));
        Assert.True(Msa(ack) == "AA", ack);
        var moved = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000078"));
        var ward = Assert.Single(moved.Location, l => l.Location!.Display!.Contains("心血管内科", StringComparison.Ordinal));
        Assert.Equal(Encounter.EncounterLocationStatus.Completed, ward.Status);
        Assert.StartsWith("2025-05-09T09:50:00", ward.Period!.End, StringComparison.Ordinal);
        Assert.StartsWith("2025-05-09T09:50:00", Assert.Single(moved.Location, l => l.Status == Encounter.EncounterLocationStatus.Active).Period!.Start, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cancel_of_admission_marks_the_diagnoses_of_the_visit_entered_in_error()
    {
        await SeedOrganizationsAsync();
        async Task<byte[]> OwnVisitAsync(string sample) => Encoding.UTF8.GetBytes((await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
            .Replace("ZY2025000644", "ZY2099000644", StringComparison.Ordinal).Replace("|QX2100020-2025", "|CANCELDX-2025", StringComparison.Ordinal));
        Assert.Equal("AA", Msa((await PostHl7Async(await OwnVisitAsync("30_ADT_A01_tcm_qianguodong.hl7"))).Ack));
        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000644"));
        var diagnosis = Assert.Single(await SearchAsync<Condition>($"Condition?encounter=Encounter/{visit.Id}"));
        Assert.Equal("confirmed", diagnosis.VerificationStatus!.Coding.Single().Code);

        var (_, ack) = await PostHl7Async(await OwnVisitAsync("31_ADT_A11_tcm_qianguodong_cancel.hl7"));
        Assert.True(Msa(ack) == "AA", ack);

        Assert.Equal(Encounter.EncounterStatus.EnteredInError, Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000644")).Status);
        var cancelled = Assert.Single(await SearchAsync<Condition>($"Condition?encounter=Encounter/{visit.Id}"));
        Assert.Equal("entered-in-error", cancelled.VerificationStatus!.Coding.Single().Code);
        Assert.Equal(diagnosis.Code!.Coding.Single().Code, cancelled.Code!.Coding.Single().Code);
    }

    [Fact]
    public async Task A_newborns_time_of_birth_stays_when_another_hospital_sends_the_birth_date_alone()
    {
        await SeedOrganizationsAsync();
        var mother = LegacyData.IdNumber(873_161);
        string A28(string facility, string control, string mrn, string born) =>
            $"MSH|^~\\&|QXHIS|{facility}|IHUB|QX-PLATFORM|20250616120000||ADT^A28^ADT_A05|{control}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A28|20250616120000\r"
            + $"PID|1||{mrn}^^^{facility}^MR||新生儿873161||{born}|F{new string('|', 13)}{mother}^^^&2.16.156.10011.1.3&ISO^NNCHN\r"
            + "PV1|1|N\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(A28("QX2100012", "BORN-TIME-1", "NB00873161", "202506150842")));
        Assert.True(Msa(ack) == "AA", ack);
        (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(A28("QX2100039", "BORN-TIME-2", "FY00873161", "20250615")));
        Assert.True(Msa(ack) == "AA", ack);

        var child = Assert.Single(await SearchAsync<Patient>("Patient?identifier=NB00873161"));
        Assert.Contains(child.Identifier, i => i.Value == "FY00873161");
        var time = Assert.Single(child.BirthDateElement!.Extension, e => e.Url == InteropHub.Adapters.Identity.ExtensionUrls.BirthTime);
        Assert.StartsWith("2025-06-15T08:42", Assert.IsType<FhirDateTime>(time.Value).Value, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resent_rejected_message_gets_the_same_ERR_segment_with_its_own_error_text()
    {
        await SeedOrganizationsAsync();
        async Task<byte[]> OwnVisitAsync(string sample) => Encoding.UTF8.GetBytes((await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample)))
            .Replace("ZY2025001187", "ZY2099000187", StringComparison.Ordinal).Replace("|QX2100012-2025", "|RESENDERR-2025", StringComparison.Ordinal));
        Assert.Equal("AA", Msa((await PostHl7Async(await OwnVisitAsync("04_ADT_A01_county_wangxiuying_delivery.hl7"))).Ack));
        // A cancel-discharge for a visit never discharged: refused with a summary text of its own (就诊状态变更不允许).
        var cancel = await OwnVisitAsync("08_ADT_A13_county_wangxiuying_cancel_discharge.hl7");

        var (_, first) = await PostHl7Async(cancel);
        var (_, again) = await PostHl7Async(cancel);

        static string Err(string ack) => Assert.Single(ack.Split('\r'), l => l.StartsWith("ERR|", StringComparison.Ordinal));
        Assert.Equal("AE", Msa(first));
        Assert.Contains("就诊状态变更不允许", Err(first), StringComparison.Ordinal);
        Assert.Equal(Err(first), Err(again));
    }

    [Fact]
    public async Task An_updated_dose_row_of_a_resident_of_an_earlier_batch_updates_its_Immunization_instead_of_adding_one()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 875_001, residents: 1))).StatusCode);

        // The dose's date corrected in a later batch that does not repeat the resident.
        var later = LaterDoseBatch(875_001, ("vacc_date", "2024-12-01"), ("updated_at", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(later)).StatusCode);

        var dose = Assert.Single(await SearchAsync<Immunization>("Immunization?identifier=urn:interophub:sid:township-vaccination|JZ-QX2110026-000875001"));
        Assert.Equal("2024-12-01", ((FhirDateTime)dose.Occurrence!).Value);
    }

    [Fact]
    public async Task A_voided_certificate_leaves_the_mother_as_she_is()
    {
        await SeedOrganizationsAsync();
        var first = Encoding.UTF8.GetString(LegacyData.BirthCertificate(7_302));
        var motherId = MotherIdOf(first);

        await PostCertificateAsync(first);
        await PostCertificateAsync(first.Replace("<RecordVersion>1</RecordVersion>", "<RecordVersion>2</RecordVersion>", StringComparison.Ordinal)
            .Replace("<Status>1</Status>", "<Status>2</Status>", StringComparison.Ordinal)
            .Replace("<Name>母亲7302</Name>", "<Name>作废文书上的名字</Name>", StringComparison.Ordinal));

        Assert.Equal("母亲7302", Assert.Single(await SearchAsync<Patient>($"Patient?identifier={motherId}")).Name[0].Text);
        Assert.Equal(DocumentReferenceStatus.EnteredInError, Assert.Single(await SearchAsync<DocumentReference>("DocumentReference?identifier=Q360007302")).Status);
    }

    [Fact]
    public async Task A_dose_before_the_birth_of_a_resident_of_an_earlier_batch_is_IMPOSSIBLE_DATE()
    {
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 876_001, residents: 1))).StatusCode);

        var later = LaterDoseBatch(876_001, ("vacc_id", "JZ-QX2110026-BEFOREBIRTH"), ("vacc_date", "1930-05-01"));
        var issues = (await GetJsonAsync((await PostTownshipAsync(later)).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();

        var error = Assert.Single(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.Equal("IMPOSSIBLE_DATE", error.GetProperty("details").GetProperty("coding")[0].GetProperty("code").GetString());
        Assert.Contains("vacc_date", error.GetProperty("location")[0].GetString(), StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<Immunization>("Immunization?identifier=urn:interophub:sid:township-vaccination|JZ-QX2110026-BEFOREBIRTH"));
    }

    [Fact]
    public async Task A_deleted_follow_up_row_retracts_its_visit_and_every_observation_of_it()
    {
        await SeedOrganizationsAsync();
        foreach (var name in new[] { "batch-001", "batch-002" })
        {
            Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(SeedLoader.Zip(Path.Combine(Legacy, "township", name)))).StatusCode);
        }

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=GXY-QX2110026-0000201"));
        var items = await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}");
        Assert.Contains(items, o => o.Code.Coding.Any(c => c.Code == "85354-9"));
        Assert.True(items.Count > 3, $"{items.Count} observations");

        // A later batch deletes the row: only its key, status and updated_at (township-export.md §2 "Retraction").
        var deletion = Rewrite(SeedLoader.Zip(Path.Combine(Legacy, "township", "batch-002")), "followups_hypertension.csv", lines =>
        {
            var header = lines[0].Split(',');
            var cells = new string[header.Length];
            Array.Fill(cells, "");
            cells[0] = "GXY-QX2110026-0000201";
            cells[Array.IndexOf(header, "status")] = "deleted";
            cells[Array.IndexOf(header, "updated_at")] = "2025-07-30 09:00:00";
            lines.RemoveRange(1, lines.Count - 1);
            lines.Add(string.Join(',', cells));
            lines.Add("");
        }, batchId: "QX2110026-20250731-902");
        var response = await PostTownshipAsync(deletion);

        var issues = (await GetJsonAsync(response.Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");
        Assert.DoesNotContain(issues, i => i.GetProperty("diagnostics").GetString()!.Contains("holds nothing", StringComparison.Ordinal));
        Assert.Empty(await SearchAsync<Encounter>("Encounter?identifier=GXY-QX2110026-0000201"));
        Assert.Empty(await SearchAsync<Observation>($"Observation?encounter=Encounter/{visit.Id}"));
        Assert.Equal(HttpStatusCode.Gone, (await Client.GetAsync($"/fhir/Observation/{items[0].Id}")).StatusCode);
    }

    [Fact]
    public async Task Admission_transfer_and_discharge_build_one_visit_history_and_a_discharged_visit_cannot_be_cancelled()
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("16_ADT_A04_baisha_lidefu.hl7");
        // The samples' visit under a number of its own (other tests send the A02 before the A01), each message with a new control ID.
        async Task<string> OwnVisitAsync(string sample) =>
            (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZY2025001873", "ZY2099000001", StringComparison.Ordinal)
                .Replace("|QX2100012-2025", "|HISTORY-2025", StringComparison.Ordinal);
        foreach (var sample in new[] { "19_ADT_A01_county_lidefu.hl7", "22_ADT_A02_county_lidefu_transfer.hl7", "23_ADT_A03_county_lidefu_discharge.hl7" })
        {
            Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(await OwnVisitAsync(sample)))).Ack));
        }

        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000001"));
        Assert.Equal(Encounter.EncounterStatus.Finished, visit.Status);
        // Each place once, in the order the patient was there: the CCU, then the cardiology ward.
        Assert.Equal(["心内科CCU", "心血管内科"], visit.Location.Select(l => l.Location!.Display!.Split(' ')[0]));
        Assert.Equal(2, visit.Location.Select(l => l.Location!.Reference).Distinct().Count());
        Assert.All(visit.Location, l => Assert.Equal(Encounter.EncounterLocationStatus.Completed, l.Status));
        // Each place has the time the patient was there: the CCU until the transfer, the ward until the discharge.
        Assert.Equal(visit.Location[1].Period!.Start, visit.Location[0].Period!.End);
        Assert.Equal(visit.Period!.End, visit.Location[1].Period!.End);
        Assert.NotNull(visit.Period.End);
        Assert.Contains(visit.ReasonCode, r => r.Coding.Any(c => c.Code == "I10"));
        Assert.Contains(visit.Diagnosis, d => d.Use!.Coding.Any(c => c.Code == "AD"));
        Assert.Contains(visit.Diagnosis, d => d.Use!.Coding.Any(c => c.Code == "DD"));
        Assert.Equal("2025-05-07T09:15:00+08:00", visit.Period!.Start);

        // A11 cancels an admission whose visit has no A03 (§5); this one was discharged.
        var admission = await OwnVisitAsync("19_ADT_A01_county_lidefu.hl7");
        var cancel = string.Join('\r', admission.Split('\r').Where(l => l.Split('|')[0] is "MSH" or "EVN" or "PID" or "PV1"))
            .Replace("ADT^A01^ADT_A01", "ADT^A11^ADT_A09", StringComparison.Ordinal).Replace("EVN|A01|", "EVN|A11|", StringComparison.Ordinal)
            .Replace("HISTORY-20250507-000318", "CANCEL-AFTER-A03-1", StringComparison.Ordinal);
        var (status, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(cancel));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("AE", Msa(ack));
        Assert.Contains("INVALID_TRANSITION", ack, StringComparison.Ordinal);
        // A visit's state, not a referral's: the text the HIS shows says so.
        Assert.Contains("就诊状态变更不允许", ack, StringComparison.Ordinal);
        Assert.DoesNotContain("转诊", ack, StringComparison.Ordinal);
        Assert.Equal(Encounter.EncounterStatus.Finished, Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000001")).Status);

        // An A08 that leaves PV1-45 empty ("not sent", §2) does not reopen the visit: only an A13 undoes a discharge.
        var update = admission.Replace("ADT^A01^ADT_A01", "ADT^A08^ADT_A01", StringComparison.Ordinal).Replace("EVN|A01|", "EVN|A08|", StringComparison.Ordinal)
            .Replace("HISTORY-20250507-000318", "UPDATE-AFTER-A03-1", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(update))).Ack));
        var updated = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000001"));
        Assert.Equal(Encounter.EncounterStatus.Finished, updated.Status);
        Assert.Equal(visit.Period.End, updated.Period!.End);
        Assert.Equal("3", updated.Hospitalization!.DischargeDisposition!.Coding[0].Code);
        Assert.All(updated.Location, l => Assert.Equal(Encounter.EncounterLocationStatus.Completed, l.Status));

        // A13 undoes the discharge: in progress again, without its end or discharge disposition, its history kept.
        var undo = admission.Replace("ADT^A01^ADT_A01", "ADT^A13^ADT_A01", StringComparison.Ordinal).Replace("EVN|A01|", "EVN|A13|", StringComparison.Ordinal)
            .Replace("HISTORY-20250507-000318", "UNDO-A03-1", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(undo))).Ack));
        var reopened = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000001"));
        Assert.Equal(Encounter.EncounterStatus.InProgress, reopened.Status);
        Assert.Null(reopened.Period!.End);
        Assert.Null(reopened.Hospitalization?.DischargeDisposition);
        Assert.True(reopened.Location.Count >= 2);

        // A second A13 has no discharge left to undo.
        var (againStatus, againAck) = await PostHl7Async(Encoding.UTF8.GetBytes(undo.Replace("UNDO-A03-1", "UNDO-A03-2", StringComparison.Ordinal)));
        Assert.Equal((HttpStatusCode.BadRequest, "AE"), (againStatus, Msa(againAck)));
        Assert.Contains("INVALID_TRANSITION", againAck, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cancel_discharge_sent_with_the_discharge_PV1_reopens_the_visit_without_its_disposition_or_destination()
    {
        await SeedOrganizationsAsync();
        async Task<string> OwnVisitAsync(string sample) =>
            (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", sample))).Replace("ZY2025001873", "ZY2099000013", StringComparison.Ordinal)
                .Replace("|QX2100012-2025", "|UNDO-DISPOSITION-2025", StringComparison.Ordinal);
        var discharge = await OwnVisitAsync("23_ADT_A03_county_lidefu_discharge.hl7");
        foreach (var message in new[] { await OwnVisitAsync("19_ADT_A01_county_lidefu.hl7"), discharge })
        {
            Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(message))).Ack));
        }

        var discharged = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000013"));
        Assert.Equal("3", discharged.Hospitalization!.DischargeDisposition!.Coding[0].Code);
        Assert.NotNull(discharged.Hospitalization.Destination);

        // The A13 repeats the A03's PV1 (PV1-36 3, PV1-37 QX2110026, PV1-45): none of it is a fact of the reopened visit.
        var undo = discharge.Replace("ADT^A03^ADT_A03", "ADT^A13^ADT_A01", StringComparison.Ordinal).Replace("EVN|A03|", "EVN|A13|", StringComparison.Ordinal)
            .Replace("|UNDO-DISPOSITION-2025", "|UNDO-DISPOSITION-A13-2025", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(undo))).Ack));

        var reopened = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=ZY2099000013"));
        Assert.Equal(Encounter.EncounterStatus.InProgress, reopened.Status);
        Assert.Null(reopened.Period!.End);
        Assert.Null(reopened.Hospitalization?.DischargeDisposition);
        Assert.Null(reopened.Hospitalization?.Destination);
    }

    [Fact]
    public async Task Deleting_a_dose_the_hub_never_received_is_AE_UNKNOWN_REFERENCE_at_RXA_21()
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("05_ADT_A01_county_newborn.hl7");
        var message = (await File.ReadAllTextAsync(Path.Combine(Legacy, "his", "06_VXU_V04_county_newborn_birthdoses.hl7")))
            .Replace("QX2100012-20250316-000241", "DELETE-UNKNOWN-1", StringComparison.Ordinal)
            .Replace("RXA|0|1|20250315102000|", "RXA|0|1|20250316070000|", StringComparison.Ordinal)
            .Replace("|||CP|A\r", "|||CP|D\r", StringComparison.Ordinal);

        var (status, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(message));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("AE", Msa(ack));
        Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        Assert.Contains("RXA^1^21", ack, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_that_leaves_fields_empty_keeps_what_earlier_messages_recorded_about_the_person()
    {
        await SeedOrganizationsAsync();
        const int N = 91_001;
        var first = Encoding.UTF8.GetString(LegacyData.Hl7Registration(N));
        // The first message also records a death (PID-29, PID-30); the second sends no ethnicity (PID-10) and no death.
        var died = first.Replace("^369921\r", "^369921" + new string('|', 18) + "20200101|Y\r", StringComparison.Ordinal);
        var later = first.Replace($"BENCH-{N:D9}", $"KEEP-{N:D9}", StringComparison.Ordinal).Replace("|01^汉族^GB3304|", "||", StringComparison.Ordinal)
            .Replace("沙坪村1组", "沙坪村2组", StringComparison.Ordinal);
        Assert.NotEqual(first, died);
        Assert.NotEqual(first.Replace($"BENCH-{N:D9}", $"KEEP-{N:D9}", StringComparison.Ordinal), later);

        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(died))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(later))).Ack));

        var patient = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={7_000_000 + N:D10}"));
        Assert.Equal("2", patient.Meta!.VersionId);
        Assert.Equal("2020-01-01", Assert.IsType<FhirDateTime>(patient.Deceased).Value);
        Assert.Equal("01", patient.GetExtensionValue<Coding>("https://interophub.dev/fhir/StructureDefinition/ethnicity")?.Code);
        // A moved home address replaces the one of its use instead of piling up.
        var address = Assert.Single(patient.Address);
        Assert.Contains("沙坪村2组", string.Concat(address.Line) + address.Text, StringComparison.Ordinal);

        // "" deletes a stored value (§2): PID-10 and PID-29 sent so, PID-30 N (alive).
        var deleting = first.Replace($"BENCH-{N:D9}", $"CLEAR-{N:D9}", StringComparison.Ordinal).Replace("|01^汉族^GB3304|", "|\"\"|", StringComparison.Ordinal)
            .Replace("^369921\r", "^369921" + new string('|', 18) + "\"\"|N\r", StringComparison.Ordinal);
        Assert.Equal("AA", Msa((await PostHl7Async(Encoding.UTF8.GetBytes(deleting))).Ack));

        var cleared = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={7_000_000 + N:D10}"));
        Assert.Null(cleared.Deceased);
        Assert.Null(cleared.GetExtensionValue<Coding>("https://interophub.dev/fhir/StructureDefinition/ethnicity"));
        Assert.DoesNotContain(cleared.Extension, e => e.Url == "urn:interophub:ext:cleared");
    }

    [Fact]
    public async Task After_an_A40_merge_the_retired_MRN_records_belong_to_the_survivor_and_a_message_naming_it_is_AE_UNKNOWN_REFERENCE()
    {
        await SeedOrganizationsAsync();
        var his = Path.Combine(Legacy, "his");
        await PostSamplesAcknowledgedAsync("01_ADT_A04_county_zhaojianhua_dupmrn.hl7", "02_ADT_A31_county_zhaojianhua_repeatedPV1.hl7", "03_ADT_A40_county_zhaojianhua_merge.hl7");

        var retired = Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000517733"));
        Assert.False(retired.Active);
        var survivor = Assert.Single(retired.Link, l => l.Type == Patient.LinkType.ReplacedBy).Other!.Reference;
        // The retired record keeps what it said of the person (sample 01), under its old MRN alone.
        Assert.Equal("0000517733", Assert.Single(retired.Identifier).Value);
        Assert.Equal("1963-02-14", retired.BirthDate);
        Assert.Equal(AdministrativeGender.Male, retired.Gender);
        Assert.Contains("沙坪村1组", string.Concat(retired.Address.Single().Line) + retired.Address.Single().Text, StringComparison.Ordinal);
        Assert.Empty(await SearchAsync<Encounter>($"Encounter?subject=Patient/{retired.Id}"));
        var moved = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=MZ20250120000311"));
        Assert.Equal(survivor, moved.Subject!.Reference);

        var again = (await File.ReadAllTextAsync(Path.Combine(his, "01_ADT_A04_county_zhaojianhua_dupmrn.hl7")))
            .Replace("QX2100012-20250120-000077", "AFTER-MERGE-0001", StringComparison.Ordinal);
        var (status, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(again));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("AE", Msa(ack));
        Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        Assert.Contains("PID^1^3", ack, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0000875201", "0000517733", "MRG^1^1")]
    [InlineData("0000517733", "0000390412", "PID^1^3")]
    public async Task An_A40_merging_a_retired_MRN_or_into_one_is_AE_UNKNOWN_REFERENCE_and_writes_nothing(string pid, string mrg, string location)
    {
        await SeedOrganizationsAsync();
        await PostSamplesAcknowledgedAsync("01_ADT_A04_county_zhaojianhua_dupmrn.hl7", "02_ADT_A31_county_zhaojianhua_repeatedPV1.hl7", "03_ADT_A40_county_zhaojianhua_merge.hl7");
        var before = await SearchAsync<Patient>("Patient?identifier=0000517733,0000390412");

        var merge = $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250301091205||ADT^A40^ADT_A39|REMERGE-{pid}-{mrg}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + "EVN|A40|20250301091200\r"
            + $"PID|1||{pid}^^^QX2100012^MR||赵建华||19630214|1\r"
            + $"MRG|{mrg}^^^QX2100012^MR\r";
        var (_, ack) = await PostHl7Async(Encoding.UTF8.GetBytes(merge));

        Assert.Equal("AE", Msa(ack));
        Assert.Contains("UNKNOWN_REFERENCE", ack, StringComparison.Ordinal);
        Assert.Contains($"ERR||{location}", ack, StringComparison.Ordinal);
        var after = await SearchAsync<Patient>("Patient?identifier=0000517733,0000390412");
        Assert.Equal(before.Select(p => (p.Id, p.Meta!.VersionId)).Order(), after.Select(p => (p.Id, p.Meta!.VersionId)).Order());
        Assert.Empty(await SearchAsync<Patient>("Patient?identifier=0000875201"));
    }

    [Fact]
    public async Task After_an_A40_merge_a_dose_both_records_had_is_one_Immunization_with_both_identifiers()
    {
        await SeedOrganizationsAsync();
        static byte[] Message(string type, string controlId, string mrn, string rest) => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250620130000||{type}|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||{mrn}^^^QX2100012^MR||接种甲||20100101|F\r" + rest);
        static string Dose(string filler, string time) =>
            $"ORC|RE||{filler}^QXHIS\rRXA|0|1|{time}||1501^狂犬病疫苗^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||202409A011|20250930|M05^^QXMFR|||CP|A\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Message("VXU^V04^VXU_V04", "DOSEMERGE-1", "0000875221", Dose("JZ-DM-1", "20250611090000")))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Message("VXU^V04^VXU_V04", "DOSEMERGE-2", "0000875222", Dose("JZ-DM-2", "20250611093000")))).Ack));
        var survivor = Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000875222"));

        var (_, ack) = await PostHl7Async(Message("ADT^A40^ADT_A39", "DOSEMERGE-3", "0000875222", "EVN|A40|20250620130000\rMRG|0000875221^^^QX2100012^MR\r"));
        Assert.True(Msa(ack) == "AA", ack);

        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{survivor.Id}"));
        Assert.Contains(dose.Identifier, i => i.Value == "JZ-DM-1");
        Assert.Contains(dose.Identifier, i => i.Value == "JZ-DM-2");
        Assert.Equal(dose.Id, Assert.Single(await SearchAsync<Immunization>("Immunization?identifier=JZ-DM-1")).Id);
    }

    [Fact]
    public async Task A_dose_an_A40_moved_from_a_retired_MRN_is_the_one_a_later_report_under_the_survivors_MRN_updates_and_deletes()
    {
        await SeedOrganizationsAsync();
        static byte[] Message(string type, string controlId, string mrn, string rest) => Encoding.UTF8.GetBytes(
            $"MSH|^~\\&|QXHIS|QX2100012|IHUB|QX-PLATFORM|20250620130000||{type}|{controlId}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
            + $"PID|1||{mrn}^^^QX2100012^MR||接种乙||19660101|M\r" + rest);
        static string Dose(string filler, string action) =>
            $"ORC|RE||{filler}^QXHIS\rRXA|0|1|20250611100000||1001^流感^QXVAC|0.5|mL||00^新接种^NIP001|N0107^江燕|^^^QX2100012||||LOT1|20261031|M02^^QXMFR|||CP|{action}\r";
        Assert.Equal("AA", Msa((await PostHl7Async(Message("VXU^V04^VXU_V04", "DOSEMOVE-1", "0000875231", Dose("JZ-DMV-1", "A")))).Ack));
        Assert.Equal("AA", Msa((await PostHl7Async(Message("ADT^A40^ADT_A39", "DOSEMOVE-2", "0000875232", "EVN|A40|20250612130000\rMRG|0000875231^^^QX2100012^MR\r"))).Ack));
        var survivor = Assert.Single(await SearchAsync<Patient>("Patient?identifier=0000875232"));

        // The same dose reported again under the survivor's MRN: still one Immunization.
        Assert.Equal("AA", Msa((await PostHl7Async(Message("VXU^V04^VXU_V04", "DOSEMOVE-3", "0000875232", Dose("JZ-DMV-2", "A")))).Ack));
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{survivor.Id}"));
        Assert.Contains(dose.Identifier, i => i.Value == "JZ-DMV-2");

        // And its deletion (RXA-21 D) takes it away.
        Assert.Equal("AA", Msa((await PostHl7Async(Message("VXU^V04^VXU_V04", "DOSEMOVE-4", "0000875232", Dose("JZ-DMV-2", "D")))).Ack));
        Assert.Empty(await SearchAsync<Immunization>($"Immunization?patient=Patient/{survivor.Id}"));
    }

    [Fact]
    public async Task A_message_naming_a_retired_patient_arriving_together_with_others_is_refused_and_only_it()
    {
        await SeedOrganizationsAsync();
        var his = Path.Combine(Legacy, "his");
        await PostSamplesAcknowledgedAsync("01_ADT_A04_county_zhaojianhua_dupmrn.hl7", "02_ADT_A31_county_zhaojianhua_repeatedPV1.hl7", "03_ADT_A40_county_zhaojianhua_merge.hl7");

        var retiredMessage = await File.ReadAllTextAsync(Path.Combine(his, "01_ADT_A04_county_zhaojianhua_dupmrn.hl7"));
        var visit = Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=MZ20250120000311"));
        for (var round = 0; round < 4; round++)
        {
            // The retired MRN's message may share a transaction with the others (the store finds the retired Patient
            // under the transaction's locks): that transaction fails, and each message is applied alone.
            var persons = Enumerable.Range(630_000 + (round * 10), 6).ToList();
            var retired = Encoding.UTF8.GetBytes(retiredMessage.Replace("QX2100012-20250120-000077", $"RETIRED-{round}-{Guid.NewGuid():N}"[..20], StringComparison.Ordinal));
            var answers = await Task.WhenAll(persons.Select(n => PostHl7Async(LegacyData.Hl7Registration(n))).Prepend(PostHl7Async(retired)));

            Assert.Equal("AE", Msa(answers[0].Ack));
            Assert.Contains("UNKNOWN_REFERENCE", answers[0].Ack, StringComparison.Ordinal);
            // The refused message wrote nothing: the visit it names is as the merge left it.
            Assert.Equal(visit.Meta!.VersionId, Assert.Single(await SearchAsync<Encounter>("Encounter?identifier=MZ20250120000311")).Meta!.VersionId);
            foreach (var (n, (_, ack)) in persons.Zip(answers.Skip(1)))
            {
                Assert.Equal("AA", Msa(ack));
                Assert.Single(await SearchAsync<Encounter>($"Encounter?identifier=MZ{n:D12}"));
            }
        }
    }

    /// <summary>Posts sample HIS messages in order, each of which must be acknowledged AA.</summary>
    private async Task PostSamplesAcknowledgedAsync(params string[] files)
    {
        foreach (var file in files)
        {
            Assert.Equal("AA", Msa((await PostHl7Async(await File.ReadAllBytesAsync(Path.Combine(Legacy, "his", file)))).Ack));
        }
    }
}

public sealed class DeadLetterTestsOnSqlite(SqliteHub hub) : DeadLetterTests(hub), IClassFixture<SqliteHub>;

public sealed class DeadLetterTestsOnPostgres(PostgresHub hub) : DeadLetterTests(hub), IClassFixture<PostgresHub>
{
    [Fact]
    public async Task A_township_dose_deletion_the_HIS_reports_the_dose_under_while_it_waits_keeps_the_dose()
    {
        var ct = CancellationToken.None;
        await SeedOrganizationsAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(LegacyData.TownshipBatch(first: 873_401, residents: 1))).StatusCode);
        const string VaccId = "JZ-QX2110026-RACE00001";
        var report = LaterDoseBatch(873_401, ("vacc_id", VaccId), ("vacc_date", "2024-11-06"), ("updated_at", "2025-06-01 08:00:00"));
        Assert.Equal(HttpStatusCode.Accepted, (await PostTownshipAsync(report)).StatusCode);

        // The deletion reads the dose (the township's alone), then its transaction waits on the lock of its conditional
        // delete's criteria, which the test holds (PostgreSQL: one writer per criteria across hub instances).
        var store = Hub.Services.GetRequiredService<IResourceStore>();
        await using var holder = await store.BeginWriteAsync(ct);
        await holder.LockAllAsync([VersionWriter.CriteriaLock("Immunization",
            SearchCriteria.ParseQueryString("Immunization", $"identifier=urn:interophub:sid:township-vaccination|{VaccId}"))], ct);
        Assert.Null(await holder.ReadCurrentAsync("Immunization", "none", ct));
        var deletion = Rewrite(LaterDoseBatch(873_401), "immunizations.csv",
            lines => lines[1] = DeletedRow(lines[0], "vacc_id", VaccId, "2025-06-02 08:00:00"), batchId: "QX2110026-GEN-000873401-003");
        var deleting = PostTownshipAsync(deletion);
        await using (var database = new Npgsql.NpgsqlConnection(Hub.StoreSettings["ConnectionStrings:Postgres"]))
        {
            await database.OpenAsync(ct);
            await using var waiters = new Npgsql.NpgsqlCommand(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted",
                database);
            for (var tries = 0; (long)(await waiters.ExecuteScalarAsync(ct))! == 0; tries++)
            {
                Assert.True(tries < 300 && !deleting.IsCompleted, "The deletion never waited on the held lock.");
                await Task.Delay(50, ct);
            }
        }

        // Meanwhile the hospital reports the same dose; then the deletion goes on.
        var (_, ack) = await PostHl7Async(HisDose(873_401, "DOSE-RACE-01", "20241106"));
        Assert.True(Msa(ack) == "AA", ack);
        await holder.DisposeAsync();
        var issues = (await GetJsonAsync((await deleting).Headers.Location!.ToString())).GetProperty("outcome").GetProperty("issue").EnumerateArray().ToList();
        Assert.DoesNotContain(issues, i => i.GetProperty("severity").GetString() == "error");

        // The dose the hospital reported stays; only the township's identifier left it.
        var person = Assert.Single(await SearchAsync<Patient>($"Patient?identifier={LegacyData.IdNumber(873_401)}"));
        var dose = Assert.Single(await SearchAsync<Immunization>($"Immunization?patient=Patient/{person.Id}&date=2024-11-06"));
        Assert.DoesNotContain(dose.Identifier, i => i.Value == VaccId);
        Assert.Contains(dose.Identifier, i => i.System == "urn:interophub:sid:vaccination:QX2100012");
    }
}

public sealed class AdapterTestsOnSqlite(SqliteHub hub) : AdapterTests(hub), IClassFixture<SqliteHub>;

public sealed class AdapterTestsOnPostgres(PostgresHub hub) : AdapterTests(hub), IClassFixture<PostgresHub>;
