using System.Globalization;
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
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// HIS messages (his-hl7v2.md): how one is applied alone, the checks made against what the hub holds (the person, the
/// visit's history, the referral's state), and the stored keys a message's mapping needs.
/// </summary>
public sealed partial class IngestPipeline
{
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

    /// <summary>
    /// <see cref="KeepOtherSourcesAsync"/> after the checks of HIS messages: a message naming a retired Patient, or a
    /// report that is another patient's or a result taken back a step (<see cref="CheckReportsAsync"/>), is refused
    /// (<see cref="RefusedMessageException"/>) and nothing of its transaction is written.
    /// </summary>
    private async Task CheckPatientsAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct)
    {
        var patients = await ReadPatientsAsync(session, entries, ct);
        if (Retired(entries, patients) is { } retired)
        {
            throw new RefusedMessageException(retired);
        }

        await CheckReportsAsync(session, entries, patients, ct);
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
    /// A report number (MSH-4 and OBR-3) names one patient's report: a result or correction whose patient is clearly
    /// another (<see cref="AnotherPatient"/>; a typing error) would move the report and its results to that patient. It
    /// is refused <c>UNKNOWN_REFERENCE</c>, as a visit of another patient is (<see cref="KeepVisitHistoryAsync"/>) and a
    /// referral (<see cref="CheckTransitionAsync"/>).
    /// </summary>
    /// <remarks>
    /// Also: a result is reported preliminary, then final, then corrected (HL7 table 0085: a final result "can only be
    /// changed with a corrected result"). A message that would take a stored result back a step with another value (a
    /// final sent again after its correction, a preliminary after the final) would undo the later values; it is refused
    /// at OBX-11. With the stored value in a corrected report sent whole (OBR-25 C), the result keeps its status. A result cancelled or
    /// withdrawn (X, D, W) may follow any. Run for HIS messages (<see cref="CheckPatientsAsync"/>); the results of a
    /// report carry a <see cref="RecordKey"/>, a referral's vital signs do not.
    /// </remarks>
    private async Task CheckReportsAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries,
        Dictionary<string, IReadOnlyList<StoredResource>> patients, CancellationToken ct)
    {
        // The value as sent (140.0 is not 140: the laboratory's precision), and its interpretation.
        static bool SameReading(Observation a, Observation b) =>
            (a.Value, b.Value) switch
            {
                (null, null) => true,
                (Quantity x, Quantity y) => (x.Value?.ToString(CultureInfo.InvariantCulture), x.Comparator, x.Unit, x.System, x.Code)
                    == (y.Value?.ToString(CultureInfo.InvariantCulture), y.Comparator, y.Unit, y.System, y.Code),
                ({ } x, { } y) => x.IsExactly(y),
                _ => false,
            }
            && a.Interpretation.Count == b.Interpretation.Count && a.Interpretation.Zip(b.Interpretation).All(p => p.First.IsExactly(p.Second));

        static int Step(ObservationStatus? status) => status switch
        {
            ObservationStatus.Registered or ObservationStatus.Preliminary => 1,
            ObservationStatus.Final => 2,
            ObservationStatus.Corrected or ObservationStatus.Amended => 3,
            _ => 0,
        };

        foreach (var entry in entries)
        {
            if (entry is not { Resource: Observation { Id: { Length: > 0 } resultId } result, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } resultUrl } }
                || resultUrl.Contains('?', StringComparison.Ordinal) || Step(result.Status) == 0
                || result.Annotations(typeof(RecordKey)).OfType<RecordKey>().FirstOrDefault() is not { } resultKey
                || await session.ReadCurrentAsync("Observation", resultId, ct) is not { IsDeleted: false } storedResult
                || serializers.ParseStored(storedResult.Json) is not Observation { Status: var had } held || Step(had) <= Step(result.Status))
            {
                continue;
            }

            // A corrected report (OBR-25 C) sent whole carries its unchanged results as final: they keep their status.
            if (SameReading(result, held) && entries.Select(e => e.Resource).OfType<DiagnosticReport>().Any(r =>
                    r.Status == DiagnosticReport.DiagnosticReportStatus.Corrected && r.Result.Any(x => x.Reference == $"Observation/{resultId}")))
            {
                result.Status = had;
                continue;
            }

            var (was, sent) = (Hl7.Fhir.Utility.EnumUtility.GetLiteral(had!.Value), Hl7.Fhir.Utility.EnumUtility.GetLiteral(result.Status!.Value));
            throw new RefusedMessageException(new HisIssue(RejectionReason.InvalidTransition, resultKey.Location with { Field = 11 },
                $"{resultKey.Description} 已是 {was}，不能再以 {sent} 改为其他值 (更正请以 OBX-11 = C 发送)", IssueSeverity.Error,
                SummaryText: "结果状态变更不允许"));
        }

        var patientEntries = entries.Where(e => e is { Resource: Patient, FullUrl: not null }).ToDictionary(e => e.FullUrl!, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (entry is not { Resource: DiagnosticReport { Id: { Length: > 0 } id } next, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } }
                || url.Contains('?', StringComparison.Ordinal)
                || next.Annotations(typeof(RecordKey)).OfType<RecordKey>().FirstOrDefault() is not { } key
                || next.Subject?.Reference is not { } subject || !patientEntries.TryGetValue(subject, out var patientEntry) || patientEntry.Resource is not Patient sent
                || await session.ReadCurrentAsync("DiagnosticReport", id, ct) is not { IsDeleted: false } stored
                || serializers.ParseStored(stored.Json) is not DiagnosticReport { Subject.Reference: { } owner } || !owner.StartsWith("Patient/", StringComparison.Ordinal)
                || PatientCriteria(patientEntry) is { } criteria && patients.GetValueOrDefault(criteria, []).Any(p => $"Patient/{p.Id}" == owner)
                || await session.ReadCurrentAsync("Patient", owner["Patient/".Length..], ct) is not { IsDeleted: false } held
                || serializers.ParseStored(held.Json) is not Patient had)
            {
                continue;
            }

            if (AnotherPatient(sent, had) is { } conflict)
            {
                throw new RefusedMessageException(new HisIssue(RejectionReason.UnknownReference, key.Location,
                    $"{key.Description} 属于另一患者 ({owner})，不是本消息 PID-3 的患者 ({conflict.Value})", IssueSeverity.Error));
            }
        }
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

    /// <summary>What the stored records refuse of a message (it names a retired Patient, see <see cref="Retired"/>; it cancels a discharged visit); nothing of its transaction is written.</summary>
    private sealed class RefusedMessageException(HisIssue issue) : Exception(issue.Detail)
    {
        public HisIssue Issue => issue;
    }

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

            // A message without NTE sends no notes (§2: absent is "not sent"): the Task keeps the remarks it has (an
            // acceptance's "bed reserved" through the arrival). One with NTE replaces them.
            if (task.Note.Count == 0)
            {
                task.Note.AddRange(current.Note.Select(n => (Annotation)n.DeepCopy()));
            }

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
        // One whose patient is clearly another person names another patient's referral (a typing error): another ID
        // number, or another MRN of the referring institution, which made the referral for its own patient. The receiver
        // names the patient by its own MRN, which may be one of several it holds for the person.
        if (bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Task>().FirstOrDefault(t => t.Id == transition.TaskId)?.For?.Reference is { } named
            && bundle.Entry.FirstOrDefault(e => e.FullUrl == named)?.Resource is Patient sent
            && current.For?.Reference is { } owner && owner.StartsWith("Patient/", StringComparison.Ordinal)
            && await store.ReadAsync("Patient", owner["Patient/".Length..], ct) is { IsDeleted: false } held
            && serializers.ParseStored(held.Json) is Patient had
            && AnotherPatient(sent, had, current.Requester?.Reference is { } requester && requester.StartsWith("Organization/", StringComparison.Ordinal)
                ? [requester["Organization/".Length..]] : []) is { } conflict)
        {
            return new HisIssue(RejectionReason.UnknownReference, transition.Location with { Field = 6 },
                $"转诊单 {current.Identifier.FirstOrDefault()?.Value} 属于另一患者 ({owner})，不是本消息 PID-3 的患者 ({conflict.Value})", IssueSeverity.Error);
        }

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
}
