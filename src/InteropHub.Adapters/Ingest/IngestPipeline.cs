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
using InteropHub.Adapters.Identity;
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
                    return Reply(mapped.Message, AckCode.AA, stored.Id, []);
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
            return TownshipBatchReader.FromZip(stored).GetValueOrDefault("manifest.json") is { } a
                && TownshipBatchReader.FromZip(received).GetValueOrDefault("manifest.json") is { } b
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

    /// <summary>
    /// Maps (unless <paramref name="mapped"/> is the stored message's mapping already), applies and completes one HIS
    /// message. Messages about different persons run in parallel; those about one person run one after another in
    /// arrival order (<see cref="LockPersonsAsync"/>). A plain message is first tried in a group
    /// (IngestPipeline.HisGroups.cs); when the group's transaction fails, it is mapped again and applied alone.
    /// </summary>
    private async Task<HisReply> ProcessHisAsync(InboxMessage message, HisOutcome? mapped, CancellationToken ct)
    {
        mapped ??= HisMapper.Map(message.Body);
        var held = await LockPersonsAsync((mapped as HisAccepted)?.Transaction, ct);
        try
        {
            return await ProcessLockedHisAsync(message, mapped, inGroup: true, ct);
        }
        finally
        {
            Release(held);
        }
    }

    /// <summary><see cref="ProcessHisAsync"/> once the message's persons are locked; <paramref name="inGroup"/>: a plain message is first tried in a group.</summary>
    private async Task<HisReply> ProcessLockedHisAsync(InboxMessage message, HisOutcome? mapped, bool inGroup, CancellationToken ct)
    {
        mapped = await WithStoreWarningsAsync(await WithStoredKeysAsync(mapped ?? HisMapper.Map(message.Body), message.Body, ct), ct);
        if (message.MessageId.Contains(ConflictingCopy, StringComparison.Ordinal) && mapped.Message is { } reused)
        {
            // his-hl7v2.md §1: the same key with other content is AE DUPLICATE_KEY, on every processing of it.
            List<HisIssue> conflict = [new(RejectionReason.DuplicateKey, new Hl7Location("MSH", 1, 10), $"消息控制ID {reused.ControlId} 已用于另一条内容不同的消息", IssueSeverity.Error)];
            var (failed, why) = Completion(AckCode.AE, conflict);
            await inbox.CompleteAsync(message.Id, failed, why, ct);
            return Reply(reused, AckCode.AE, message.Id, conflict);
        }

        // Attempt 0, for a plain message, is in a group (IngestPipeline.HisGroups.cs); the others are alone.
        for (var attempt = inGroup && mapped is HisAccepted plain && Groupable(plain) ? 0 : 1; ; attempt++)
        {
            var (code, issues, completed) = mapped switch
            {
                HisRejected rejected => (rejected.AckCode, rejected.Errors, false),
                HisAccepted accepted when attempt == 0 => await ApplyInGroupAsync(Completing(message, accepted), accepted) ?? (AckCode.AR, [], false),
                HisAccepted accepted => await ApplyHisAsync(Completing(message, accepted), accepted, retry: attempt < MaxAttempts, ct) ?? (AckCode.AR, [], false),
                _ => throw new InvalidOperationException("Unknown HIS outcome."),
            };
            if (code == AckCode.AR && issues.Count == 0)
            {
                mapped = await WithStoreWarningsAsync(await WithStoredKeysAsync(HisMapper.Map(message.Body), message.Body, ct), ct);
                continue;
            }

            if (!completed)
            {
                var (status, outcome) = Completion(code, issues);
                await inbox.CompleteAsync(message.Id, status, outcome, ct);
            }

            return Reply(mapped.Message, code, message.Id, issues, (mapped as HisRejected)?.UnreadControlId);
        }
    }

    private const int MaxAttempts = 5;

    /// <summary>The inbox status and OperationOutcome (JSON) that record a HIS message answered with this ACK.</summary>
    private (InboxStatus Status, string Outcome) Completion(AckCode code, IReadOnlyList<HisIssue> issues)
    {
        if (code == AckCode.AA && issues.Count == 0)
        {
            // Most messages: the same outcome every time, serialised once.
            return (InboxStatus.Processed, _applied ??= Encoding.UTF8.GetString(serializers.ToJsonBytes(ToOutcome([], AckCode.AA))));
        }

        var outcome = ToOutcome(issues, code);
        return (HasErrors(outcome) ? InboxStatus.Failed : InboxStatus.Processed, Encoding.UTF8.GetString(serializers.ToJsonBytes(outcome)));
    }

    private string? _applied;

    /// <summary>The warnings of an applied HIS message: the mapper's, and the ID numbers its merge found in disagreement (<see cref="IdNumberOutcome"/>).</summary>
    private static IReadOnlyList<HisIssue> HisWarnings(HisAccepted accepted) =>
    [
        .. accepted.Warnings,
        .. IdNumberOutcome.In(accepted.Transaction).Select(o => HisIssue.Warning(new Hl7Location("PID", 1, 3), o.Ignored
            ? $"身份证号 {o.Sent} 与平台已存的 {o.Stored} 不一致；本消息不维护患者身份，未采用"
            : $"身份证号 {o.Sent} 与平台已存的 {o.Stored}（来自其他来源）不一致；两者均保留，请核对")),
    ];

    /// <summary>Marks a stored HIS message applied (AA), inside the write session that applies it.</summary>
    private Func<IWriteSession, CancellationToken, Task> Completing(InboxMessage message, HisAccepted accepted) => (session, token) =>
    {
        // Inside the transaction, after its merge: the ID number warnings of this attempt are known.
        var (status, outcome) = Completion(AckCode.AA, HisWarnings(accepted));
        return session.CompleteInboxAsync(message.Id, status, outcome, token);
    };

    /// <summary>
    /// Takes a lock on every identifier value of the Patients a transaction writes, in ascending order (so two
    /// messages never wait on each other crosswise). Two messages about one person share an identifier (that is how
    /// they find the same Patient), so they run one after another, whichever source they come from; messages about
    /// different persons never wait on each other.
    /// </summary>
    private async Task<List<string>> LockPersonsAsync(Bundle? transaction, CancellationToken ct)
    {
        var held = new List<string>();
        try
        {
            foreach (var key in PersonKeys(transaction).Order(StringComparer.Ordinal))
            {
                PersonGate gate;
                lock (_persons)
                {
                    if (!_persons.TryGetValue(key, out gate!))
                    {
                        _persons[key] = gate = new PersonGate();
                    }

                    gate.Users++;
                }

                try
                {
                    await gate.Gate.WaitAsync(ct);
                }
                catch
                {
                    Forget(key, release: false);
                    throw;
                }

                held.Add(key);
            }

            return held;
        }
        catch
        {
            Release(held);
            throw;
        }
    }

    private static HashSet<string> PersonKeys(Bundle? transaction) =>
    [
        .. (transaction?.Entry.Select(e => e.Resource).OfType<Patient>() ?? [])
            .SelectMany(p => p.Identifier.Select(i => i.Value).OfType<string>().Where(v => v.Length > 0))
            .Select(v => v.ToUpperInvariant()),
    ];

    private void Release(List<string> keys) => keys.ForEach(k => Forget(k, release: true));

    private void Forget(string key, bool release)
    {
        lock (_persons)
        {
            var gate = _persons[key];
            if (release)
            {
                gate.Gate.Release();
            }

            if (--gate.Users == 0)
            {
                _persons.Remove(key);
            }
        }
    }

    /// <summary>A person's lock and how many messages hold or wait for it (it is dropped when none does).</summary>
    private sealed class PersonGate
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public int Users { get; set; }
    }

    /// <summary>
    /// Checks the preconditions against the store, then runs the transaction, which also records the message as
    /// applied (<paramref name="complete"/>); AE with the reason when either fails. Null when a record an A40 merge
    /// moves changed between its read and the merge's write (its If-Match failed) and the message should be mapped
    /// and applied again (<paramref name="retry"/>).
    /// </summary>
    private async Task<(AckCode, IReadOnlyList<HisIssue>, bool Completed)?> ApplyHisAsync(Func<IWriteSession, CancellationToken, Task> complete,
        HisAccepted accepted, bool retry, CancellationToken ct)
    {
        var bundle = accepted.Transaction;
        foreach (var precondition in accepted.Preconditions)
        {
            var failure = precondition switch
            {
                MustExist mustExist => await CheckExistsAsync(mustExist, ct),
                TaskTransition transition => await CheckTransitionAsync(transition, bundle, ct),
                _ => null,
            };
            if (failure is not null)
            {
                return (AckCode.AE, [failure], false);
            }
        }

        try
        {
            // Applied and marked processed in one transaction: a crash leaves either both or neither.
            if (accepted.Merge is not null)
            {
                await merged.AddMovesAsync(bundle, ct);
                await ApplyAsync(bundle, ct, complete, CheckMergeAsync);
            }
            else
            {
                await CancelUnlistedResultsAsync(bundle, ct);
                await ApplyAsync(bundle, ct, complete, CheckPatientsAsync);
            }

            return (AckCode.AA, HisWarnings(accepted), true);
        }
        catch (RefusedMessageException e)
        {
            return (AckCode.AE, [e.Issue], false);
        }
        catch (FhirException e) when (retry && accepted.Merge is not null && e.Status == System.Net.HttpStatusCode.PreconditionFailed)
        {
            return null;
        }
        catch (FhirException e) when (Refusal(e) == RejectionReason.DuplicateKey)
        {
            // The identifiers the message names belong to more than one stored record (an MRN of one person, the ID
            // number of another): by the linking rules they are one person, merged before the message is applied again;
            // unless the records disagree, which the sender must resolve (a merge, a correction).
            if (retry && accepted.Merge is null && await LinkSamePersonAsync(bundle, ct))
            {
                return null;
            }

            return (AckCode.AE, [new HisIssue(RejectionReason.DuplicateKey, new Hl7Location("PID", 1, 3),
                $"消息中的标识符属于多个已存储的记录，无法确定是哪一个: {Describe(e.Outcome)}", IssueSeverity.Error, 205, "标识符冲突")], false);
        }
        catch (FhirException e) when ((int)e.Status == 422)
        {
            // A rule of the hub's workflows (the referral state machine) refuses what the message asks for.
            return (AckCode.AE, [new HisIssue(RejectionReason.InvalidTransition, null, Describe(e.Outcome), IssueSeverity.Error)], false);
        }
        catch (FhirException e)
        {
            // The message is valid HL7 but the hub refused what it maps to: AE names why, and the stored message
            // waits in the dead letters for a replay.
            return (AckCode.AE, [new HisIssue(RejectionReason.Malformed, null, Describe(e.Outcome), IssueSeverity.Error, 207, "系统内部错误")], false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A store failure is the hub's problem, not the message's: AR asks the sender to retry (his-hl7v2.md §7),
            // and the stored message is a dead letter until then.
            return (AckCode.AR, [new HisIssue(RejectionReason.Malformed, null, $"存储失败: {e.Message}", IssueSeverity.Error, 207, "系统内部错误")], false);
        }
    }

    /// <summary>
    /// Applies the merge of the stored Patients a message's identifiers name together (<see cref="MergedRecords.SamePersonAsync"/>);
    /// whether it did. A merge the store refuses (a record changed meanwhile, a rule of a record it moves) is not made.
    /// </summary>
    private async Task<bool> LinkSamePersonAsync(Bundle message, CancellationToken ct)
    {
        // Each Patient of the message that names several stored ones is merged in turn (a certificate's mother and
        // child); a merge whose records changed while it was read (If-Match) is read and tried again.
        var linked = false;
        for (var attempt = 0; attempt < 8; attempt++)
        {
            try
            {
                if (await merged.SamePersonAsync(message, ct) is not { } merge)
                {
                    return linked;
                }

                // Not a message: no unmapped codes are counted for the records it moves.
                await transactions.HandleAsync(new BundleRequest(merge, BaseUrl, AfterLocks: merged.CheckNothingLeftAsync), ct);
                linked = true;
            }
            catch (FhirException e) when (e.Status is System.Net.HttpStatusCode.PreconditionFailed or System.Net.HttpStatusCode.Conflict)
            {
                // Changed meanwhile: read again.
            }
            catch (FhirException)
            {
                return linked;
            }
        }

        return linked;
    }

    /// <summary>Runs <paramref name="apply"/>, and again once the Patients the message names together are merged when it failed because of them.</summary>
    private async Task<T> LinkingSamePersonAsync<T>(Bundle message, Func<Task<T>> apply, CancellationToken ct)
    {
        try
        {
            return await apply();
        }
        catch (FhirException e) when (Refusal(e) == RejectionReason.DuplicateKey)
        {
            if (!await LinkSamePersonAsync(message, ct))
            {
                throw;
            }
        }

        return await apply();
    }

    /// <summary>
    /// A cancelled report (OBR-25 <c>X</c>) cancels its results: those the message lists come cancelled (OBX-11 <c>X</c>),
    /// and the stored report's other results are written cancelled in the same transaction (If-Match on the version
    /// read), so no result of a withdrawn report stays final. Such a message is applied alone (<see cref="Groupable"/>).
    /// </summary>
    private async Task CancelUnlistedResultsAsync(Bundle bundle, CancellationToken ct)
    {
        foreach (var report in bundle.Entry.Select(e => e.Resource).OfType<DiagnosticReport>().Where(r => r.Status == DiagnosticReport.DiagnosticReportStatus.Cancelled).ToList())
        {
            if (report.Id is not { Length: > 0 } id || await store.ReadAsync("DiagnosticReport", id, ct) is not { IsDeleted: false } stored)
            {
                continue;
            }

            var listed = bundle.Entry.Where(e => e.Request?.Url is not null).Select(e => e.Request!.Url!).ToHashSet(StringComparer.Ordinal);
            var results = ((DiagnosticReport)serializers.ParseStored(stored.Json)).Result.Select(r => r.Reference).OfType<string>()
                .Where(r => r.StartsWith("Observation/", StringComparison.Ordinal) && !listed.Contains(r)).Select(r => r["Observation/".Length..]).ToList();
            foreach (var held in await store.ReadManyAsync("Observation", results, ct))
            {
                if (held.IsDeleted || serializers.ParseStored(held.Json) is not Observation { Status: not ObservationStatus.Cancelled } result)
                {
                    continue;
                }

                result.Status = ObservationStatus.Cancelled;
                bundle.Entry.Insert(0, new Bundle.EntryComponent
                {
                    FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                    Resource = result,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Observation/{held.Id}", IfMatch = held.ETag },
                });
            }
        }
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
    /// A message is one source's view of a person, a visit or a shared record: before it replaces what is stored, what
    /// it does not carry is copied over from the stored version (<see cref="KeepWhatTheMessageLacks"/>,
    /// <see cref="KeepVisitHistory"/>, <see cref="KeepUnsentAsync"/>), so what the other sources said survives
    /// (docs/architecture.md, adapters). Runs inside the transaction once it holds its locks
    /// (<see cref="BundleRequest.AfterLocks"/>), so the stored versions cannot change between this read and the write.
    /// </summary>
    /// <remarks>
    /// Township rows are replaced whole (township-export.md §2): a shared record the township wrote last is replaced,
    /// one another source wrote keeps what the row leaves empty.
    /// </remarks>
    private async Task KeepOtherSourcesAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct) =>
        await KeepAsync(session, entries, await ReadPatientsAsync(session, entries, ct), overTownship: false, ct);

    /// <summary><see cref="KeepOtherSourcesAsync"/>, keeping what a message leaves empty of every shared record: for certificates.</summary>
    private async Task KeepOtherSourcesAndSharedRecordsAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct) =>
        await KeepAsync(session, entries, await ReadPatientsAsync(session, entries, ct), overTownship: true, ct);

    /// <summary>The three merges, over the stored Patients the transaction read: person, visit, shared records.</summary>
    private async Task KeepAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries,
        Dictionary<string, IReadOnlyList<StoredResource>> patients, bool overTownship, CancellationToken ct)
    {
        KeepOtherSources(entries, patients);
        await KeepVisitHistoryAsync(session, entries, patients, ct);
        await KeepUnsentAsync(session, entries, overTownship, ct);
    }

    /// <summary>The records several messages write by one id, each carrying part of them.</summary>
    private static readonly HashSet<string> SharedRecords = new(StringComparer.Ordinal) { "Immunization", "DiagnosticReport", "ServiceRequest", "RelatedPerson" };

    /// <summary>
    /// A dose is one Immunization whichever source reports it (the HIS, the township export, the certificate), a
    /// report's correction may carry only the results it corrects (his-hl7v2.md §5), and an I14 names a referral
    /// without its diagnoses and summary, and a newborn's parent is one RelatedPerson whether the HIS or the certificate
    /// names them (<see cref="Identity.KinIds"/>; other kin the HIS alone writes, whole): before a PUT by id replaces
    /// such a stored record, what the message leaves empty is kept (<see cref="UnsentElements"/>), with every
    /// identifier of the dose (also over a version the township wrote) and every result of the report.
    /// </summary>
    /// <param name="overTownship">Also over a version the township export wrote (its <c>meta.source</c> names a batch row).</param>
    private async Task KeepUnsentAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, bool overTownship, CancellationToken ct)
    {
        foreach (var entry in entries)
        {
            if (entry is not { Resource: { } next, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } } || !SharedRecords.Contains(next.TypeName)
                || next.Annotations(typeof(RestoredReport)).Any()
                || next is RelatedPerson kin && !Identity.KinIds.IsParent(kin)
                || url.Contains('?', StringComparison.Ordinal) || next.Id is not { Length: > 0 } id
                || await session.ReadCurrentAsync(next.TypeName, id, ct) is not { IsDeleted: false } stored)
            {
                continue;
            }

            var current = serializers.ParseStored(stored.Json);
            if (next is Immunization dose && current is Immunization given)
            {
                // Whoever wrote the dose last, it keeps every source's identifier of it. Once the institution that gave
                // it reported it first hand (RXA-9 00, record_source 1), a later transcription of it (the certificate's
                // birth doses, a township 历史补录, another hospital's 历史记录) adds its identifiers and changes nothing
                // else: its time, performer or lot, copied from a vaccination card, do not replace the record of the act.
                var identifiers = dose.Identifier.Concat(given.Identifier.Where(i => !dose.Identifier.Any(n => n.System == i.System && n.Value == i.Value))).ToList();
                if (given.PrimarySource == true && dose.PrimarySource != true && !SameTownshipRow(dose, given))
                {
                    UnsentElements.KeepAll(dose, given);
                }

                // A report of the day alone (a township row's vacc_date) does not take away the time another gave.
                if (dose.Occurrence is FhirDateTime { Value.Length: 10 } day && given.Occurrence is FhirDateTime { Value.Length: > 10 } time
                    && time.Value.StartsWith(day.Value, StringComparison.Ordinal))
                {
                    dose.Occurrence = (FhirDateTime)time.DeepCopy();
                }

                dose.Identifier = identifiers;
            }

            if (!overTownship && current.Meta?.Source is { } source && source.StartsWith(TownshipMapper.SourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            switch (next, current)
            {
                case (DiagnosticReport report, DiagnosticReport had):
                    var results = report.Result.Select(r => r.Reference).ToHashSet(StringComparer.Ordinal);
                    report.Result.InsertRange(0, had.Result.Where(r => !results.Contains(r.Reference)).ToList());
                    break;
                case (ServiceRequest referral, ServiceRequest had):
                    // A referral's reasons are two fields of the message: RF1-10 (why it is referred, table 0336) and the
                    // DG1 diagnoses (any other system). An I13 P carrying one of them keeps the stored other.
                    if (referral.ReasonCode.Count > 0)
                    {
                        var reason = referral.ReasonCode.Any(IsReferralReason);
                        var diagnoses = referral.ReasonCode.Any(c => !IsReferralReason(c));
                        referral.ReasonCode.InsertRange(0, had.ReasonCode.Where(c => IsReferralReason(c) ? !reason : !diagnoses).ToList());
                    }

                    // The notes add up: the I12's clinical summary stays when an I13 or the I14 remarks on the referral. A
                    // message with a summary of its own (an amended I12, an I13 P) replaces the summary.
                    var summarised = referral.Note.Any(IsSummary);
                    var notes = referral.Note.Select(n => n.Text).ToHashSet(StringComparer.Ordinal);
                    referral.Note.InsertRange(0, had.Note.Where(n => !(summarised && IsSummary(n)) && !notes.Contains(n.Text)).ToList());
                    break;
            }

            UnsentElements.Keep(next, current);
            if (next is Immunization { PrimarySource: true } firstHand)
            {
                // A first-hand report has no other origin (Immunization.reportOrigin is for a record that is not).
                firstHand.ReportOrigin = null;
            }

            if (next is Immunization reported)
            {
                // Every report states the dose's status (RXA-20, a row's status): what only another status means is not
                // kept from the stored version. A reason it was not given goes with not-done; a partial dose was given.
                if (reported.Status == Immunization.ImmunizationStatusCodes.NotDone)
                {
                    reported.IsSubpotent = null;
                }
                else
                {
                    reported.StatusReason = null;
                }
            }
        }
    }

    /// <summary>
    /// The stored dose is the township row's own, which writes it again (no other report of it: only the row's
    /// <c>vacc_id</c> and a trace code on it): a row is replaced whole (township-export.md §2), so its own first-hand
    /// version does not hold back its later one.
    /// </summary>
    private static bool SameTownshipRow(Immunization next, Immunization stored) =>
        next.Identifier.FirstOrDefault(i => i.System == TownshipMapper.VaccinationSystem) is { } row
        && stored.Identifier.Any(i => i.System == row.System && i.Value == row.Value)
        && stored.Identifier.All(i => i.System == Systems.VaccineTraceCode || (i.System == row.System && i.Value == row.Value));

    private static bool IsSummary(Annotation note) => note.GetExtensionValue<FhirBoolean>(ExtensionUrls.ReferralSummary)?.Value == true;

    /// <summary>A reason of a referral that is its RF1-10 (HL7 table 0336), not a DG1 diagnosis.</summary>
    private static bool IsReferralReason(CodeableConcept reason) => reason.Coding.Any(c => c.System == ReferralMapping.ReferralReasonSystem);

    /// <summary>
    /// <see cref="KeepOtherSourcesAsync"/> after the retirement check of HIS messages: a message naming a retired
    /// Patient is refused (<see cref="RefusedMessageException"/>) and nothing of its transaction is written.
    /// </summary>
    private async Task CheckPatientsAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct)
    {
        var patients = await ReadPatientsAsync(session, entries, ct);
        if (Retired(entries, patients) is { } retired)
        {
            throw new RefusedMessageException(retired);
        }

        await KeepAsync(session, entries, patients, overTownship: true, ct);
    }

    /// <summary>
    /// A merge (A40) of or into a record an earlier merge retired is refused as <see cref="Retired"/> refuses any other
    /// message naming it: the retired MRN names no one (his-hl7v2.md §5), and merging it again would link the two
    /// records each as the other's replacement. The same merge sent again (its retired record already replaced by its
    /// survivor) changes nothing and is acknowledged. Then as <see cref="KeepOtherSourcesAsync"/>.
    /// </summary>
    private async Task CheckMergeAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct)
    {
        var patients = await ReadPatientsAsync(session, entries, ct);
        if (Retired(entries, patients) is { } survivorRetired)
        {
            throw new RefusedMessageException(survivorRetired);
        }

        var survivors = entries.Where(e => e.Resource is Patient patient && !IsRetirement(patient)).Select(PatientCriteria).OfType<string>()
            .SelectMany(c => patients.GetValueOrDefault(c, [])).Select(p => $"Patient/{p.Id}").ToHashSet(StringComparer.Ordinal);
        foreach (var criteria in entries.Where(e => e.Resource is Patient patient && IsRetirement(patient)).Select(PatientCriteria).OfType<string>())
        {
            foreach (var stored in patients.GetValueOrDefault(criteria, []))
            {
                if ((Patient)serializers.ParseStored(stored.Json) is var patient && IsRetirement(patient)
                    && !patient.Link.Any(l => l.Type == Patient.LinkType.ReplacedBy && survivors.Contains(l.Other?.Reference ?? "")))
                {
                    throw new RefusedMessageException(new HisIssue(RejectionReason.UnknownReference, new Hl7Location("MRG", 1, 1),
                        $"患者 Patient/{stored.Id} 已由先前的 ADT^A40 合并到另一患者，其患者ID不再使用，不能再合并", IssueSeverity.Error));
                }
            }
        }

        await KeepAsync(session, entries, patients, overTownship: false, ct);
    }

    /// <summary>
    /// An ADT event is one moment of a visit (his-hl7v2.md §5): before its conditional update replaces the stored
    /// Encounter, what the stored one has and the event does not carry is kept (<see cref="KeepVisitHistory"/>). A
    /// cancel of admission (A11) of an inpatient visit already discharged is refused: A11 cancels a visit with no A03;
    /// so is a cancel of discharge (A13) of a visit with no discharge to undo, a message of another patient naming the
    /// visit, and an event out of step with it (<see cref="RefuseOutOfStep"/>).
    /// </summary>
    private async Task KeepVisitHistoryAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries,
        Dictionary<string, IReadOnlyList<StoredResource>> patients, CancellationToken ct)
    {
        var patientEntries = entries.Where(e => e is { Resource: Patient, FullUrl: not null }).ToDictionary(e => e.FullUrl!, StringComparer.Ordinal);

        // A visit number names one patient's visit: a message of another patient naming it (a typing error, a visit
        // moved between patients, which HL7 does with A44/A45) would move it, and what refers to it, to that patient,
        // or tie that patient's result or dose to it. For the message's patient that visit was never received (§1 "Order").
        void CheckOwner(Encounter encounter, Encounter current)
        {
            if (current.Subject?.Reference is { } owner && encounter.Subject?.Reference is { } subject && subject != owner
                && !(patientEntries.TryGetValue(subject, out var patientEntry) && PatientCriteria(patientEntry) is { } criteria
                     && patients.GetValueOrDefault(criteria, []).Any(p => $"Patient/{p.Id}" == owner)))
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.UnknownReference, new Hl7Location("PV1", 1, 19),
                    $"就诊 {encounter.Identifier.FirstOrDefault()?.Value} 属于另一患者 ({owner})，不是本消息 PID-3 的患者", IssueSeverity.Error));
            }
        }

        foreach (var entry in entries)
        {
            // The visit a result, a dose or a referral names (created when absent).
            if (entry is { Resource: Encounter named, Request: { Method: Bundle.HTTPVerb.POST, IfNoneExist: { } visitCriteria } }
                && await session.FindAsync("Encounter", parser.ParseCriteria("Encounter", SearchParser.SplitQueryString("Encounter", visitCriteria)), 2, ct) is [var held]
                && await session.ReadCurrentAsync("Encounter", held.Id, ct) is { IsDeleted: false } heldVisit)
            {
                CheckOwner(named, (Encounter)serializers.ParseStored(heldVisit.Json));
            }
        }
        var created = entries.Where(e => e is { FullUrl: not null, Request: { Method: Bundle.HTTPVerb.POST, Url: not null, IfNoneExist: not null } })
            .ToDictionary(e => e.FullUrl!, e => (Type: e.Request!.Url!, Criteria: e.Request.IfNoneExist!), StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (entry is not { Resource: Encounter encounter, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } }
                || !url.StartsWith("Encounter?", StringComparison.Ordinal))
            {
                continue;
            }

            // The roles an A08 deleted with "" (EncounterMapping): noted, and never stored.
            var cleared = encounter.Extension.Where(e => e.Url == ExtensionUrls.Cleared).Select(e => (e.Value as Code)?.Value).OfType<string>()
                .Where(v => v.StartsWith(EncounterMapping.ClearedParticipant, StringComparison.Ordinal)).Select(v => v[EncounterMapping.ClearedParticipant.Length..])
                .ToHashSet(StringComparer.Ordinal);
            encounter.Extension.RemoveAll(e => e.Url == ExtensionUrls.Cleared);
            var matches = await session.FindAsync("Encounter", parser.ParseCriteria("Encounter", SearchParser.SplitQueryString("Encounter", url)), 2, ct);
            if (matches is not [var match] || await session.ReadCurrentAsync("Encounter", match.Id, ct) is not { IsDeleted: false } stored)
            {
                continue;
            }

            var current = (Encounter)serializers.ParseStored(stored.Json);
            CheckOwner(encounter, current);

            if (encounter.Status == Encounter.EncounterStatus.EnteredInError && current.Class?.Code == "IMP" && current.Period?.End is not null
                && current.Status != Encounter.EncounterStatus.EnteredInError)
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.InvalidTransition, new Hl7Location("PV1", 1, 19),
                    $"就诊 {encounter.Identifier.FirstOrDefault()?.Value} 已出院 (ADT^A03)，不能取消入院；请先取消出院 (ADT^A13)", IssueSeverity.Error,
                    SummaryText: "就诊状态变更不允许"));
            }

            var visitEvent = encounter.Annotations(typeof(VisitEvent)).OfType<VisitEvent>().Select(e => (VisitEvent?)e).FirstOrDefault();

            // A cancelled visit (A11) is one that never was (his-hl7v2.md §1 "Order"): a transfer, discharge or cancel of it
            // refers to nothing. An A08 updates the person and leaves the visit cancelled; an A01/A04 registers it anew.
            if (current.Status == Encounter.EncounterStatus.EnteredInError
                && visitEvent is VisitEvent.Transfer or VisitEvent.Discharge or VisitEvent.CancelDischarge or VisitEvent.CancelAdmit)
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.UnknownReference, new Hl7Location("PV1", 1, 19),
                    $"就诊 {encounter.Identifier.FirstOrDefault()?.Value} 已取消 (ADT^A11)", IssueSeverity.Error));
            }

            if (current.Status == Encounter.EncounterStatus.EnteredInError && visitEvent == VisitEvent.Update)
            {
                encounter.Status = Encounter.EncounterStatus.EnteredInError;
            }

            if (visitEvent == VisitEvent.CancelDischarge && (current.Status != Encounter.EncounterStatus.Finished || current.Period?.End is null))
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.InvalidTransition, new Hl7Location("PV1", 1, 19),
                    $"就诊 {encounter.Identifier.FirstOrDefault()?.Value} 没有可取消的出院 (ADT^A03)", IssueSeverity.Error,
                    SummaryText: "就诊状态变更不允许"));
            }

            // The event's places as stored references: a place it creates when absent is named by a placeholder.
            foreach (var place in encounter.Location)
            {
                if (place.Location?.Reference is { } placeholder && created.TryGetValue(placeholder, out var creates)
                    && await session.FindAsync(creates.Type, parser.ParseCriteria(creates.Type, SearchParser.SplitQueryString(creates.Type, creates.Criteria)), 2, ct) is [var found])
                {
                    place.Location = new ResourceReference($"{creates.Type}/{found.Id}", place.Location.Display);
                }
            }

            RefuseOutOfStep(encounter, current, visitEvent);
            KeepVisitHistory(encounter, current, visitEvent, cleared);

            // §3 "Dates": PV1-45 before PV1-44, also when one of them came with an earlier message.
            if (encounter.Period is { StartElement: { } start, EndElement: { } end }
                && Earlier(end, start))
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.ImpossibleDate, new Hl7Location("PV1", 1, 45),
                    $"出院时间 {end.Value} 早于入院时间 {start.Value}", IssueSeverity.Error));
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="a"/> comes before <paramref name="b"/>, at the precision of the less precise (a PV1-45 of
    /// the day alone is not before a transfer at 10:00 that day), on the clock of the interface (+08:00).
    /// </summary>
    private static bool Earlier(FhirDateTime a, FhirDateTime b)
    {
        var (x, y) = (a.ToDateTimeOffset(Hl7Time.ChinaOffset).ToOffset(Hl7Time.ChinaOffset), b.ToDateTimeOffset(Hl7Time.ChinaOffset).ToOffset(Hl7Time.ChinaOffset));
        return a.Value?.Length <= 10 || b.Value?.Length <= 10 ? x.Date < y.Date : x < y;
    }

    /// <summary>
    /// Events out of step with the stored visit, which would give it a place left before it was taken (FHIR per-1) or
    /// a move after the discharge: a transfer (A02) of a discharged visit is <c>INVALID_TRANSITION</c> (an A13 undoes
    /// the discharge first); a transfer dated before the patient took the place the visit last moved to, or a discharge
    /// (A03) dated before it, is <c>IMPOSSIBLE_DATE</c>: a late message the sender must date again.
    /// </summary>
    private static void RefuseOutOfStep(Encounter encounter, Encounter current, VisitEvent? visitEvent)
    {
        var visit = encounter.Identifier.FirstOrDefault()?.Value;
        if (visitEvent == VisitEvent.Transfer && current is { Status: Encounter.EncounterStatus.Finished, Period.End: not null })
        {
            throw new RefusedMessageException(new HisIssue(RejectionReason.InvalidTransition, new Hl7Location("PV1", 1, 19),
                $"就诊 {visit} 已出院 (ADT^A03)，不能转科；请先取消出院 (ADT^A13)", IssueSeverity.Error, SummaryText: "就诊状态变更不允许"));
        }

        var lastMove = current.Location.Select(l => l.Period?.StartElement).OfType<FhirDateTime>()
            .MaxBy(t => t.ToDateTimeOffset(Hl7Time.ChinaOffset));
        if (lastMove is null)
        {
            return;
        }

        var (at, location) = visitEvent switch
        {
            VisitEvent.Transfer => (encounter.Location.Select(l => l.Period?.StartElement ?? l.Period?.EndElement).OfType<FhirDateTime>().FirstOrDefault(),
                new Hl7Location("EVN", 1, 2)),
            VisitEvent.Discharge => (encounter.Period?.EndElement, new Hl7Location("PV1", 1, 45)),
            _ => (null, null),
        };
        if (at is not null && location is not null && Earlier(at, lastMove))
        {
            throw new RefusedMessageException(new HisIssue(RejectionReason.ImpossibleDate, location,
                $"就诊 {visit} 的{(visitEvent == VisitEvent.Transfer ? "转科" : "出院")}时间 {at.Value} 早于患者进入当前位置的时间 {lastMove.Value}", IssueSeverity.Error));
        }
    }

    /// <summary>
    /// Keeps in the Encounter an event writes what the stored one has and the event does not carry: every location
    /// (Encounter.location is the visit's history of places; one the event names again takes the event's status, the
    /// others it no longer names are completed once it names a place, unless it names only places the visit has left
    /// and it is no transfer: then the history stands), diagnoses of other conditions, participants of
    /// another role, the reason, type, priority, service, provider, admission details and the period's start; the
    /// period's end and the discharge disposition only while the visit stays finished: a discharge stands until an A13
    /// undoes it, so an update or a result that does not carry it (PV1-45 empty is "not sent", §2) leaves it finished.
    /// </summary>
    private static void KeepVisitHistory(Encounter encounter, Encounter current, VisitEvent? visitEvent, IReadOnlySet<string> clearedRoles)
    {
        if (current is { Status: Encounter.EncounterStatus.Finished, Period.End: not null } && encounter.Status == Encounter.EncounterStatus.InProgress
            && visitEvent != VisitEvent.CancelDischarge)
        {
            encounter.Status = Encounter.EncounterStatus.Finished;
            foreach (var place in encounter.Location.Where(l => l.Status == Encounter.EncounterLocationStatus.Active))
            {
                place.Status = Encounter.EncounterLocationStatus.Completed;
            }
        }

        // Only a transfer moves the patient back to a place the visit has left: an admission sent again after the patient
        // moved (senders resend A01/A04 after changes, §5), an update or a discharge naming only such places carries
        // the place of the admission, and the stored history stands (the discharge ends the stay where the patient is).
        var there = current.Location.Where(l => l.Status == Encounter.EncounterLocationStatus.Active).Select(l => l.Location?.Reference)
            .ToHashSet(StringComparer.Ordinal);
        if (visitEvent != VisitEvent.Transfer && there.Count > 0 && encounter.Location.Count > 0
            && encounter.Location.All(l => current.Location.Any(c => c.Location?.Reference == l.Location?.Reference && c.Status == Encounter.EncounterLocationStatus.Completed)))
        {
            encounter.Location.Clear();
        }

        // An A13 naming none of the places the discharge ended (a stale place, or none: PV1-3 is RE) reopens the stay the
        // discharge ended; naming one of them reopens that one (below, as any event's place).
        if (visitEvent == VisitEvent.CancelDischarge && current.Period?.End is { } discharged)
        {
            var ended = current.Location.Where(l => l.Period?.End == discharged).ToList();
            if (ended.Count > 0 && !encounter.Location.Any(l => ended.Any(e => e.Location?.Reference == l.Location?.Reference)))
            {
                encounter.Location.Clear();
                foreach (var reopened in ended)
                {
                    reopened.Status = Encounter.EncounterLocationStatus.Active;
                    reopened.Period!.EndElement = null;
                }
            }
        }

        // The event replaces the latest stay at each place it names; earlier stays there stay, and a transfer back to a
        // place the visit left adds a stay (Encounter.location is the visit's history of places).
        var named = encounter.Location.Select(l => l.Location?.Reference).ToHashSet(StringComparer.Ordinal);
        var latest = current.Location.GroupBy(l => l.Location?.Reference).Select(g => g.Last()).ToHashSet();
        var returnsTo = visitEvent == VisitEvent.Transfer
            ? encounter.Location.Where(l => l.Status == Encounter.EncounterLocationStatus.Active).Select(l => l.Location?.Reference).ToHashSet(StringComparer.Ordinal)
            : [];
        var earlier = current.Location.Where(l => !named.Contains(l.Location?.Reference) || !latest.Contains(l)
            || (returnsTo.Contains(l.Location?.Reference) && l is { Status: Encounter.EncounterLocationStatus.Completed, Period.EndElement: not null })).ToList();

        // When the event's own place was taken (an A02's transfer time, an admission's start): the places the visit has
        // left were left then. Read before the places named again get their stored starts below.
        var taken = encounter.Location.Select(l => l.Period?.StartElement).FirstOrDefault(t => t is not null);

        // A place the event names again keeps when it was taken (an A02 names the place left with the time it was left;
        // an admission sent again does not move it to the admission's time), and when it was left while it stays left
        // (an update of a discharged visit). A transfer back to a place the visit left starts a new stay.
        foreach (var place in encounter.Location)
        {
            // The latest stay there, unless it stays as a stay of its own (a transfer back starts a new one).
            var previous = current.Location.LastOrDefault(l => l.Location?.Reference == place.Location?.Reference);
            if (previous is null || earlier.Contains(previous))
            {
                continue;
            }

            var stored = previous.Period;
            if (stored?.StartElement is { } since && (place.Period?.StartElement is null || visitEvent != VisitEvent.Transfer))
            {
                place.Period ??= new Period();
                place.Period.StartElement = since;
            }

            if (stored?.EndElement is { } left && place.Status == Encounter.EncounterLocationStatus.Completed && place.Period?.EndElement is null)
            {
                place.Period ??= new Period();
                place.Period.EndElement = left;
            }
        }

        if (encounter.Location.Count > 0)
        {
            foreach (var left in earlier.Where(l => l.Status is Encounter.EncounterLocationStatus.Active or Encounter.EncounterLocationStatus.Planned))
            {
                left.Status = Encounter.EncounterLocationStatus.Completed;
                if (taken is not null && left.Period?.EndElement is null
                    && !(left.Period?.StartElement is { } since && Earlier(taken, since)))
                {
                    left.Period ??= new Period();
                    left.Period.EndElement = (FhirDateTime)taken.DeepCopy();
                }
            }
        }

        encounter.Location.InsertRange(0, earlier);
        var conditions = encounter.Diagnosis.Select(d => d.Condition?.Reference).ToHashSet(StringComparer.Ordinal);
        encounter.Diagnosis.InsertRange(0, current.Diagnosis.Where(d => !conditions.Contains(d.Condition?.Reference)
            && !(visitEvent == VisitEvent.CancelDischarge && IsFinalDiagnosis(d))));
        var roles = encounter.Participant.SelectMany(p => p.Type).SelectMany(t => t.Coding).Select(c => c.Code).ToHashSet(StringComparer.Ordinal);
        roles.UnionWith(clearedRoles);
        encounter.Participant.AddRange(current.Participant.Where(p => !p.Type.SelectMany(t => t.Coding).Any(c => roles.Contains(c.Code))));
        encounter.Extension.AddRange(current.Extension.Where(e => !encounter.Extension.Any(n => n.Url == e.Url)).ToList());
        if (encounter.ReasonCode.Count == 0)
        {
            encounter.ReasonCode.AddRange(current.ReasonCode);
        }

        if (encounter.Type.Count == 0)
        {
            encounter.Type.AddRange(current.Type);
        }

        encounter.Priority ??= current.Priority;
        encounter.ServiceType ??= current.ServiceType;
        encounter.ServiceProvider ??= current.ServiceProvider;
        var finished = encounter.Status != Encounter.EncounterStatus.InProgress;
        if (current.Hospitalization is { } stay)
        {
            var kept = encounter.Hospitalization ?? new Encounter.HospitalizationComponent();
            kept.AdmitSource ??= stay.AdmitSource;
            kept.Destination ??= finished ? stay.Destination : null;
            kept.DischargeDisposition ??= finished ? stay.DischargeDisposition : null;

            // Never an empty element (FHIR JSON has none): a cancelled discharge may leave nothing of it.
            encounter.Hospitalization = kept.EnumerateElements().Any() ? kept : null;
        }

        if (current.Period is { } period)
        {
            encounter.Period ??= new Period();
            encounter.Period.StartElement ??= period.StartElement;
            encounter.Period.EndElement ??= finished ? period.EndElement : null;
        }

        // The place the patient left at the discharge was left then (Encounter.location.period: the time there): the one
        // the discharge names, or where the stored visit had the patient.
        if (visitEvent == VisitEvent.Discharge && encounter is { Status: Encounter.EncounterStatus.Finished, Period.EndElement: { } end })
        {
            // Where the stored visit had the patient (read before the places it left were completed above), or named.
            there.UnionWith(named);
            // A discharge of the day alone does not end a stay taken at a time that day (the end would not be after it).
            foreach (var place in encounter.Location.Where(l => l.Status is Encounter.EncounterLocationStatus.Completed or Encounter.EncounterLocationStatus.Active
                         && l.Period?.EndElement is null && there.Contains(l.Location?.Reference)
                         && !(end.Value?.Length <= 10 && l.Period?.Start is { Length: > 10 } since && since.StartsWith(end.Value, StringComparison.Ordinal))))
            {
                place.Status = Encounter.EncounterLocationStatus.Completed;
                place.Period ??= new Period();
                place.Period.EndElement = (FhirDateTime)end.DeepCopy();
            }
        }
    }

    /// <summary>
    /// The stored Patients each Patient entry's conditional criteria match, read in the transaction's session: its own
    /// searches and reads under its locks answer them (a match the transaction did not read, of an ambiguous search,
    /// costs a round trip).
    /// </summary>
    private async Task<Dictionary<string, IReadOnlyList<StoredResource>>> ReadPatientsAsync(IWriteSession session,
        IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct)
    {
        var patients = new Dictionary<string, IReadOnlyList<StoredResource>>(StringComparer.Ordinal);
        foreach (var criteria in entries.Where(e => e.Resource is Patient).Select(PatientCriteria).OfType<string>().Where(c => c.Length > 0)
                     .Distinct(StringComparer.Ordinal))
        {
            var found = new List<StoredResource>();
            foreach (var match in await session.FindAsync("Patient", parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", criteria)), 2, ct))
            {
                if (await session.ReadCurrentAsync("Patient", match.Id, ct) is { IsDeleted: false } stored)
                {
                    found.Add(stored);
                }
            }

            patients[criteria] = found;
        }

        return patients;
    }

    /// <summary>What the stored records refuse of a message (it names a retired Patient, see <see cref="Retired"/>; it cancels a discharged visit); nothing of its transaction is written.</summary>
    private sealed class RefusedMessageException(HisIssue issue) : Exception(issue.Detail)
    {
        public HisIssue Issue => issue;
    }

    /// <summary>Copies into each conditional update of a Patient what the one stored Patient it matches has and the message does not.</summary>
    private void KeepOtherSources(IEnumerable<Bundle.EntryComponent> entries, Dictionary<string, IReadOnlyList<StoredResource>> patients)
    {
        var all = entries.ToList();
        var cleared = new Dictionary<Patient, HashSet<string>>(ReferenceEqualityComparer.Instance);
        var identifiersOnly = new HashSet<Patient>(ReferenceEqualityComparer.Instance);
        foreach (var patient in all.Select(e => e.Resource).OfType<Patient>())
        {
            IdNumberOutcome.Of(patient)?.Clear();

            // The fields the message deleted with "" (PatientMapping.MarkCleared): noted, and never stored.
            cleared[patient] = patient.Extension.Where(e => e.Url == ExtensionUrls.Cleared).Select(e => (e.Value as Code)?.Value).OfType<string>()
                .ToHashSet(StringComparer.Ordinal);
            patient.Extension.RemoveAll(e => e.Url == ExtensionUrls.Cleared);
            if (patient.Extension.RemoveAll(e => e.Url == ExtensionUrls.IdentifiersOnly) > 0)
            {
                identifiersOnly.Add(patient);
            }
        }

        foreach (var entry in all)
        {
            if (entry is not { Resource: Patient patient, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } }
                || !url.StartsWith("Patient?", StringComparison.Ordinal) || !patients.TryGetValue(url, out var matches) || matches is not [var stored])
            {
                // None: a create. Several: the transaction refuses the ambiguous update (412) and names it.
                continue;
            }

            var current = (Patient)serializers.ParseStored(stored.Json);
            if (IsRetirement(patient))
            {
                // ADT^A40: the retired record keeps only its old MRN; whatever else identified it now identifies the
                // survivor, so a later message naming the person by those identifiers finds one Patient. What else it
                // held (name, birth date, address…) stays, inactive, as the record the retired MRN stood for.
                var survivor = all.Select(e => e.Resource).OfType<Patient>().FirstOrDefault(p => p != patient && p.Active == true
                    && p.Link.Any(l => l.Type == Patient.LinkType.Replaces));
                survivor?.Identifier.AddRange(current.Identifier
                    .Where(i => !patient.Identifier.Any(n => n.System == i.System && n.Value == i.Value))
                    .Where(i => !survivor.Identifier.Any(n => n.System == i.System && n.Value == i.Value)).ToList());
                UnsentElements.Keep(patient, current);
                continue;
            }

            if (identifiersOnly.Contains(patient))
            {
                // A message that does not maintain the person: the stored Patient as it is, plus the identifiers it lacks.
                // Not a second ID number or newborn key: one that differs from the stored one is the message's mistake, and would
                // become a key that links other records to this person.
                var added = patient.Identifier.Where(i => !current.Identifier.Any(n => n.System == i.System && n.Value == i.Value))
                    .Where(i => i.System is not (Systems.ResidentId or Systems.NewbornKey) || current.Identifier.All(n => n.System != i.System)).ToList();
                if (patient.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value is { } sent
                    && current.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId && i.Value != sent)?.Value is { } kept
                    && !current.Identifier.Any(i => i.System == Systems.ResidentId && i.Value == sent))
                {
                    IdNumberOutcome.Of(patient)?.Record(sent, kept, ignored: true);
                }

                current.CopyTo(patient);
                patient.Identifier.AddRange(added);
                continue;
            }

            // township-export.md §2: a resident row replaces the township's earlier version of it whole, so what that version
            // said and this one leaves empty is gone; what another source (the HIS) said stays, as for any message.
            var earlier = patient.Annotations(typeof(ResidentSupplied)).OfType<ResidentSupplied>().FirstOrDefault();
            if (ReferenceEquals(earlier, ResidentSupplied.Unrecorded))
            {
                // Applied before the hub kept what a row filled: over a version the township wrote last, what it has.
                earlier = current.Meta?.Source?.StartsWith(TownshipMapper.SourcePrefix, StringComparison.Ordinal) == true ? ResidentSupplied.Assumed(current) : null;
            }

            var now = earlier is null ? null : ResidentSupplied.Of(patient);
            if (earlier is not null)
            {
                cleared[patient].UnionWith(earlier.LeftEmptyBy(now!));

                // A health card the row's earlier version gave and this one does not (corrected, or dropped) no longer
                // identifies the person: kept, it would join whoever holds it now (README "Linking persons").
                if (earlier.HealthCard is { } card && now!.HealthCard != card)
                {
                    cleared[patient].Add(BirthCertificateMapper.ClearedIdentifier(Systems.HealthCard, card));
                }
            }

            // The hospital that knows the person by the message's MRN: the source that registered its identifiers.
            var sameHospital = patient.Identifier.Any(i => Systems.IsMrn(i.System) && current.Identifier.Any(c => c.System == i.System && c.Value == i.Value));

            // A person has one resident health card: a message of that hospital, maintaining the person with another card,
            // replaces the stored one, as it would the ID number (below). Kept, the old card would join whoever holds it now.
            if (sameHospital && patient.Identifier.FirstOrDefault(i => i.System == Systems.HealthCard)?.Value is { } newCard)
            {
                cleared[patient].UnionWith(current.Identifier.Where(i => i.System == Systems.HealthCard && i.Value is not null && i.Value != newCard)
                    .Select(i => BirthCertificateMapper.ClearedIdentifier(Systems.HealthCard, i.Value!)));
            }

            // A person has one resident ID number. A different one corrects the stored number when it comes from whoever
            // registered it: the hospital that knows the person by the message's MRN, or, for a person no hospital knows,
            // the township row whose earlier version gave it. From anyone else both stay (the sender's mistake shows),
            // rather than one source taking the right number away. Kept beside its correction, an old number would join
            // whoever else has it (rule 1).
            if (patient.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value is { } idNumber)
            {
                var townshipOnly = !current.Identifier.Any(i => Systems.IsMrn(i.System));
                foreach (var other in current.Identifier.Where(i => i.System == Systems.ResidentId && i.Value is not null && i.Value != idNumber))
                {
                    if (sameHospital || (townshipOnly && earlier?.IdNumber == other.Value))
                    {
                        cleared[patient].Add(BirthCertificateMapper.ClearedIdentifier(Systems.ResidentId, other.Value!));
                    }
                    else
                    {
                        IdNumberOutcome.Of(patient)?.Record(idNumber, other.Value!, ignored: false);
                    }
                }
            }

            KeepWhatTheMessageLacks(patient, current, cleared[patient]);
            if (patient.Link.Any(l => l.Type == Patient.LinkType.Replaces))
            {
                // ADT^A40's survivor: the retired MRN leaves it (it held both when an ID number had linked them).
                var retiredIds = all.Select(e => e.Resource).OfType<Patient>().Where(IsRetirement).SelectMany(p => p.Identifier).ToList();
                patient.Identifier.RemoveAll(i => retiredIds.Any(r => r.System == i.System && r.Value == i.Value));

                // A merge sent again names the retired record by its entry: the stored link to that same record goes.
                var retiredStored = all.Where(e => e.Resource is Patient p && IsRetirement(p) && e.Request?.Url is { } u && patients.ContainsKey(u))
                    .SelectMany(e => patients[e.Request!.Url!]).Select(r => $"Patient/{r.Id}").ToHashSet(StringComparer.Ordinal);
                patient.Link.RemoveAll(l => l.Type == Patient.LinkType.Replaces && l.Other?.Reference is { } other && retiredStored.Contains(other));
            }

            if (earlier?.Mobile is { } mobile && now!.Mobile is null)
            {
                patient.Telecom.RemoveAll(t => ResidentSupplied.IsMobile(t) && t.Value == mobile);
            }
        }
    }

    /// <summary>A name's representation: the HIS marks its pinyin repetition ABC; a name without the mark is in characters.</summary>
    private static string NameRepresentation(HumanName name) => name.GetExtensionValue<Code>(ExtensionUrls.NameRepresentation)?.Value ?? "IDE";

    /// <summary>
    /// A message sets what it carries and keeps the rest (his-hl7v2.md §2: an empty field is "not sent"): every
    /// identifier but one it clears (a birth certificate's newborn key that a correction made stale); telecoms of a
    /// system and use, addresses of a use and names of a use or representation the message does not give (the same name
    /// sent again keeps the stored one's parts and use); extensions of a URL it does not give
    /// (ethnicity, registered poor, …); each single element it leaves empty (death, marital status, managing
    /// organisation, …); and the time of birth on a birth date it gives unchanged.
    /// </summary>
    /// <param name="cleared">What the message deleted with <c>""</c>: element names and extension URLs not to keep; and
    /// identifiers not to keep (<see cref="BirthCertificateMapper.ClearedIdentifier"/>).</param>
    private static void KeepWhatTheMessageLacks(Patient patient, Patient current, HashSet<string> cleared)
    {
        patient.Identifier.AddRange(current.Identifier.Where(i => !patient.Identifier.Any(n => n.System == i.System && n.Value == i.Value)
            && !cleared.Contains(BirthCertificateMapper.ClearedIdentifier(i.System ?? "", i.Value ?? ""))).ToList());
        if (!cleared.Contains("telecom"))
        {
            patient.Telecom.AddRange(current.Telecom.Where(t => !patient.Telecom.Any(n => n.System == t.System && n.Use == t.Use)).ToList());
        }

        if (!cleared.Contains("address"))
        {
            patient.Address.AddRange(current.Address.Where(a => !patient.Address.Any(n => n.Use == a.Use && n.Type == a.Type)).ToList());
        }

        // A stored name of another use or representation (the HIS's pinyin, ExtensionUrls.NameRepresentation) stays; the
        // same name sent again (a certificate's text alone) keeps the parts and use the stored one has.
        foreach (var had in current.Name.ToList())
        {
            if (patient.Name.FirstOrDefault(n => n.Text is { } text && text == had.Text) is { } same)
            {
                same.Use ??= had.Use;
                same.Family ??= had.Family;
                if (!same.Given.Any())
                {
                    same.Given = had.Given.ToList();
                }
            }
            else if (!patient.Name.Any(n => n.Use == had.Use && NameRepresentation(n) == NameRepresentation(had)))
            {
                patient.Name.Add(had);
            }
        }
        patient.Link.AddRange(current.Link.Where(l => !patient.Link.Any(n => n.Other?.Reference == l.Other?.Reference)).ToList());
        patient.Extension.AddRange(current.Extension.Where(e => !cleared.Contains(e.Url ?? "") && !patient.Extension.Any(n => n.Url == e.Url)).ToList());
        patient.ActiveElement ??= current.ActiveElement;
        patient.Gender ??= current.Gender;
        if (patient.BirthDateElement is null)
        {
            patient.BirthDateElement = current.BirthDateElement;
        }
        else if (patient.BirthDateElement.Extension.Count == 0 && current.BirthDateElement is { } stored && stored.Value == patient.BirthDateElement.Value)
        {
            // The same date keeps what another source said of it: a birth certificate's time of birth (patient-birthTime).
            patient.BirthDateElement.Extension.AddRange(stored.Extension);
        }

        patient.Deceased ??= cleared.Contains("deceased") ? null : current.Deceased;
        patient.MaritalStatus ??= cleared.Contains("maritalStatus") ? null : current.MaritalStatus;
        patient.MultipleBirth ??= cleared.Contains("multipleBirth") ? null : current.MultipleBirth;
        patient.ManagingOrganization ??= current.ManagingOrganization;
        if (patient.Communication.Count == 0)
        {
            patient.Communication.AddRange(current.Communication);
        }

        if (patient.GeneralPractitioner.Count == 0 && !cleared.Contains("generalPractitioner"))
        {
            patient.GeneralPractitioner.AddRange(current.GeneralPractitioner);
        }

        if (patient.Contact.Count == 0)
        {
            patient.Contact.AddRange(current.Contact);
        }
    }

    /// <summary>The search by which an entry's Patient is found: its conditional create's or conditional update's criteria.</summary>
    private static string? PatientCriteria(Bundle.EntryComponent entry) =>
        entry.Request?.Method == Bundle.HTTPVerb.POST ? entry.Request.IfNoneExist
            : entry.Request?.Url is { } url && url.StartsWith("Patient?", StringComparison.Ordinal) ? url : null;

    private static bool IsRetirement(Patient patient) =>
        patient.Active == false && patient.Link.Any(l => l.Type == Patient.LinkType.ReplacedBy);

    /// <summary>
    /// After an A40 the retired MRN names no one (his-hl7v2.md §5): a message whose patient resolves to a retired
    /// record (inactive, replaced-by) is AE <c>UNKNOWN_REFERENCE</c>.
    /// </summary>
    private HisIssue? Retired(IEnumerable<Bundle.EntryComponent> entries, Dictionary<string, IReadOnlyList<StoredResource>> patients)
    {
        var named = entries.Where(e => e.Resource is Patient patient && !IsRetirement(patient)).Select(PatientCriteria).OfType<string>();
        foreach (var criteria in named)
        {
            foreach (var stored in patients.GetValueOrDefault(criteria, []))
            {
                if (IsRetirement((Patient)serializers.ParseStored(stored.Json)))
                {
                    return new HisIssue(RejectionReason.UnknownReference, new Hl7Location("PID", 1, 3),
                        $"患者 Patient/{stored.Id} 已合并到另一患者 (ADT^A40)，其患者ID不再使用", IssueSeverity.Error);
                }
            }
        }

        return null;
    }

    private async Task<HisIssue?> CheckExistsAsync(MustExist precondition, CancellationToken ct) =>
        await ExistsAsync(precondition.Search, ct)
            ? null
            : new HisIssue(RejectionReason.UnknownReference, precondition.Location, precondition.Detail, IssueSeverity.Error);

    private async Task<bool> ExistsAsync(string search, CancellationToken ct)
    {
        var type = search.Split('?', 2)[0];
        var criteria = parser.ParseCriteria(type, SearchParser.SplitQueryString(type, search));
        return (await store.FindAsync(type, criteria, null, 1, ct)).Count > 0;
    }

    /// <summary>
    /// Whether a stored dose is reported by a source other than the hospital whose vaccination identifiers are
    /// <paramref name="own"/>: the township (its <c>vacc_id</c>), another hospital, or the birth certificate.
    /// </summary>
    private static bool ReportedByOthers(Immunization dose, string own) =>
        dose.Identifier.Any(i => i.System is { } system && system != own && system != Systems.VaccineTraceCode
            && (system is TownshipMapper.VaccinationSystem or Systems.CertificateDose || system.StartsWith(Systems.Vaccination(""), StringComparison.Ordinal)))
        || dose.ReportOrigin?.Coding.Any(c => c.Code == "birth-certificate") == true;

    /// <summary>
    /// The message mapped again with what the hub holds that decides its records' ids (<see cref="StoredKeys"/>), read
    /// under its person locks; the mapping as it is when that changes nothing. Only messages with a newborn key or with
    /// doses read the store.
    /// </summary>
    private async Task<HisOutcome> WithStoredKeysAsync(HisOutcome mapped, byte[] raw, CancellationToken ct)
    {
        if (mapped is not HisAccepted accepted)
        {
            return mapped;
        }

        var newbornKeys = accepted.Transaction.Entry.Select(e => e.Resource).OfType<Patient>().SelectMany(p => p.Identifier)
            .Where(i => i.System == Systems.NewbornKey).Select(i => i.Value).OfType<string>().ToList();
        var recordKeys = newbornKeys.Count == 0 ? [] : await NewbornRecordKeysAsync(newbornKeys, ct);

        // The doses are keyed by the stored Patient's person key, as the other sources key them (the message may name the
        // person by MRN alone, or by an ID number where the hub knows a child by its newborn key).
        var asMapped = accepted;
        string? personKey = null;
        string? patientId = null;
        if (accepted.DosePatient is { System: { } system, Value: { } mrn })
        {
            if ((await StoredByIdentifierAsync<Patient>(system, [mrn], p => p.Identifier, ct)).TryGetValue(mrn, out var stored))
            {
                personKey = PersonKey(stored.Resource);
                patientId = stored.Id;
            }
        }

        var keys = StoredKeys.None;
        if (recordKeys.Count > 0 || personKey is not null)
        {
            keys = new StoredKeys(recordKeys, personKey, new Dictionary<string, string>());
            mapped = HisMapper.Map(raw, keys);
            if (mapped is not HisAccepted again)
            {
                return mapped;
            }

            accepted = again;
        }

        // A dose the hub holds under another id keeps it: the message's own key, or the MRN key it was written under
        // before the hub knew a person key.
        if (accepted.Doses.Count > 0 && accepted.Doses.Count == asMapped.Doses.Count)
        {
            var candidates = accepted.Doses.Select((d, i) => new[] { d.Id, asMapped.Doses[i].Id, d.MrnId }.Distinct(StringComparer.Ordinal).ToList()).ToList();
            var doses = (await store.ReadManyAsync("Immunization", [.. candidates.SelectMany(c => c).Distinct(StringComparer.Ordinal)], ct))
                .Where(r => !r.IsDeleted).ToDictionary(r => r.Id, StringComparer.Ordinal);
            var kept = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var ids in candidates.Where(c => !doses.ContainsKey(c[0])))
            {
                if (ids.FirstOrDefault(doses.ContainsKey) is { } other)
                {
                    kept.TryAdd(ids[0], other);
                }
            }

            // One Immunization per person, vaccine and day (his-hl7v2.md §5 VXU), whatever id it was written under: a dose
            // an A40 moved here from a retired MRN keeps that MRN's id.
            foreach (var unfound in accepted.Doses.Where((d, i) => patientId is not null && !candidates[i].Any(doses.ContainsKey)).ToList())
            {
                // The day is the interface's (+08:00): a day around it is searched, and the occurrence's own date compared.
                var day = unfound.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
                var criteria = parser.ParseCriteria("Immunization", [new("patient", $"Patient/{patientId}"), new("vaccine-code", $"{Systems.Vaccine}|{unfound.Vaccine}"),
                    new("date", $"ge{unfound.Date.AddDays(-1):yyyy-MM-dd}"), new("date", $"le{unfound.Date.AddDays(1):yyyy-MM-dd}")]);
                var matches = await store.FindAsync("Immunization", criteria, null, 10, ct);
                if ((await store.ReadManyAsync("Immunization", [.. matches.Select(m => m.Id)], ct)).Where(r => !r.IsDeleted)
                        .FirstOrDefault(r => serializers.ParseStored(r.Json) is Immunization { Occurrence: FhirDateTime { Value: { } at } } && at.StartsWith(day, StringComparison.Ordinal)) is { } held
                    && kept.TryAdd(unfound.Id, held.Id))
                {
                    doses[held.Id] = held;
                }
            }

            // A deletion (RXA-21 D) of a dose that other sources report too takes back the hospital's report only.
            var shared = new Dictionary<string, bool>(StringComparer.Ordinal);
            var own = Systems.Vaccination(accepted.Acknowledged.SendingFacility);
            foreach (var id in accepted.Transaction.Entry.Select(e => e.Request).OfType<Bundle.RequestComponent>()
                .Where(r => r.Method == Bundle.HTTPVerb.DELETE).Select(r => r.Url).OfType<string>()
                .Where(url => url.StartsWith("Immunization/", StringComparison.Ordinal)).Select(url => url["Immunization/".Length..]).Select(id => kept.GetValueOrDefault(id, id)))
            {
                if (doses.TryGetValue(id, out var stored) && serializers.ParseStored(stored.Json) is Immunization dose && ReportedByOthers(dose, own))
                {
                    shared[id] = dose.Identifier.Any(i => i.System == own);
                }
            }

            if (kept.Count > 0 || shared.Count > 0)
            {
                keys = new StoredKeys(recordKeys, personKey, kept, shared);
                mapped = HisMapper.Map(raw, keys);
            }
        }

        // A cancel of admission (A11) takes the visit's diagnoses with it: the Conditions the stored visit lists; a cancel
        // of discharge (A13) its final diagnoses.
        if (mapped is HisAccepted { Transaction: var transaction } && transaction.Entry.FirstOrDefault(e =>
                e is { Resource: Encounter written, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } } && url.StartsWith("Encounter?", StringComparison.Ordinal)
                && (written.Status == Encounter.EncounterStatus.EnteredInError || written.Annotations(typeof(VisitEvent)).OfType<VisitEvent>().Contains(VisitEvent.CancelDischarge))) is
            { Request.Url: { } visit, Resource: Encounter cancelling })
        {
            var matches = await store.FindAsync("Encounter", parser.ParseCriteria("Encounter", SearchParser.SplitQueryString("Encounter", visit)), null, 2, ct);
            if (matches is [var match] && await store.ReadAsync("Encounter", match.Id, ct) is { IsDeleted: false } stored
                && serializers.ParseStored(stored.Json) is Encounter { Status: not Encounter.EncounterStatus.EnteredInError } current)
            {
                var diagnoses = current.Diagnosis.Where(d => cancelling.Status == Encounter.EncounterStatus.EnteredInError || IsFinalDiagnosis(d))
                    .Select(d => d.Condition?.Reference).OfType<string>()
                    .Where(r => r.StartsWith("Condition/", StringComparison.Ordinal)).Select(r => r["Condition/".Length..]).Distinct(StringComparer.Ordinal).ToList();
                if (diagnoses.Count > 0)
                {
                    mapped = HisMapper.Map(raw, keys with { VisitDiagnoses = diagnoses });
                }
            }
        }

        return mapped;
    }

    /// <summary>A diagnosis the discharge recorded (DG1-6 F, 出院诊断), which an A13 takes back with the discharge.</summary>
    private static bool IsFinalDiagnosis(Encounter.DiagnosisComponent diagnosis) =>
        diagnosis.Use?.Coding.Any(c => c.System == Systems.Local("diagnosis-type") && c.Code == "F") == true;

    /// <summary>
    /// The record keys of the stored children these newborn keys name, when a birth certificate's correction gave them
    /// another key than their first (<see cref="ExtensionUrls.NewbornRecordKey"/>), by newborn key.
    /// </summary>
    private async Task<Dictionary<string, string>> NewbornRecordKeysAsync(IEnumerable<string> keys, CancellationToken ct) =>
        (await StoredByIdentifierAsync<Patient>(Systems.NewbornKey, keys, p => p.Identifier, ct))
            .Select(p => (Key: p.Key, Record: p.Value.Resource.GetExtensionValue<FhirString>(ExtensionUrls.NewbornRecordKey)?.Value))
            .Where(p => p.Record is not null && p.Record != p.Key)
            .ToDictionary(p => p.Key, p => p.Record!, StringComparer.Ordinal);

    /// <summary>
    /// The checks that only warn (<see cref="ShouldExist"/>), made before the message's transaction: their warnings
    /// join the mapper's, in the ACK and in the stored outcome. Nothing is refused for them, so they need no lock.
    /// </summary>
    private async Task<HisOutcome> WithStoreWarningsAsync(HisOutcome mapped, CancellationToken ct)
    {
        if (mapped is not HisAccepted accepted || !accepted.Preconditions.Any(p => p is ShouldExist))
        {
            return mapped;
        }

        var warnings = accepted.Warnings.ToList();
        foreach (var check in accepted.Preconditions.OfType<ShouldExist>())
        {
            if (!await ExistsAsync(check.Search, ct))
            {
                warnings.Add(HisIssue.Warning(check.Location, check.Detail));
            }
        }

        return new HisAccepted(accepted.Acknowledged, accepted.Transaction, accepted.Provenance,
            accepted.Preconditions.Where(p => p is not ShouldExist).ToList(), accepted.Merge, accepted.ContentHash, warnings)
        {
            Doses = accepted.Doses,
            DosePatient = accepted.DosePatient,
        };
    }

    /// <summary>
    /// The referral rules of his-hl7v2.md §6 as the mapper stated them: the stored Task's status must be one the
    /// new one may follow. When the message keeps the status (an I13 <c>P</c>, a repeated I12), the Task written
    /// carries the stored status.
    /// </summary>
    private async Task<HisIssue?> CheckTransitionAsync(TaskTransition transition, Bundle bundle, CancellationToken ct)
    {
        var stored = await store.ReadAsync("Task", transition.TaskId, ct);
        if (stored is null || stored.IsDeleted)
        {
            return transition.MayBeAbsent
                ? null
                : new HisIssue(RejectionReason.UnknownReference, transition.Location with { Field = 6 }, $"转诊单 Task/{transition.TaskId} 不存在", IssueSeverity.Error);
        }

        var current = (Hl7.Fhir.Model.Task)serializers.ParseStored(stored.Json);
        var status = current.Status is { } s ? Hl7.Fhir.Utility.EnumUtility.GetLiteral(s) ?? "" : "";

        // Each REF message is one moment of the referral: what earlier ones put in Task.output (the treatment
        // Encounter reported on arrival) stays, so an I13 C without a PV1 still points at it (his-hl7v2.md §6).
        foreach (var task in bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().Where(t => t.Id == transition.TaskId).ToList())
        {
            task.Output.AddRange(current.Output.Where(o => !task.Output.Any(n => n.IsExactly(o))).Select(o => (Hl7.Fhir.Model.Task.OutputComponent)o.DeepCopy()).ToList());

            // A completion naming no visit brings its notice as the summary (ReferralMapping); when an earlier message
            // reported the treatment Encounter, that Encounter is the summary and the notice is not written.
            if (task.Output.Any(o => o.Value is ResourceReference { Reference: { } r } && r.StartsWith("Encounter/", StringComparison.Ordinal)))
            {
                foreach (var notice in task.Output.Where(o => o.Type?.Coding.Any(c => c.Code == "completion-notice") == true).ToList())
                {
                    task.Output.Remove(notice);
                    var reference = (notice.Value as ResourceReference)?.Reference;
                    bundle.Entry.RemoveAll(e => e.Request?.Url is { } url && url == reference);
                    foreach (var provenance in bundle.Entry.Select(e => e.Resource).OfType<Provenance>())
                    {
                        provenance.Target.RemoveAll(t => t.Reference == reference);
                    }
                }
            }
        }

        // A referral's patient, parties and direction never change once it exists (README, referrals): a later message
        // naming another patient record (the receiver's own MRN) or other institutions changes its state or content only.
        foreach (var task in bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().Where(t => t.Id == transition.TaskId))
        {
            (task.For, task.Requester, task.Owner) = (current.For, current.Requester, current.Owner);
        }

        if (bundle.Entry.Select(e => e.Resource).OfType<ServiceRequest>().FirstOrDefault(r => r.Id == transition.TaskId) is { } request
            && await store.ReadAsync("ServiceRequest", transition.TaskId, ct) is { IsDeleted: false } storedRequest)
        {
            var kept = (ServiceRequest)serializers.ParseStored(storedRequest.Json);
            (request.Subject, request.Requester, request.Performer, request.Category) = (kept.Subject, kept.Requester, kept.Performer, kept.Category);
        }

        // An I13 P (or an I12 resent for a stored referral) changes content, not the state, and only while the referral is
        // still to be received or carried out (his-hl7v2.md §6): requested, received or accepted.
        var keeps = transition.KeepsStatus ? transition.AllowedFrom.Contains(status, StringComparer.Ordinal) : transition.MayBeAbsent && status == transition.To;
        if (transition.KeepsStatus && !keeps)
        {
            return new HisIssue(RejectionReason.InvalidTransition, transition.Location, $"{transition.Detail} (当前状态 {status})", IssueSeverity.Error);
        }

        if (keeps)
        {
            foreach (var task in bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().Where(t => t.Id == transition.TaskId))
            {
                // The local status (RF1-1) and its reason go with the state they describe.
                task.Status = current.Status;
                task.BusinessStatus = current.BusinessStatus;
                task.StatusReason = current.StatusReason;
            }

            return null;
        }

        return transition.AllowedFrom.Contains(status, StringComparer.Ordinal)
            ? null
            : new HisIssue(RejectionReason.InvalidTransition, transition.Location, $"{transition.Detail} (当前状态 {status})", IssueSeverity.Error);
    }

    /// <summary>
    /// Applies every valid row in the order the reader returns them; a row the store refuses is reported, the others
    /// are kept. A row whose <c>updated_at</c> is not later than the one applied before for the same (table, key) is
    /// skipped (township-export.md §2 "Update"): older is stale (a warning), equal changes nothing. The batch is a
    /// dead letter only when it was refused whole or the store refused a valid row, the failures a replay can mend;
    /// rows refused for their content are reported and wait for the source to correct them.
    /// </summary>
    private async Task<(OperationOutcome Outcome, bool Failed)> ApplyTownshipAsync(byte[] zip, CancellationToken ct)
    {
        TownshipBatchResult batch;
        try
        {
            batch = TownshipBatchReader.Read(TownshipBatchReader.FromZip(zip));
        }
        catch (InvalidDataException e)
        {
            var unreadable = new OperationOutcome();
            unreadable.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.Malformed.Code(), $"批次不是可读的 zip 文件: {e.Message}", null));
            return (unreadable, true);
        }

        var outcome = new OperationOutcome();
        foreach (var issue in batch.Issues)
        {
            outcome.Issue.Add(Issue(Of(issue.Severity), issue.Code, issue.ToString(), Where(issue.File, issue.Row, issue.Column)));
        }

        if (batch.Manifest is { } manifest)
        {
            await CheckSequenceAsync(manifest, outcome, ct);
        }

        // Up to three chunks are applied at once, in transactions of their own, so the database and the hub work side by
        // side. A row that writes what a chunk in flight writes, or names a person that one does, waits for the chunks
        // in flight to finish, so rows about one resource or one person still apply in file order; so does a new file.
        var tally = new BatchTally(batch);
        var chunk = new List<(TownshipRow Row, Bundle Transaction)>();
        var requests = new HashSet<string>(StringComparer.Ordinal);
        var persons = new HashSet<string>(StringComparer.Ordinal);
        var inFlight = new Queue<(Task<(int Applied, int Failed)> Task, string File, int Rows, OperationOutcome Issues, HashSet<string> Requests, HashSet<string> Persons)>();
        async Task CompleteOldestAsync()
        {
            var (task, file, rows, issues, _, _) = inFlight.Dequeue();
            var (ok, failed) = await task;
            // A chunk holds the rows of one file; those neither applied nor failed were refused by the store.
            tally[file].Applied += ok;
            tally[file].NotStored += failed;
            tally[file].Refused += rows - ok - failed;
            outcome.Issue.AddRange(issues.Issue);
        }

        async Task LaunchAsync()
        {
            if (chunk.Count == 0)
            {
                return;
            }

            if (inFlight.Count == 3)
            {
                await CompleteOldestAsync();
            }

            var issues = new OperationOutcome();
            inFlight.Enqueue((ApplyRowsAsync(batch.Manifest!, chunk.ToList(), issues, ct), chunk[0].Row.File, chunk.Count, issues, [.. requests], [.. persons]));
            chunk.Clear();
            requests.Clear();
            persons.Clear();
        }

        async Task DrainAsync()
        {
            while (inFlight.Count > 0)
            {
                await CompleteOldestAsync();
            }
        }

        // A batch never repeats a (table, key), so what was applied before the batch is read for all rows at once. Each
        // row is mapped only when it is scheduled, while the chunks before it are being applied, and its Bundle is
        // dropped once its chunk is done.
        var rowsToApply = batch.Rows.Where(r => r.Mapping is not null).ToList();
        var appliedAt = await AppliedAtAsync(rowsToApply, ct);
        // What the hub holds for rows about residents of earlier batches: the residents a batch deletes (a deletion of one
        // it never had is a warning, not a failed chunk) and those whose doses it reports, with the doses written before.
        // The stored Immunization of every dose row applied before (by vacc_id): an update that changes the date keeps the
        // dose's id. (A deletion reads it again when its chunk is applied: RefreshDoseRetractionsAsync.)
        var earlierDoses = rowsToApply.Where(r => r is { Table: "immunizations", Deleted: false } && appliedAt.ContainsKey(RowState(r))).ToList();
        var storedResidents = (await StoredByIdentifierAsync<Patient>(Systems.HealthRecord, rowsToApply.Where(r => r.EarliestEvent is not null)
            .SelectMany(r => r.ReferencedResidents).Concat(rowsToApply.Where(r => r is { Table: "residents", Deleted: true }).Select(r => r.Key))
            .Select(TextNormalizer.Number), p => p.Identifier, ct)).ToDictionary(p => p.Key, p => p.Value.Resource, StringComparer.Ordinal);
        var storedDoses = await StoredByIdentifierAsync<Immunization>(TownshipMapper.VaccinationSystem, earlierDoses.Select(r => r.Key), i => i.Identifier, ct);
        var recordKeys = await NewbornRecordKeysAsync(rowsToApply.Select(r => r.NewbornKey).OfType<string>(), ct);
        // Children of the batch known by their birth certificate alone: the stored child's person key (none in most batches).
        var certified = (await StoredByIdentifierAsync<Patient>(Systems.BirthCertificate, rowsToApply.Select(r => r.BirthCertificateNo).OfType<string>(),
            p => p.Identifier, ct)).ToDictionary(p => p.Key, p => PersonKey(p.Value.Resource), StringComparer.Ordinal);
        var storedRegistrations = await StoredByIdentifierAsync<EpisodeOfCare>(TownshipMapper.MaternalRegistrationSystem,
            rowsToApply.Select(r => r.AntenatalVisit?.RegId).OfType<string>(), e => e.Identifier, ct);
        (string Table, string File)? file = null;
        try
        {
            foreach (var row in rowsToApply)
            {
                if (appliedAt.TryGetValue(RowState(row), out var earlier) && earlier.UpdatedAt >= row.UpdatedAt)
                {
                    if (earlier.UpdatedAt > row.UpdatedAt)
                    {
                        tally[row.File].Stale++;
                        outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "STALE",
                            $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: updated_at {row.UpdatedAt:yyyy-MM-dd HH:mm:ss} is older than the {earlier.UpdatedAt:yyyy-MM-dd HH:mm:ss} already applied; ignored",
                            Where(row.File, row.Row, "updated_at")));
                    }
                    else if (earlier.ContentHash is { Length: > 0 } had && row.ContentHash.Length > 0 && had != row.ContentHash)
                    {
                        // §2 "Update": a later updated_at replaces; an equal one with the same content changes nothing. Equal
                        // with other content means the source changed the row without advancing updated_at.
                        tally[row.File].Stale++;
                        outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "STALE",
                            $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: same updated_at {row.UpdatedAt:yyyy-MM-dd HH:mm:ss} as the version applied, but other content; ignored (a changed row needs a later updated_at)",
                            Where(row.File, row.Row, "updated_at")));
                    }
                    else
                    {
                        tally[row.File].Unchanged++;
                    }

                    continue;
                }

                if (row is { Table: "residents", Deleted: true } && !storedResidents.ContainsKey(TextNormalizer.Number(row.Key)))
                {
                    // Nothing to retract, but the deletion is kept as the row's latest version, so a late batch with an
                    // older version of the resident cannot bring it back (§1, §2).
                    await state.WriteStateAsync(RowState(row), RowStateValue(row, null), ct);
                    WarnDeletedNothing([row], outcome);
                    tally[row.File].Applied++;
                    continue;
                }

                // §2 "Impossible dates": an event before the birth of a resident of an earlier batch.
                if (row is { EarliestEvent: { } earliest, ReferencedResidents: [var resident] }
                    && storedResidents.GetValueOrDefault(TextNormalizer.Number(resident))?.BirthDate is { Length: >= 10 } born
                    && DateOnly.TryParseExact(born[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var birth) && earliest.Date < birth)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.ImpossibleDate.Code(),
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: {earliest.Column} {earliest.Date:yyyy-MM-dd} 早于出生日期 {born[..10]}",
                        Where(row.File, row.Row, earliest.Column)));
                    tally[row.File].Refused++;
                    continue;
                }

                // §3.6: a pregnancy registered for a resident of an earlier batch recorded as a man is applied, with a warning.
                if (row is { Table: "maternal_registrations", Deleted: false, ReferencedResidents: [var woman] }
                    && storedResidents.GetValueOrDefault(TextNormalizer.Number(woman))?.Gender == AdministrativeGender.Male)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: {TownshipBatchReader.MaleRegistration(woman)}",
                        Where(row.File, row.Row, "record_no")));
                }

                // §2 "Impossible dates": an antenatal visit before its registration of an earlier batch.
                if (row.AntenatalVisit is { } visit && storedRegistrations.GetValueOrDefault(visit.RegId).Resource?.Period?.Start is { Length: >= 10 } registered
                    && DateOnly.TryParseExact(registered[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var registeredOn)
                    && visit.Date < registeredOn)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.ImpossibleDate.Code(),
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: visit_date {visit.Date:yyyy-MM-dd} 早于建册日期 {registered[..10]}",
                        Where(row.File, row.Row, "visit_date")));
                    tally[row.File].Refused++;
                    continue;
                }

                Bundle? transaction;
                try
                {
                    var replaces = appliedAt.TryGetValue(RowState(row), out var before);
                    transaction = row.Table == "immunizations"
                        ? row.Map(storedDoses.TryGetValue(row.Key, out var dose) || row.ReferencedResidents.Count > 0 || row.NewbornKey is not null || row.BirthCertificateNo is not null
                            ? new StoredRow(dose.Id, row.ReferencedResidents is [var recordNo] ? PersonKey(storedResidents.GetValueOrDefault(TextNormalizer.Number(recordNo)))
                                    : row.BirthCertificateNo is { } certificate ? certified.GetValueOrDefault(certificate) : null,
                                NewbornRecordKey: row.NewbornKey is { } newborn ? recordKeys.GetValueOrDefault(newborn) : null)
                            : null)
                        : row.Map(replaces ? new StoredRow(Replaces: true) : null);
                    if ((ResidentSupplied.Parse(before.Supplied) ?? (replaces && row.Table == "residents" ? ResidentSupplied.Unrecorded : null)) is { } supplied)
                    {
                        // What the resident row's earlier version filled, for KeepOtherSources to remove what this one empties.
                        transaction?.Entry.Select(e => e.Resource).OfType<Patient>().FirstOrDefault()?.AddAnnotation(supplied);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A mapping fault is the hub's: the row is reported and the batch kept as a dead letter for a replay
                    // once the mapping is fixed (the rows applied meanwhile are then skipped as unchanged).
                    tally[row.File].NotStored++;
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.Malformed.Code(),
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: the row could not be mapped: {e.Message}", Where(row.File, row.Row, null)));
                    continue;
                }

                if (transaction is null)
                {
                    continue;
                }

                var writes = transaction.Entry.Where(e => e.Request?.Method != Bundle.HTTPVerb.POST).Select(e => $"{e.Request?.Method} {e.Request?.Url}").ToList();
                var rowPersons = PersonKeys(transaction);
                if (file != (row.Table, row.File) || writes.Any(requests.Contains) || persons.Overlaps(rowPersons)
                    || inFlight.Any(f => writes.Any(f.Requests.Contains) || f.Persons.Overlaps(rowPersons)))
                {
                    // Everything before this row is applied before it.
                    await LaunchAsync();
                    await DrainAsync();
                    file = (row.Table, row.File);
                }

                // Rows of one table that write different resources share a transaction.
                if (chunk.Count == RowsPerTransaction)
                {
                    await LaunchAsync();
                }

                chunk.Add((row, transaction));
                requests.UnionWith(writes);
                persons.UnionWith(rowPersons);
            }

            await LaunchAsync();
            await DrainAsync();
        }
        finally
        {
            // A failure (the hub stopping) leaves no chunk running behind it.
            foreach (var (task, _, _, _, _, _) in inFlight)
            {
                await task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        // Counted against every data row the manifest lists, so the refused ones show in the summary too; then a line
        // per file. The issues after them name each refused and stale row. A batch refused whole (no readable manifest)
        // has only its reason.
        outcome.Issue.InsertRange(0, batch.BatchRejected ? [] : [
            Issue(OperationOutcome.IssueSeverity.Information, "APPLIED", tally.Summary(batch), null),
            .. tally.Files(batch).Select(f => Issue(OperationOutcome.IssueSeverity.Information, "FILE", f.Line, f.File)),
        ]);
        return (outcome, batch.BatchRejected || tally.NotStored > 0);
    }

    /// <summary>Township rows applied per transaction (see <see cref="ApplyRowsAsync"/>).</summary>
    private const int RowsPerTransaction = 100;

    /// <summary>
    /// Applies a chunk of rows as one transaction, with one Provenance per institution of its rows
    /// (<see cref="TownshipMapper.Provenance"/>) and each row's <c>updated_at</c> (<see cref="RowState"/>); when it
    /// fails, row by row, so one refused row costs only itself and is reported alone (Failed counts the store's own
    /// failures only, which make the batch a dead letter). Entries that several rows share
    /// (the same conditional create) are sent once.
    /// </summary>
    private async Task<(int Applied, int Failed)> ApplyRowsAsync(TownshipManifest manifest, List<(TownshipRow Row, Bundle Transaction)> rows,
        OperationOutcome outcome, CancellationToken ct)
    {
        if (rows.Count > 1)
        {
            try
            {
                WarnDeletedNothing(await ApplyTogetherAsync(manifest, rows, ct), outcome);
                WarnIdNumbers(rows, outcome);
                return (rows.Count, 0);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Nothing of the chunk was written: find the row at fault by applying them one at a time.
            }
        }

        var applied = 0;
        var failed = 0;
        foreach (var row in rows)
        {
            try
            {
                WarnDeletedNothing(await LinkingSamePersonAsync(row.Transaction, () => ApplyTogetherAsync(manifest, [row], ct), ct), outcome);
                WarnIdNumbers([row], outcome);
                applied++;
            }
            catch (FhirException e) when (row.Row.Deleted && e.Status == System.Net.HttpStatusCode.NotFound)
            {
                // A deleted resident the hub never had: nothing to retract, a warning (township-export.md §2).
                WarnDeletedNothing([row.Row], outcome);
                applied++;
            }
            catch (FhirException e) when ((int)e.Status is >= 400 and < 500 and not 409)
            {
                // The hub refused the row (a resident it does not know, one that several records match): the row is
                // rejected alone and the rest of the batch stands (township-export.md §2). A resident it does not know
                // is named by the row's record_no, as the reader names one deleted earlier in the same batch.
                var unknownResident = Refusal(e) == RejectionReason.UnknownReference && row.Row.ReferencedResidents is [var recordNo]
                    && Describe(e).Contains("Patient?", StringComparison.Ordinal) ? recordNo : null;
                var unknownRegistration = unknownResident is null && Refusal(e) == RejectionReason.UnknownReference && row.Row.RegId is { Length: > 0 } regId
                    && Describe(e).Contains("EpisodeOfCare?", StringComparison.Ordinal) ? regId : null;
                outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, Refusal(e).Code(),
                    $"{row.Row.File} row {row.Row.Row} (line {row.Row.Line}) {row.Row.Key}: " + (unknownResident is not null
                        ? $"record_no {unknownResident} 的居民档案不在平台中（从未上报，或已在之前的批次中删除）"
                        : unknownRegistration is not null ? $"reg_id {unknownRegistration} 的建册记录不在平台中（从未上报，或已在之前的批次中删除）" : Describe(e)),
                    Where(row.Row.File, row.Row.Row, unknownResident is not null ? "record_no" : unknownRegistration is not null ? "reg_id" : null)));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The hub's own failure (the store): reported, and the batch kept as a dead letter for a replay.
                failed++;
                outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.Malformed.Code(),
                    $"{row.Row.File} row {row.Row.Row} (line {row.Row.Line}) {row.Row.Key}: not stored, the batch can be replayed: {Describe(e)}",
                    Where(row.Row.File, row.Row.Row, null)));
            }
        }

        return (applied, failed);
    }

    /// <summary>
    /// Why the store refused a message, a township row or a certificate: identifiers that belong to several stored persons
    /// (an ID number of one, a health card of another) are <c>DUPLICATE_KEY</c>, for the source to resolve; anything else
    /// it refers to and the hub lacks is <c>UNKNOWN_REFERENCE</c>.
    /// </summary>
    private static RejectionReason Refusal(FhirException e) =>
        e.Status == System.Net.HttpStatusCode.PreconditionFailed && Describe(e.Outcome).Contains("Patient?", StringComparison.Ordinal)
            ? RejectionReason.DuplicateKey
            : RejectionReason.UnknownReference;

    private static void WarnIdNumbers(IEnumerable<(TownshipRow Row, Bundle Transaction)> rows, OperationOutcome outcome)
    {
        foreach (var (row, transaction) in rows)
        {
            foreach (var disagreement in IdNumberOutcome.In(transaction))
            {
                outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                    $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: {disagreement.Describe()}", Where(row.File, row.Row, "id_no")));
            }
        }
    }

    private static void WarnDeletedNothing(IEnumerable<TownshipRow> rows, OperationOutcome outcome)
    {
        foreach (var row in rows)
        {
            outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: deleted, but the hub holds nothing of it", Where(row.File, row.Row, null)));
        }
    }

    /// <summary>Applies the rows in one transaction; the deleted rows whose deletion found nothing to delete.</summary>
    private async Task<List<TownshipRow>> ApplyTogetherAsync(TownshipManifest manifest, IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await ApplyTogetherOnceAsync(manifest, await UnlinkRetractedRegistrationsAsync(await RefreshDoseRetractionsAsync(rows, ct), ct), ct);
            }
            catch (FhirException e) when (e.Status == System.Net.HttpStatusCode.PreconditionFailed && Describe(e.Outcome).Contains("If-Match", StringComparison.Ordinal))
            {
                // A dose a deleted row retracts changed after it was read (another source reported it meanwhile): read it
                // again. Changed every time: a conflict of the hub's, so the batch stays a dead letter to replay.
                if (attempt == 3)
                {
                    throw new WriteConflictException($"A dose a deleted row retracts kept changing while the row was applied: {Describe(e)}");
                }
            }
        }
    }

    private async Task<List<TownshipRow>> ApplyTogetherOnceAsync(TownshipManifest manifest, IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows,
        CancellationToken ct)
    {
        var combined = new Bundle { Type = Bundle.BundleType.Transaction };
        var fullUrls = new HashSet<string>(StringComparer.Ordinal);
        combined.Entry.AddRange(rows.SelectMany(r => r.Transaction.Entry).Where(e => e.FullUrl is null || fullUrls.Add(e.FullUrl)));
        foreach (var institution in rows.GroupBy(r => r.Row.Institution, StringComparer.Ordinal))
        {
            if (TownshipMapper.Provenance(manifest, institution.Key, [.. institution]) is { } provenance)
            {
                combined.Entry.Add(provenance);
            }
        }

        List<KeyValuePair<string, string>> states = [.. rows.Select(r => KeyValuePair.Create(RowState(r.Row), RowStateValue(r.Row, r.Transaction)))];
        var held = await LockPersonsAsync(combined, ct);
        try
        {
            var result = await ApplyAsync(combined, ct, (session, token) => session.WriteStatesAsync(states, token));
            return rows.Where(r => r.Row.Deleted
                    && r.Transaction.Entry.Where(e => e.Request?.Method == Bundle.HTTPVerb.DELETE).Select(e => combined.Entry.IndexOf(e)).ToList() is { Count: > 0 } deletes
                    && deletes.All(i => i >= 0 && result.Entries[i].Resource is null))
                .Select(r => r.Row).ToList();
        }
        finally
        {
            Release(held);
        }
    }

    /// <summary>
    /// A deleted dose row takes back the township's report of the dose (township-export.md §2 "Retraction"): the dose goes
    /// when nothing else reports it, and otherwise only loses this row's <c>vacc_id</c> (the HIS, a certificate or another
    /// township row still report it, §3.2). What else reports it is read when the row's chunk is applied, not when the
    /// batch began, so a report stored meanwhile counts. A dose deleted whole is deleted only in the version read
    /// (If-Match): a report committed between this read and the chunk's own makes the chunk fail with 412, and
    /// <see cref="ApplyTogetherAsync"/> reads again.
    /// </summary>
    private async Task<IReadOnlyList<(TownshipRow Row, Bundle Transaction)>> RefreshDoseRetractionsAsync(
        IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows, CancellationToken ct)
    {
        var retractions = rows.Where(r => r.Row is { Table: "immunizations", Deleted: true }).Select(r => r.Row.Key).ToList();
        if (retractions.Count == 0)
        {
            return rows;
        }

        var stored = await StoredByIdentifierAsync<Immunization>(TownshipMapper.VaccinationSystem, retractions, i => i.Identifier, ct);
        var refreshed = new List<(TownshipRow Row, Bundle Transaction)>(rows.Count);
        foreach (var r in rows)
        {
            if (r.Row is not { Table: "immunizations", Deleted: true } || !stored.TryGetValue(r.Row.Key, out var dose))
            {
                refreshed.Add(r);
                continue;
            }

            // Another source's identifier (the HIS's, another row's, the certificate's), or the certificate's report (a
            // dose it wrote before its doses carried an identifier).
            var shared = dose.Resource.Identifier.Any(i => i.System != Systems.VaccineTraceCode && !(i.System == TownshipMapper.VaccinationSystem && i.Value == r.Row.Key))
                || dose.Resource.ReportOrigin?.Coding.Any(c => c.Code == "birth-certificate") == true;
            var retraction = r.Row.Map(new StoredRow(dose.Id, SharedWithOtherSources: shared))!;
            if (!shared && dose.Resource.Meta?.VersionId is { } version
                && retraction.Entry.Select(e => e.Request).Single(q => q?.Method == Bundle.HTTPVerb.DELETE) is { } delete)
            {
                delete.IfMatch = $"W/\"{version}\"";
            }

            // A shared dose whose content is still this row's (the township wrote it last, or a transcription after it kept
            // it; no other row reports it or writes it in the chunk) goes back to what it was before the row's report
            // joined (§2 "Retraction": what the hub derived from the row goes with it): its lot, vaccinator and time,
            // with the identifiers it had and every later one but the row's and its trace code.
            var otherRows = dose.Resource.Identifier.Any(i => i.System == TownshipMapper.VaccinationSystem && i.Value != r.Row.Key)
                || rows.Any(o => o.Row != r.Row && o.Transaction.Entry.Any(e => e.Request?.Url == $"Immunization/{dose.Id}"));
            if (shared && !otherRows && await BeforeRowAsync(dose.Id, dose.Resource, r.Row.Key, ct) is var (earlier, rowTraceCodes)
                && retraction.Entry.SingleOrDefault(e => e.Request is { Method: Bundle.HTTPVerb.PATCH }) is { } patch)
            {
                earlier.Identifier.AddRange(dose.Resource.Identifier.Where(i => !(i.System == Systems.VaccineTraceCode && rowTraceCodes.Contains(i.Value ?? ""))
                    && !(i.System == TownshipMapper.VaccinationSystem && i.Value == r.Row.Key)
                    && !earlier.Identifier.Any(e => e.System == i.System && e.Value == i.Value)).ToList());
                earlier.AddAnnotation(new RestoredReport());
                patch.Resource = earlier;
                patch.Request = new Bundle.RequestComponent
                {
                    Method = Bundle.HTTPVerb.PUT, Url = $"Immunization/{dose.Id}", IfMatch = $"W/\"{dose.Resource.Meta?.VersionId}\"",
                };
            }

            refreshed.Add((r.Row, retraction));
        }

        return refreshed;
    }

    /// <summary>Marks a dose put back to an earlier report of another source: nothing of the stored version is kept over it.</summary>
    private sealed class RestoredReport;

    /// <summary>
    /// What a dose was before a township row's report of it joined (the latest version without the row's
    /// <c>vacc_id</c>), without its meta, with the trace codes that report added: when the dose still reads as the row
    /// wrote it (the township wrote it last, or later reports only added their identifiers); null otherwise, or when the
    /// row's report was the first.
    /// </summary>
    private async Task<(Immunization Before, HashSet<string> RowTraceCodes)?> BeforeRowAsync(string id, Immunization current, string key, CancellationToken ct)
    {
        static bool HasRow(Immunization dose, string key) => dose.Identifier.Any(i => i.System == TownshipMapper.VaccinationSystem && i.Value == key);
        static bool Township(Immunization dose) => dose.Meta?.Source?.StartsWith(TownshipMapper.SourcePrefix, StringComparison.Ordinal) == true;
        static IEnumerable<string> TraceCodes(Immunization dose) =>
            dose.Identifier.Where(i => i.System == Systems.VaccineTraceCode).Select(i => i.Value).OfType<string>();
        static bool SameReport(Immunization a, Immunization b)
        {
            var (x, y) = ((Immunization)a.DeepCopy(), (Immunization)b.DeepCopy());
            (x.Meta, y.Meta, x.Identifier, y.Identifier) = (null, null, [], []);
            return x.IsExactly(y);
        }

        if (!int.TryParse(current.Meta?.VersionId, CultureInfo.InvariantCulture, out var version))
        {
            return null;
        }

        var rowsReport = Township(current) && HasRow(current, key) ? current : null;
        Immunization? joined = null;
        for (var earlier = version - 1; earlier >= 1; earlier--)
        {
            if (await store.ReadVersionAsync("Immunization", id, earlier, ct) is not { IsDeleted: false } stored
                || serializers.ParseStored(stored.Json) is not Immunization report)
            {
                return null;
            }

            if (HasRow(report, key))
            {
                rowsReport ??= Township(report) ? report : null;
                joined = report;
                continue;
            }

            if (rowsReport is null || !SameReport(current, rowsReport))
            {
                return null;
            }

            var source = report.Meta?.Source;
            report.Meta = source is null ? null : new Meta { Source = source };
            return (report, joined is null ? [] : TraceCodes(joined).Except(TraceCodes(report)).ToHashSet(StringComparer.Ordinal));
        }

        return null;
    }

    /// <summary>
    /// A registration's retraction (§2) removes its EpisodeOfCare; the visits of the pregnancy that other rows wrote stay,
    /// without their link to it (read when the chunk is applied, and written with the retraction, If-Match on the version
    /// read), so no Encounter refers to a deleted EpisodeOfCare.
    /// </summary>
    private async Task<IReadOnlyList<(TownshipRow Row, Bundle Transaction)>> UnlinkRetractedRegistrationsAsync(
        IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows, CancellationToken ct)
    {
        if (!rows.Any(r => r.Row is { Table: "maternal_registrations", Deleted: true }))
        {
            return rows;
        }

        var result = new List<(TownshipRow Row, Bundle Transaction)>();
        foreach (var (row, transaction) in rows)
        {
            if (row is not { Table: "maternal_registrations", Deleted: true })
            {
                result.Add((row, transaction));
                continue;
            }

            var episode = $"EpisodeOfCare/{Bundles.ResourceIds.From(row.Key)}";
            var firstVisit = TownshipCareMapping.VisitId(TownshipCareMapping.FirstVisitKey(row.Key));
            var matches = await store.FindAsync("Encounter", parser.ParseCriteria("Encounter", [new("episode-of-care", episode)]), null, 1000, ct);
            var unlinked = new Bundle { Type = Bundle.BundleType.Transaction, Entry = [.. transaction.Entry] };
            foreach (var stored in await store.ReadManyAsync("Encounter", matches.Select(m => m.Id).Where(id => id != firstVisit).ToList(), ct))
            {
                var visit = (Encounter)serializers.ParseStored(stored.Json);
                visit.EpisodeOfCare.RemoveAll(e => e.Reference == episode);
                unlinked.Entry.Insert(0, new Bundle.EntryComponent
                {
                    FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                    Resource = visit,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Encounter/{stored.Id}", IfMatch = stored.ETag },
                });
            }

            result.Add((row, unlinked));
        }

        return result;
    }

    /// <summary>
    /// The stored resources of a type carrying one of these identifier values of a system, by value (two hundred values
    /// per query): the residents a township batch names by health-record number, the doses by <c>vacc_id</c>.
    /// </summary>
    private async Task<Dictionary<string, (string Id, T Resource)>> StoredByIdentifierAsync<T>(string system, IEnumerable<string> values,
        Func<T, List<Identifier>> identifiers, CancellationToken ct)
        where T : DomainResource
    {
        var type = ModelInfo.GetFhirTypeNameForType(typeof(T))!;
        var found = new Dictionary<string, (string, T)>(StringComparer.Ordinal);
        foreach (var page in values.Distinct(StringComparer.Ordinal).Chunk(200))
        {
            var criteria = parser.ParseCriteria(type, [new("identifier", string.Join(',', page.Select(v => $"{system}|{v}")))]);
            var matches = await store.FindAsync(type, criteria, null, page.Length * 2, ct);
            foreach (var stored in await store.ReadManyAsync(type, matches.Select(m => m.Id).ToList(), ct))
            {
                var resource = (T)serializers.ParseStored(stored.Json);
                foreach (var value in identifiers(resource).Where(i => i.System == system).Select(i => i.Value).OfType<string>())
                {
                    found[value] = (stored.Id, resource);
                }
            }
        }

        return found;
    }

    /// <summary>
    /// A stored resident's person key (<see cref="Identity.DoseIds.PersonKey"/>: newborn record key or newborn key, else ID number): a dose of a
    /// resident of an earlier batch then gets the id the HIS and the certificates give the same dose.
    /// </summary>
    private static string? PersonKey(Patient? patient) =>
        patient is null ? null : DoseIds.PersonKey(
            patient.GetExtensionValue<FhirString>(ExtensionUrls.NewbornRecordKey)?.Value ?? patient.Identifier.FirstOrDefault(i => i.System == Systems.NewbornKey)?.Value,
            patient.Identifier.FirstOrDefault(i => i.System == Systems.ResidentId)?.Value);

    /// <summary>
    /// township-export.md §1: batches of one source come in <c>sequence</c> order, and a gap is a warning only (each row's
    /// <c>updated_at</c> keeps a late batch from overwriting newer data). The highest sequence seen per institution and
    /// source system is kept in the hub's state.
    /// </summary>
    private async Task CheckSequenceAsync(TownshipManifest manifest, OperationOutcome outcome, CancellationToken ct)
    {
        var name = $"township-sequence:{manifest.Institution}:{manifest.SourceSystem}";
        var last = await state.ReadStateAsync(name, ct) is { } text && int.TryParse(text, CultureInfo.InvariantCulture, out var seen) ? seen : (int?)null;
        if (last is { } previous && manifest.Sequence > previous + 1)
        {
            outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                $"batch {manifest.BatchId}: sequence {manifest.Sequence} follows {previous}; batches {previous + 1}–{manifest.Sequence - 1} of {manifest.Institution} have not arrived",
                "manifest.json"));
        }

        if (last is null || manifest.Sequence > last)
        {
            await state.WriteStateAsync(name, manifest.Sequence.ToString(CultureInfo.InvariantCulture), ct);
        }
    }

    /// <summary>The name under which the <c>updated_at</c> of the row of (table, key) applied last is kept (<see cref="IHubStateStore"/>).</summary>
    private static string RowState(TownshipRow row) => $"township-row:{row.Table}:{row.Key}";

    /// <summary>
    /// What <see cref="RowState"/> keeps: "updated_at content-hash", and for a resident row what it filled
    /// (<see cref="ResidentSupplied"/>).
    /// </summary>
    private static string RowStateValue(TownshipRow row, Bundle? transaction) =>
        $"{row.UpdatedAt.ToString("O", CultureInfo.InvariantCulture)} {row.ContentHash}".TrimEnd()
        + (row is { Table: "residents", Deleted: false, ContentHash.Length: > 0 } && transaction?.Entry.Select(e => e.Resource).OfType<Patient>().FirstOrDefault() is { } patient
            ? " " + ResidentSupplied.Of(patient)
            : "");

    /// <summary>
    /// The <c>updated_at</c> (and content hash) of the version of each row's (table, key) applied before, by
    /// <see cref="RowState"/>, read a thousand rows per query. A row applied by mapping 0.1.0 has no such state: its own Provenance (id from table
    /// and key) recorded it as occurred, and is read instead.
    /// </summary>
    private async Task<Dictionary<string, (DateTimeOffset UpdatedAt, string? ContentHash, string? Supplied)>> AppliedAtAsync(IReadOnlyList<TownshipRow> rows, CancellationToken ct)
    {
        var applied = new Dictionary<string, (DateTimeOffset, string?, string?)>(StringComparer.Ordinal);
        foreach (var page in rows.DistinctBy(RowState).Chunk(1000))
        {
            var states = await state.ReadStatesAsync([.. page.Select(RowState)], ct);
            var earlier = new Dictionary<string, TownshipRow>(StringComparer.Ordinal);
            foreach (var row in page)
            {
                if (states.TryGetValue(RowState(row), out var value))
                {
                    // "updated_at content-hash [resident's filled elements]"; rows applied before the hash was kept have the time alone.
                    var parts = value.Split(' ', 3);
                    applied[RowState(row)] = (DateTimeOffset.Parse(parts[0], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                        parts.Length > 1 ? parts[1] : null, parts.Length > 2 ? parts[2] : null);
                }
                else
                {
                    earlier[Bundles.ResourceIds.From(row.Table, row.Key)] = row;
                }
            }

            foreach (var stored in await store.ReadManyAsync("Provenance", [.. earlier.Keys], ct))
            {
                if (serializers.ParseStored(stored.Json) is Provenance { Occurred: FhirDateTime occurred })
                {
                    applied[RowState(earlier[stored.Id])] = (occurred.ToDateTimeOffset(TimeSpan.Zero), null, null);
                }
            }
        }

        return applied;
    }

    /// <summary>
    /// A 补发/换发 replaces a certificate (birth-certificate.md): the replaced certificate's stored
    /// DocumentReference becomes <c>superseded</c> in the same transaction as the new one (If-Match on the version
    /// read, so a concurrent change fails the transaction rather than being overwritten).
    /// </summary>
    /// <returns>A warning when the certificate replaces one the hub never received (birth-certificate.md §3: accepted,
    /// with a warning; the newborn is then linked by the mother's ID number and the birth).</returns>
    private async Task<string?> SupersedeAsync(CertificateAccepted accepted, CancellationToken ct)
    {
        if (accepted.Supersedes is not { } replaced)
        {
            return null;
        }

        var id = Bundles.ResourceIds.From(replaced);
        if (await store.ReadAsync("DocumentReference", id, ct) is not { IsDeleted: false } stored)
        {
            return $"certificate {accepted.Number} replaces {replaced}, which the hub never received";
        }

        var document = (DocumentReference)serializers.ParseStored(stored.Json);
        if (document.Status == DocumentReferenceStatus.Superseded)
        {
            return null;
        }

        document.Status = DocumentReferenceStatus.Superseded;
        accepted.Transaction.Entry.Insert(0, new Bundle.EntryComponent
        {
            FullUrl = $"urn:uuid:{Guid.NewGuid()}",
            Resource = document,
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"DocumentReference/{id}", IfMatch = stored.ETag },
        });
        return null;
    }

    /// <summary>
    /// A certificate that arrives after the one replacing it (birth-certificate.md §3; README rule 4: "the new number
    /// replaces the old"): only its DocumentReference is stored, superseded, and its number joins the newborn as an old
    /// one. The persons are found or created, never updated, and the birth records are left as the replacement wrote
    /// them: it is the later, corrected document.
    /// </summary>
    /// <returns>A warning naming the replacement, or null when none is stored.</returns>
    private async Task<string?> ArrivedAfterItsReplacementAsync(CertificateAccepted accepted, CancellationToken ct)
    {
        var criteria = parser.ParseCriteria("DocumentReference", [new("relatesto:identifier", $"{Systems.BirthCertificate}|{accepted.Number}")]);
        if (await store.FindAsync("DocumentReference", criteria, null, 1, ct) is not [var replacement])
        {
            return null;
        }

        var entries = accepted.Transaction.Entry;
        entries.RemoveAll(e => e.Resource is not (Patient or DocumentReference or Provenance));
        foreach (var entry in entries)
        {
            if (entry.Resource is DocumentReference { Status: DocumentReferenceStatus.Current } document && document.MasterIdentifier?.Value == accepted.Number)
            {
                document.Status = DocumentReferenceStatus.Superseded;
            }
            else if (entry is { Resource: Patient patient, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } request } && url.Contains('?', StringComparison.Ordinal))
            {
                foreach (var number in patient.Identifier.Where(i => i.System == Systems.BirthCertificate && i.Value == accepted.Number))
                {
                    number.Use = Identifier.IdentifierUse.Old;
                }

                // Found or created, not updated: a conditional create on the same identifiers.
                request.Method = Bundle.HTTPVerb.POST;
                request.IfNoneExist = url.Split('?', 2)[1];
                request.Url = "Patient";
            }
            else if (entry.Resource is Provenance provenance)
            {
                var kept = entries.Select(e => e.FullUrl).Concat(entries.Select(e => e.Request?.Url)).OfType<string>().ToHashSet(StringComparer.Ordinal);
                provenance.Target.RemoveAll(t => t.Reference is not { } target || !kept.Contains(target));
            }
        }

        return $"certificate {accepted.Number} arrived after DocumentReference/{replacement.Id}, which replaces it: stored as replaced, nothing else written";
    }

    private async Task<OperationOutcome> ApplyCertificatesAsync(byte[] xml, DateTimeOffset receivedAt, CancellationToken ct)
    {
        var result = BirthCertificateReader.Read(xml, receivedAt);
        var outcome = new OperationOutcome();
        foreach (var issue in result.DocumentIssues)
        {
            outcome.Issue.Add(Issue(Of(issue.Severity), issue.Code, $"line {issue.Line}, position {issue.Position}: {issue.Detail}", null));
        }

        foreach (var certificate in result.Certificates)
        {
            var where = $"BirthCertificate[{certificate.CertificateNo}]";
            if (certificate is CertificateAccepted seen && await StoredRecordVersionAsync(seen.Number, ct) is { } stored && stored >= seen.Version)
            {
                // The pair (CertificateNo, RecordVersion) was applied already, or a later version was: nothing changes.
                outcome.Issue.Add(stored == seen.Version
                    ? Issue(OperationOutcome.IssueSeverity.Information, "UNCHANGED", $"certificate {seen.Number} version {seen.Version} was applied before", where)
                    : Issue(OperationOutcome.IssueSeverity.Warning, "STALE", $"certificate {seen.Number} version {seen.Version} is older than the stored version {stored}; ignored", where));
            }
            else if (certificate is CertificateAccepted accepted)
            {
                var held = await LockPersonsAsync(accepted.Transaction, ct);
                try
                {
                    // Records of the child that other sources made under the numbers it names (a reissue's new and old
                    // numbers, its newborn key) are merged first, before this certificate's writes are read against them;
                    // not for a void (its number names no one) nor for a certificate its replacement overtook.
                    var late = await ArrivedAfterItsReplacementAsync(accepted, ct);
                    if (late is null && !accepted.Transaction.Entry.Any(e => e.Resource is DocumentReference { Status: DocumentReferenceStatus.EnteredInError }))
                    {
                        await LinkSamePersonAsync(accepted.Transaction, ct);
                    }

                    var unknownReplaced = await SupersedeAsync(accepted, ct);
                    await ApplyAsync(accepted.Transaction, ct, checkPatients: KeepOtherSourcesAndSharedRecordsAsync);
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Information, "APPLIED", $"certificate {accepted.Number} version {accepted.Version} applied", where));
                    foreach (var warning in new[] { unknownReplaced, late }.Concat(IdNumberOutcome.In(accepted.Transaction).Select(o => o.Describe())).OfType<string>())
                    {
                        outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING", warning, where));
                    }
                }
                catch (FhirException e) when ((int)e.Status is >= 400 and < 500 and not 409 and not 412 || Refusal(e) == RejectionReason.DuplicateKey)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, Refusal(e).Code(), $"certificate {accepted.Number}: {Describe(e)}", where));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The hub's own failure (the store): the document stays a dead letter for a replay.
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.Malformed.Code(),
                        $"certificate {accepted.Number}: not stored, the document can be replayed: {Describe(e)}", where));
                }
                finally
                {
                    Release(held);
                }
            }

            foreach (var issue in certificate.Issues)
            {
                outcome.Issue.Add(Issue(Of(issue.Severity), issue.Code, $"certificate {certificate.CertificateNo}, line {issue.Line}: {issue.Detail}", where));
            }
        }

        return outcome;
    }

    private static bool HasErrors(OperationOutcome outcome) =>
        outcome.Issue.Any(i => i.Severity is OperationOutcome.IssueSeverity.Error or OperationOutcome.IssueSeverity.Fatal);

    private static (OperationOutcome, bool) WithFailed(OperationOutcome outcome) => (outcome, HasErrors(outcome));

    private async Task<int?> StoredRecordVersionAsync(string number, CancellationToken ct) =>
        await store.ReadAsync("DocumentReference", Bundles.ResourceIds.From(number), ct) is { IsDeleted: false } stored
        && serializers.ParseStored(stored.Json) is DocumentReference document
        && document.GetExtensionValue<Integer>(BirthCertificateMapper.RecordVersionExtension)?.Value is { } version
            ? version
            : null;

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
    private (AckCode Code, List<HisIssue> Issues)? RejectedForItsContent(InboxMessage stored)
    {
        if (stored.Outcome is not { Length: > 0 } json || serializers.ParseStored(Encoding.UTF8.GetBytes(json)) is not OperationOutcome outcome)
        {
            return null;
        }

        var ack = outcome.Issue.FirstOrDefault()?.Details?.Coding.FirstOrDefault()?.Code;
        if (ack is not ("AE" or "AR"))
        {
            return null;
        }

        var issues = new List<HisIssue>();
        foreach (var issue in outcome.Issue.Skip(1))
        {
            var reason = Enum.GetValues<RejectionReason>().Cast<RejectionReason?>().FirstOrDefault(r => r!.Value.Code() == issue.Details?.Coding.FirstOrDefault()?.Code);
            var severity = issue.Severity == OperationOutcome.IssueSeverity.Error ? IssueSeverity.Error : IssueSeverity.Warning;
            if (severity == IssueSeverity.Error && reason is null or RejectionReason.Malformed)
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

        return issues.Any(i => i.Severity == IssueSeverity.Error) ? (ack == "AR" ? AckCode.AR : AckCode.AE, issues) : null;
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

    /// <summary>The manifest's batch id keys a township batch (township-export.md §1); an unreadable batch is keyed by its bytes.</summary>
    private static string BatchId(byte[] zip)
    {
        try
        {
            // The manifest only: the rows are read once, when the stored batch is applied.
            if (TownshipBatchReader.ReadManifest(TownshipBatchReader.FromZip(zip)) is { } manifest)
            {
                return manifest.BatchId;
            }
        }
        catch (InvalidDataException)
        {
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(zip));
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
