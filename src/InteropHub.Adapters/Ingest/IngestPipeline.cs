using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Township;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>The inbox sources, one per legacy interface.</summary>
public static class IngestSources
{
    public const string His = "his";
    public const string Township = "township";
    public const string BirthCertificate = "birth-certificate";
}

/// <summary>The answer to one HIS message: the ACK/NAK bytes (in the sender's character set) and its code.</summary>
public sealed record HisReply(AckCode Code, byte[] Ack, long? InboxId);

/// <summary>What processing one inbox message gave: applied or not, and the OperationOutcome stored with it.</summary>
public sealed record IngestResult(InboxMessage Message, bool Processed, OperationOutcome Outcome);

/// <summary>
/// The durable ingest shared by the three adapters (issue 5): every message is stored raw in the inbox and
/// committed before it is answered. Most are stored first, on their own, then mapped and written through the ordinary
/// transaction path (<see cref="ProcessBundle"/>), then marked Processed, or Failed (a dead letter) with an
/// OperationOutcome; a plain HIS message is stored, already Processed, by the transaction that applies it
/// (<see cref="ReceiveHl7Async"/>).
/// <para>
/// Messages about one person apply in the order received, whichever source sends them (his-hl7v2.md §1), while
/// messages about different persons run in parallel (<see cref="LockPersonsAsync"/>). Anything the sender was acknowledged for is in the inbox: a crash
/// between store and completion leaves it Received, and <see cref="RecoverAsync"/> processes it at start-up.
/// </para>
/// </summary>
public sealed partial class IngestPipeline(IInboxStore inbox, IResourceStore store, IHubStateStore state, ProcessBundle transactions,
    FhirSerializers serializers, MergedRecords merged, TimeProvider clock, SearchParser parser) : IDisposable
{
    /// <summary>Transaction entries are relative; this base only anchors absolute URLs, which the mappers never write.</summary>
    private const string BaseUrl = "urn:interophub:ingest/fhir";

    private const string Hl7ContentType = "x-application/hl7-v2+er7";

    private readonly SemaphoreSlim _worker = new(1, 1);
    private readonly Dictionary<string, PersonGate> _persons = new(StringComparer.Ordinal);
    /// <summary>The prefix of the counters of unmapped local codes in the hub's state (<see cref="IHubStateStore"/>).</summary>
    private const string UnmappedCounter = "unmapped-code:";

    /// <summary>
    /// Local codes written without a standard equivalent ("system|code" → how many applied messages wrote them), for
    /// the status page. The counts are kept in the database, added to in the transaction that writes the code.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, long>> UnmappedCodesAsync(CancellationToken ct) =>
        (await state.ReadStatesStartingWithAsync(UnmappedCounter, ct)).ToDictionary(
            p => p.Key[UnmappedCounter.Length..], p => long.Parse(p.Value, CultureInfo.InvariantCulture), StringComparer.Ordinal);

    /// <summary>
    /// Stores one HIS message, processes it and answers it. A resend of a stored message (same MSH-4 and MSH-10)
    /// with the same content (MSH-7 and terminators ignored) is answered again without writing anything; with
    /// different content it is AE <c>DUPLICATE_KEY</c> (his-hl7v2.md §1).
    /// </summary>
    public async Task<HisReply> ReceiveHl7Async(byte[] raw, CancellationToken ct)
    {
        var mapped = HisMapper.Map(raw);
        var messageId = mapped.Key is { } key ? $"{key.Facility}|{key.ControlId}" : "sha256:" + Convert.ToHexStringLower(SHA256.HashData(raw));
        if (mapped.Key is not null && mapped.Message?.ProcessingId is { Length: > 0 } processing && processing != "P")
        {
            // A training or debugging message (MSH-11 T, D) is refused and kept, but is not data (his-hl7v2.md §4): its
            // control ID stays free for the production message that may reuse it.
            messageId += $"|{processing}";
        }

        var held = await LockPersonsAsync((mapped as HisAccepted)?.Transaction, ct);
        try
        {
            // Under the persons' locks, so what they read of them is what the message is applied to. The checks that only
            // warn are made before the fast path below, so such a message still takes it.
            mapped = await WithStoreWarningsAsync(await WithStoredKeysAsync(mapped, raw, ct), ct);

            // A plain message is first stored by the transaction that applies it: one round trip and one commit less
            // than storing it on its own first. When that transaction fails (a resend of a stored message, whose id
            // the inbox's unique key refuses, or any refusal), nothing of it was written and it takes the path below,
            // which stores it first and answers for it, still under its persons' locks (their order is kept).
            var tried = false;
            if (mapped is HisAccepted accepted && Groupable(accepted))
            {
                tried = true;
                if (await StoreAppliedAsync(raw, messageId, accepted) is { } id)
                {
                    return Reply(mapped.Message, AckCode.AA, id, HisWarnings(accepted));
                }
            }

            var (stored, duplicate) = await inbox.AcceptAsync(IngestSources.His, messageId, Hl7ContentType, raw, ct);
            if (duplicate)
            {
                if (mapped.Message is { } message && stored.MessageId == messageId && !SameContent(stored.Body, message))
                {
                    if (mapped is HisRejected { Code: AckCode.AR } refused)
                    {
                        // Refused whole (an unsupported version or event, a bad header): why comes first, the reused
                        // control ID is then beside the point.
                        return Reply(mapped.Message, AckCode.AR, null, refused.Errors);
                    }

                    // Keyed by its content as a resend is compared (MSH-7 and terminators aside), so resending it adds nothing.
                    var (conflicting, _) = await inbox.AcceptAsync(IngestSources.His, $"{messageId}{ConflictingCopy}{HisMapper.ContentHash(message)}",
                        Hl7ContentType, raw, ct);
                    return await ProcessLockedHisAsync(conflicting, mapped, inGroup: false, ct);
                }

                if (stored.Status == InboxStatus.Processed)
                {
                    // Answered as the first time, with the warnings it had (a sender whose ACK was lost sees them).
                    return Reply(mapped.Message, AckCode.AA, stored.Id, StoredAnswer(stored) is { Code: AckCode.AA } first ? first.Issues : []);
                }

                if (stored.Status == InboxStatus.Failed && RejectedForItsContent(stored) is { } earlier)
                {
                    // his-hl7v2.md §1: a repeat of a rejected message is rejected again, for the same reason. The sender
                    // sends a new message once the cause is mended; an operator may replay the dead letter. A failure of
                    // the hub's own (MALFORMED: the store, a mapping fault) is tried again instead.
                    return Reply(mapped.Message, earlier.Code, stored.Id, earlier.Issues);
                }
            }

            // A new message, or a resend of one that was not applied yet (interrupted, or a dead letter of the hub's
            // own failure): process the stored copy, whose mapping is at hand when it is these bytes and no
            // transaction changed it yet (the conditional updates take in what the stored Patients had). One whose
            // group just failed is applied alone (in a group again, it could fail the next group too).
            return await ProcessLockedHisAsync(stored, !tried && stored.Body.AsSpan().SequenceEqual(raw) ? mapped : null, inGroup: !tried, ct);
        }
        finally
        {
            Release(held);
        }
    }

    /// <summary>
    /// Applies a new plain message with its inbox row, stored as Processed by the same transaction (in a group when
    /// others are ready); the row's id, or null when the transaction failed and nothing of it was written.
    /// </summary>
    private async Task<long?> StoreAppliedAsync(byte[] raw, string messageId, HisAccepted accepted)
    {
        InboxReceipt? receipt = null;
        var applied = await ApplyInGroupAsync(async (session, token) =>
        {
            // After the transaction's merge, which may add a warning (HisWarnings).
            var (status, outcome) = Completion(AckCode.AA, HisWarnings(accepted));
            receipt = await session.AddInboxAsync(IngestSources.His, messageId, Hl7ContentType, raw, status, outcome, token);
        }, accepted);
        return applied is (AckCode.AA, _, true) ? receipt!.Id : null;
    }

    /// <summary>Stores a township batch (a zip) and applies its valid rows; the outcome lists every problem by file and row.</summary>
    public async Task<IngestResult> ReceiveTownshipAsync(byte[] zip, CancellationToken ct)
    {
        var batchId = BatchId(zip);
        var (stored, duplicate) = await inbox.AcceptAsync(IngestSources.Township, batchId, "application/zip", zip, ct);
        if (duplicate && !SameManifest(stored.Body, zip))
        {
            // township-export.md §1: the same batch_id with a different manifest is rejected whole (INTEGRITY). It is kept
            // under an id of its own (ConflictingBatch), as a dead letter that processing, recovery and replay only
            // ever refuse, so nothing sent is lost and nothing of it is applied.
            var (other, _) = await inbox.AcceptAsync(IngestSources.Township, $"{batchId}{ConflictingCopy}{Convert.ToHexStringLower(SHA256.HashData(zip))}",
                "application/zip", zip, ct);
            return await ProcessAsync(other, ct);
        }

        return duplicate && stored.Status == InboxStatus.Processed ? Stored(stored, processed: true) : await ProcessAsync(stored, ct);
    }

    /// <summary>
    /// Marks the inbox id of a message refused for reusing another's key with other content: a batch's batch_id, a HIS
    /// message's MSH-4 and MSH-10 (<c>{key}|conflict-sha256:{hash}</c>). It is stored all the same, as a dead letter that
    /// processing, recovery and replay only ever refuse, so nothing sent is lost and nothing of it is applied.
    /// </summary>
    private const string ConflictingCopy = "|conflict-sha256:";

    private static OperationOutcome ConflictingBatchOutcome(InboxMessage message)
    {
        var outcome = new OperationOutcome();
        var batchId = message.MessageId[..message.MessageId.IndexOf(ConflictingCopy, StringComparison.Ordinal)];
        outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.Integrity.Code(),
            $"批次号 {batchId} 已用于另一份清单不同的批次，整批拒收", "manifest.json"));
        return outcome;
    }

    /// <summary>
    /// Whether two batches carry the same manifest (a re-delivery, township-export.md §1): the same JSON, however it is
    /// laid out, so a batch zipped anew is still the same batch.
    /// </summary>
    private static bool SameManifest(byte[] stored, byte[] received)
    {
        try
        {
            return TownshipBatchReader.FileFromZip(stored, "manifest.json") is { } a
                && TownshipBatchReader.FileFromZip(received, "manifest.json") is { } b
                && System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(a), System.Text.Json.Nodes.JsonNode.Parse(b));
        }
        catch (Exception e) when (e is InvalidDataException or System.Text.Json.JsonException)
        {
            // Not zips, or no readable manifest: their id is their content hash, so the same id is the same bytes.
            return true;
        }
    }

    /// <summary>Stores a birth-certificate document (one certificate or a batch) and applies each valid certificate.</summary>
    public async Task<IngestResult> ReceiveCertificatesAsync(byte[] xml, CancellationToken ct)
    {
        var id = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(xml));
        var (stored, duplicate) = await inbox.AcceptAsync(IngestSources.BirthCertificate, id, "application/xml", xml, ct);
        return duplicate && stored.Status == InboxStatus.Processed ? Stored(stored, processed: true) : await ProcessAsync(stored, ct);
    }

    /// <summary>
    /// Processes (again) a stored message of any source: a new one, a replay of a dead letter, or recovery after a crash.
    /// What fails unexpectedly (a defect in a mapping, a store error) makes the message a dead letter that says so,
    /// to be replayed once the cause is fixed; it never stays Received for every start-up to trip over again.
    /// </summary>
    public async Task<IngestResult> ProcessAsync(InboxMessage message, CancellationToken ct)
    {
        try
        {
            return await ProcessUnguardedAsync(message, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return await CompleteAsync(message, Outcome(OperationOutcome.IssueType.Exception,
                $"Processing failed with an internal error ({Describe(e)}); the message is kept as dead letter {message.Id} and can be replayed once the cause is fixed."),
                failed: true, ct);
        }
    }

    private async Task<IngestResult> ProcessUnguardedAsync(InboxMessage message, CancellationToken ct)
    {
        if (message.Source == IngestSources.His)
        {
            await ProcessHisAsync(message, null, ct);
            return Stored((await inbox.GetAsync(message.Id, ct))!, processed: true);
        }

        await _worker.WaitAsync(ct);
        try
        {
            var (outcome, failed) = message.Source switch
            {
                IngestSources.Township when message.MessageId.Contains(ConflictingCopy, StringComparison.Ordinal) => (ConflictingBatchOutcome(message), true),
                IngestSources.Township => await ApplyTownshipAsync(message.Body, ct),
                IngestSources.BirthCertificate => WithFailed(await ApplyCertificatesAsync(message.Body, message.ReceivedAt, ct)),
                _ => WithFailed(Outcome(OperationOutcome.IssueType.NotSupported, $"The inbox source '{message.Source}' has no adapter.")),
            };
            return await CompleteAsync(message, outcome, failed, ct);
        }
        finally
        {
            _worker.Release();
        }
    }

    public void Dispose() => _worker.Dispose();

    /// <summary>Processes every message left Received by an interrupted run, oldest first.</summary>
    public async Task<int> RecoverAsync(CancellationToken ct)
    {
        var done = 0;
        long? after = null;
        while (true)
        {
            var page = await inbox.ListAsync(InboxStatus.Received, after, 100, ct);
            if (page.Count == 0)
            {
                return done;
            }

            foreach (var message in page)
            {
                await ProcessAsync(message, ct);
                done++;
            }

            after = page[^1].Id;
        }
    }

    /// <summary>
    /// Re-runs a dead letter; null when there is no such message. A message that was applied (or is being processed)
    /// is refused with 409: running it again would reapply an old event over what came after it.
    /// </summary>
    public async Task<IngestResult?> ReplayAsync(long id, CancellationToken ct)
    {
        if (!_replaying.TryAdd(id, 0))
        {
            throw new ConflictException($"Inbox message {id} is being replayed already.");
        }

        try
        {
            if (await inbox.GetAsync(id, ct) is not { } message)
            {
                return null;
            }

            return message.Status == InboxStatus.Failed
                ? await ProcessAsync(message, ct)
                : throw new ConflictException($"Inbox message {id} is {message.Status}, not a dead letter; only dead letters are replayed.");
        }
        finally
        {
            _replaying.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// The dead letters this process is replaying: a second replay of one (a request sent twice, a batch replay beside
    /// a single one) finds it claimed, and so never applies again a message the first has just applied.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _replaying = new();

    /// <summary>Re-runs every dead letter (of one source, or all), oldest first.</summary>
    /// <param name="reason">Only the dead letters one of whose issues has this code (<c>UNKNOWN_CODE</c> once a code map
    /// was extended): the rejections a fix mends, not those the sender is to correct.</param>
    public async Task<IReadOnlyList<IngestResult>> ReplayAllAsync(string? source, string? reason, CancellationToken ct)
    {
        var results = new List<IngestResult>();
        long? after = null;
        while (true)
        {
            var page = await inbox.ListAsync(InboxStatus.Failed, source, after, 100, ct);
            if (page.Count == 0)
            {
                return results;
            }

            foreach (var listed in page.Where(m => reason is null || HasIssueCode(m, reason)))
            {
                if (!_replaying.TryAdd(listed.Id, 0))
                {
                    continue;
                }

                try
                {
                    // Read again once claimed: the page is a snapshot, and a single replay may have applied it since.
                    if (await inbox.GetAsync(listed.Id, ct) is { Status: InboxStatus.Failed } message)
                    {
                        results.Add(await ProcessAsync(message, ct));
                    }
                }
                finally
                {
                    _replaying.TryRemove(listed.Id, out _);
                }
            }

            after = page[^1].Id;
        }
    }

    private static bool HasIssueCode(InboxMessage message, string code)
    {
        if (message.Outcome is not { } json)
        {
            return false;
        }

        using var outcome = System.Text.Json.JsonDocument.Parse(json);
        return outcome.RootElement.TryGetProperty("issue", out var issues) && issues.EnumerateArray().Any(issue =>
            issue.TryGetProperty("details", out var details) && details.TryGetProperty("coding", out var coding)
            && coding.EnumerateArray().Any(c => c.TryGetProperty("code", out var value) && value.GetString() == code));
    }

    /// <param name="beforeCommit">More to write in the transaction's session (a HIS message's completion).</param>
    /// <param name="checkPatients">What to do with the stored records the transaction updates (Patients, visits, shared
    /// records), once it holds their locks and read them (no round trip of its own, and nothing can change them
    /// meanwhile): by default <see cref="KeepOtherSourcesAsync"/>.</param>
    private async Task<BundleResult> ApplyAsync(Bundle transaction, CancellationToken ct, Func<IWriteSession, CancellationToken, Task>? beforeCommit = null,
        Func<IWriteSession, IReadOnlyList<Bundle.EntryComponent>, CancellationToken, Task>? checkPatients = null)
    {
        var unmapped = UnmappedCounts([transaction]);
        IdNumberOutcome.AttachTo(transaction);
        return await transactions.HandleAsync(new BundleRequest(transaction, BaseUrl, async (session, token) =>
        {
            if (beforeCommit is not null)
            {
                await beforeCommit(session, token);
            }

            await session.AddToCountsAsync(unmapped, token);
        }, checkPatients ?? KeepOtherSourcesAsync), ct);
    }

    /// <summary>One count per message and unmapped local code it writes (<see cref="UnmappedCodesAsync"/>).</summary>
    private static List<KeyValuePair<string, long>> UnmappedCounts(IEnumerable<Bundle> transactions) =>
        transactions.SelectMany(Codes.UnmappedCodes.In).Select(c => new KeyValuePair<string, long>($"{UnmappedCounter}{c.System}|{c.Code}", 1)).ToList();

    /// <summary>
    /// Why the store refused a message, a township row or a certificate: identifiers that belong to several stored persons
    /// (an ID number of one, a health card of another) are <c>DUPLICATE_KEY</c>, for the source to resolve; anything else
    /// it refers to and the hub lacks is <c>UNKNOWN_REFERENCE</c>.
    /// </summary>
    private static RejectionReason Refusal(FhirException e) =>
        e.Status == System.Net.HttpStatusCode.PreconditionFailed && Describe(e.Outcome).Contains("Patient?", StringComparison.Ordinal)
            ? RejectionReason.DuplicateKey
            : RejectionReason.UnknownReference;

    private static bool HasErrors(OperationOutcome outcome) =>
        outcome.Issue.Any(i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal);

    private static (OperationOutcome, bool) WithFailed(OperationOutcome outcome) => (outcome, HasErrors(outcome));

    private async Task<IngestResult> CompleteAsync(InboxMessage message, OperationOutcome outcome, bool failed, CancellationToken ct)
    {
        await inbox.CompleteAsync(message.Id, failed ? InboxStatus.Failed : InboxStatus.Processed,
            Encoding.UTF8.GetString(serializers.ToJsonBytes(outcome)), ct);
        return new IngestResult((await inbox.GetAsync(message.Id, ct))!, !failed, outcome);
    }

    private IngestResult Stored(InboxMessage message, bool processed) =>
        new(message, processed && message.Status == InboxStatus.Processed,
            message.Outcome is { } json ? (OperationOutcome)serializers.ParseStored(Encoding.UTF8.GetBytes(json)) : new OperationOutcome());

    /// <summary>The answer a stored message got when it was refused for its content (no MALFORMED among its errors), or null.</summary>
    private (AckCode Code, List<HisIssue> Issues)? RejectedForItsContent(InboxMessage stored) =>
        StoredAnswer(stored) is { Code: AckCode.AE or AckCode.AR } answer && answer.Issues.Any(i => i.Severity == IssueSeverity.Error)
            && !answer.Issues.Any(i => i.Severity == IssueSeverity.Error && i.Reason == RejectionReason.Malformed)
            ? answer
            : null;

    /// <summary>
    /// The ACK code and issues a stored message was answered with (its outcome), so a resend is answered alike: an AA
    /// with the warnings it had, a refusal with its errors. Null when the outcome is absent or names an error of no known reason.
    /// </summary>
    private (AckCode Code, List<HisIssue> Issues)? StoredAnswer(InboxMessage stored)
    {
        if (stored.Outcome is not { Length: > 0 } json || serializers.ParseStored(Encoding.UTF8.GetBytes(json)) is not OperationOutcome outcome)
        {
            return null;
        }

        var ack = outcome.Issue.FirstOrDefault()?.Details?.Coding.FirstOrDefault()?.Code;
        if (ack is not ("AA" or "AE" or "AR"))
        {
            return null;
        }

        var issues = new List<HisIssue>();
        foreach (var issue in outcome.Issue.Skip(1))
        {
            var reason = Enum.GetValues<RejectionReason>().Cast<RejectionReason?>().FirstOrDefault(r => r!.Value.Code() == issue.Details?.Coding.FirstOrDefault()?.Code);
            var severity = issue.Severity == OperationOutcome.IssueSeverity.Error ? IssueSeverity.Error : IssueSeverity.Warning;
            if (severity == IssueSeverity.Error && reason is null)
            {
                return null;
            }

            if (reason is { } known)
            {
                var err = issue.Details?.Coding.FirstOrDefault(c => c.System == Hl7ErrorCodes);
                issues.Add(new HisIssue(known, Hl7Location.FromErl(issue.Location.FirstOrDefault()), issue.Diagnostics ?? "", severity,
                    int.TryParse(err?.Code, NumberStyles.None, CultureInfo.InvariantCulture, out var code) ? code : null, err?.Display));
            }
        }

        return (ack switch { "AA" => AckCode.AA, "AE" => AckCode.AE, _ => AckCode.AR }, issues);
    }

    private HisReply Reply(Hl7Message? answered, AckCode code, long? inboxId, IReadOnlyList<HisIssue> issues, string? unreadControlId = null)
    {
        var ack = Hl7Ack.Build(answered, code, issues, Hl7Ack.NewControlId(inboxId), clock.GetLocalNow(), unreadControlId: unreadControlId);
        return new HisReply(code, Hl7Ack.Encode(ack, answered), inboxId);
    }

    private static bool SameContent(byte[] stored, Hl7Message message)
    {
        try
        {
            return HisMapper.ContentHash(Hl7Parser.Parse(stored)) == HisMapper.ContentHash(message);
        }
        catch (Hl7ParseException)
        {
            return false;
        }
    }

    private static OperationOutcome ToOutcome(IReadOnlyList<HisIssue> issues, AckCode code)
    {
        var outcome = new OperationOutcome();
        outcome.Issue.Add(Issue(code == AckCode.AA ? OperationOutcome.IssueSeverity.Information : OperationOutcome.IssueSeverity.Error, code.ToString(),
            code == AckCode.AA ? "applied" : "rejected", null));
        foreach (var issue in issues)
        {
            var recorded = Issue(Of(issue.Severity), issue.Reason.Code(), issue.Detail, issue.Location?.ToErl());
            if (issue.ErrorCode is not null || issue.SummaryText is not null)
            {
                // ERR-3 and ERR-5's text when they are not the reason's own, so a resend is answered with the same ERR.
                recorded.Details!.Coding.Add(new Coding(Hl7ErrorCodes, issue.Hl7ErrorCode.ToString(CultureInfo.InvariantCulture), issue.Summary));
            }

            outcome.Issue.Add(recorded);
        }

        return outcome;
    }

    /// <summary>HL7 table 0357 (message error condition codes): ERR-3.</summary>
    private const string Hl7ErrorCodes = "http://terminology.hl7.org/CodeSystem/v2-0357";

    private static OperationOutcome.IssueSeverity Of(IssueSeverity severity) =>
        severity == IssueSeverity.Error ? OperationOutcome.IssueSeverity.Error : OperationOutcome.IssueSeverity.Warning;

    private static OperationOutcome.IssueComponent Issue(OperationOutcome.IssueSeverity severity, string code, string detail, string? where)
    {
        var issue = new OperationOutcome.IssueComponent
        {
            Severity = severity,
            Code = severity == OperationOutcome.IssueSeverity.Error ? OperationOutcome.IssueType.Processing : OperationOutcome.IssueType.Informational,
            Details = new CodeableConcept("urn:interophub:cs:rejection-reason", code),
            Diagnostics = detail,
        };
        if (where is not null)
        {
            issue.Location = [where];
        }

        return issue;
    }

    private static string? Where(string? file, int row, string? column) =>
        file is null ? null : column is null ? $"{file}:{row}" : $"{file}:{row}:{column}";

    private static OperationOutcome Outcome(OperationOutcome.IssueType type, string detail) => new()
    {
        Issue = [new OperationOutcome.IssueComponent { Severity = OperationOutcome.IssueSeverity.Error, Code = type, Diagnostics = detail }],
    };

    private static string Describe(Exception e) => e is FhirException fhir ? Describe(fhir.Outcome) : $"{e.GetType().Name}: {e.Message}";

    private static string Describe(OperationOutcome outcome) =>
        string.Join("; ", outcome.Issue.Select(i => i.Location.Any() ? $"{i.Diagnostics} ({string.Join(", ", i.Location)})" : i.Diagnostics));
}
