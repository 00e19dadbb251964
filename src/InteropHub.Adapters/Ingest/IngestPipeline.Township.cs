using System.Globalization;
using System.Security.Cryptography;
using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// Township batches (township-export.md): a stored batch read, its rows applied in chunks, retractions, stale and
/// unchanged rows.
/// </summary>
public sealed partial class IngestPipeline
{
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
            var damaged = new Dictionary<string, string>(StringComparer.Ordinal);
            batch = TownshipBatchReader.Read(TownshipBatchReader.FromZip(zip, damaged), damaged);
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
        var appliedAt = await AppliedAtAsync([.. rowsToApply.Select(r => (r.Table, r.Key))], ct);
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
        // §2 "References": the residents of earlier batches the rows name, by the residents row applied then.
        var sentBefore = await AppliedAtAsync([.. rowsToApply.Where(r => !r.Deleted).SelectMany(r => r.ReferencedResidents).Select(r => ("residents", r))], ct);
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
                            Where(row.File, row.Row, row.ColumnLabel("updated_at"))));
                    }
                    else if (earlier.ContentHash is { Length: > 0 } had && row.ContentHash.Length > 0 && had != row.ContentHash)
                    {
                        // §2 "Update": a later updated_at replaces; an equal one with the same content changes nothing. Equal
                        // with other content means the source changed the row without advancing updated_at.
                        tally[row.File].Stale++;
                        outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "STALE",
                            $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: same updated_at {row.UpdatedAt:yyyy-MM-dd HH:mm:ss} as the version applied, but other content; ignored (a changed row needs a later updated_at)",
                            Where(row.File, row.Row, row.ColumnLabel("updated_at"))));
                    }
                    else
                    {
                        tally[row.File].Unchanged++;
                    }

                    continue;
                }

                // §2 "References": a resident of an earlier batch is one a township batch sent. A record number the HIS gave a
                // patient (ZPI-5) names no resident the township ever reported.
                if (row is { Deleted: false, ReferencedResidents: [var named] } && !sentBefore.ContainsKey(RowState("residents", named)))
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.UnknownReference.Code(),
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: record_no {named} 的居民档案不在平台中（从未上报，或已在之前的批次中删除）",
                        Where(row.File, row.Row, row.ColumnLabel("record_no"))));
                    tally[row.File].Refused++;
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
                        Where(row.File, row.Row, row.ColumnLabel(earliest.Column))));
                    tally[row.File].Refused++;
                    continue;
                }

                // §3.6: a pregnancy registered for a resident of an earlier batch recorded as a man is applied, with a warning.
                if (row is { Table: "maternal_registrations", Deleted: false, ReferencedResidents: [var woman] }
                    && storedResidents.GetValueOrDefault(TextNormalizer.Number(woman))?.Gender == AdministrativeGender.Male)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: {TownshipBatchReader.MaleRegistration(woman)}",
                        Where(row.File, row.Row, row.ColumnLabel("record_no"))));
                }

                // §2 "Impossible dates": an antenatal visit before its registration of an earlier batch.
                if (row.AntenatalVisit is { } visit && storedRegistrations.GetValueOrDefault(visit.RegId).Resource?.Period?.Start is { Length: >= 10 } registered
                    && DateOnly.TryParseExact(registered[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var registeredOn)
                    && visit.Date < registeredOn)
                {
                    outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Error, RejectionReason.ImpossibleDate.Code(),
                        $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: visit_date {visit.Date:yyyy-MM-dd} 早于建册日期 {registered[..10]}",
                        Where(row.File, row.Row, row.ColumnLabel("visit_date"))));
                    tally[row.File].Refused++;
                    continue;
                }

                Bundle? transaction;
                try
                {
                    var replaces = appliedAt.TryGetValue(RowState(row), out var before);
                    transaction = row.Table == "immunizations"
                        ? MapDose(row, storedDoses.TryGetValue(row.Key, out var dose) || row.ReferencedResidents.Count > 0 || row.NewbornKey is not null || row.BirthCertificateNo is not null
                            ? new StoredRow(dose.Id, row.ReferencedResidents is [var recordNo] ? PersonKey(storedResidents.GetValueOrDefault(TextNormalizer.Number(recordNo)))
                                    : row.BirthCertificateNo is { } certificate ? certified.GetValueOrDefault(certificate) : null,
                                NewbornRecordKey: row.NewbornKey is { } newborn ? recordKeys.GetValueOrDefault(newborn) : null)
                            : null, dose.Resource)
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
                    Where(row.Row.File, row.Row.Row,
                        unknownResident is not null ? row.Row.ColumnLabel("record_no") : unknownRegistration is not null ? row.Row.ColumnLabel("reg_id") : null)));
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

    private static void WarnIdNumbers(IEnumerable<(TownshipRow Row, Bundle Transaction)> rows, OperationOutcome outcome)
    {
        foreach (var (row, transaction) in rows)
        {
            foreach (var disagreement in IdNumberOutcome.In(transaction))
            {
                outcome.Issue.Add(Issue(OperationOutcome.IssueSeverity.Warning, "WARNING",
                    $"{row.File} row {row.Row} (line {row.Line}) {row.Key}: {disagreement.Describe()}", Where(row.File, row.Row, row.ColumnLabel("id_no"))));
            }
        }
    }

    /// <summary>
    /// Maps a dose row. Its earlier version's dose keeps its id (a dose keyed by <c>vacc_id</c> whose date is corrected),
    /// unless this version names another vaccine or date and so another dose, with an id of its own (person, vaccine,
    /// date; README "one Immunization per dose"): then the row is written to that dose, joining whatever other source
    /// reports it, and leaves the earlier one (<see cref="StoredRow.LeavesDose"/>), which goes back to what the other
    /// sources say, as when the row is deleted (<see cref="RefreshDoseRetractionsAsync"/>).
    /// </summary>
    private static Bundle? MapDose(TownshipRow row, StoredRow? stored, Immunization? earlier)
    {
        if (stored is not { Id: { } id } || earlier is null || row.Map(stored with { Id = null }) is not { } moved
            || moved.Entry.Select(e => e.Resource).OfType<Immunization>().FirstOrDefault() is not { } next
            || next.Id == id || SameDose(next, earlier))
        {
            return row.Map(stored);
        }

        return row.Map(stored with { Id = null, LeavesDose = id });

        static bool SameDose(Immunization a, Immunization b) => VaccineOf(a) == VaccineOf(b) && Day(a) == Day(b);
        static string? VaccineOf(Immunization dose) => dose.VaccineCode?.Coding.FirstOrDefault(c => c.System == Systems.Vaccine)?.Code;
        static string? Day(Immunization dose) => (dose.Occurrence as FhirDateTime)?.Value is { Length: >= 10 } value ? value[..10] : null;
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
                return await ApplyTogetherOnceAsync(manifest,
                    await UnlinkRetractedRegistrationsAsync(await RetractRecordsAsync(await RefreshDoseRetractionsAsync(rows, ct), ct), ct), ct);
            }
            catch (FhirException e) when (e.Status == System.Net.HttpStatusCode.PreconditionFailed && Describe(e.Outcome).Contains("If-Match", StringComparison.Ordinal))
            {
                // A dose or a resident's record a deleted row retracts changed after it was read (another source reported
                // it meanwhile): read it again. Changed every time: a conflict of the hub's, so the batch stays a dead
                // letter to replay.
                if (attempt == 3)
                {
                    throw new WriteConflictException($"A record a deleted row retracts kept changing while the row was applied: {Describe(e)}");
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
    /// township row still report it, §3.2). A later version of a dose row that names another vaccine or date leaves the
    /// dose its earlier version reported in the same way (<see cref="MapDose"/>). What else reports it is read when the
    /// row's chunk is applied, not when the
    /// batch began, so a report stored meanwhile counts. A dose deleted whole is deleted only in the version read
    /// (If-Match): a report committed between this read and the chunk's own makes the chunk fail with 412, and
    /// <see cref="ApplyTogetherAsync"/> reads again.
    /// </summary>
    private async Task<IReadOnlyList<(TownshipRow Row, Bundle Transaction)>> RefreshDoseRetractionsAsync(
        IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows, CancellationToken ct)
    {
        var retractions = rows.Where(r => r.Row is { Table: "immunizations", Deleted: true } || Leaving(r) is not null).Select(r => r.Row.Key).ToList();
        if (retractions.Count == 0)
        {
            return rows;
        }

        var stored = await StoredByIdentifierAsync<Immunization>(TownshipMapper.VaccinationSystem, retractions, i => i.Identifier, ct);
        var refreshed = new List<(TownshipRow Row, Bundle Transaction)>(rows.Count);
        foreach (var r in rows)
        {
            // A later version of the row that reports another dose leaves the one its earlier version reported
            // (StoredRow.LeavesDose): that dose is taken back as a deleted row's is.
            var leaving = Leaving(r);
            if (r.Row is not { Table: "immunizations" } || !stored.TryGetValue(r.Row.Key, out var dose)
                || (!r.Row.Deleted && leaving?.Request?.Url != $"Immunization/{dose.Id}"))
            {
                refreshed.Add(r);
                continue;
            }

            // Another source's identifier (the HIS's, another row's, the certificate's), or the certificate's report (a
            // dose it wrote before its doses carried an identifier).
            var shared = dose.Resource.Identifier.Any(i => i.System != Systems.VaccineTraceCode && !(i.System == TownshipMapper.VaccinationSystem && i.Value == r.Row.Key))
                || dose.Resource.ReportOrigin?.Coding.Any(c => c.Code == "birth-certificate") == true;
            Bundle retraction;
            Bundle.EntryComponent? patch;
            if (leaving is null)
            {
                retraction = r.Row.Map(new StoredRow(dose.Id, SharedWithOtherSources: shared))!;
                if (!shared && dose.Resource.Meta?.VersionId is { } version
                    && retraction.Entry.Select(e => e.Request).Single(q => q?.Method == Bundle.HTTPVerb.DELETE) is { } delete)
                {
                    delete.IfMatch = $"W/\"{version}\"";
                }

                patch = retraction.Entry.SingleOrDefault(e => e.Request is { Method: Bundle.HTTPVerb.PATCH });
            }
            else
            {
                // The row's own Bundle stays as mapped (it is refreshed again when the chunk is retried): a copy, with a
                // new entry in place of the patch.
                patch = new Bundle.EntryComponent { FullUrl = leaving.FullUrl, Resource = leaving.Resource, Request = leaving.Request };
                retraction = new Bundle { Type = Bundle.BundleType.Transaction };
                retraction.Entry.AddRange(r.Transaction.Entry.Select(e => e == leaving ? patch : e));
                if (!shared)
                {
                    // No other source reports the dose the row leaves: it goes, in the version read.
                    patch.FullUrl = null;
                    patch.Resource = null;
                    patch.Request = new Bundle.RequestComponent
                    {
                        Method = Bundle.HTTPVerb.DELETE, Url = $"Immunization/{dose.Id}", IfMatch = $"W/\"{dose.Resource.Meta?.VersionId}\"",
                    };
                }
            }

            // A shared dose whose content is still this row's (the township wrote it last, or a transcription after it kept
            // it; no other row reports it or writes it in the chunk) goes back to what it was before the row's report
            // joined (§2 "Retraction": what the hub derived from the row goes with it): its lot, vaccinator and time,
            // with the identifiers it had and every later one but the row's and its trace code.
            var otherRows = dose.Resource.Identifier.Any(i => i.System == TownshipMapper.VaccinationSystem && i.Value != r.Row.Key)
                || rows.Any(o => o.Row != r.Row && o.Transaction.Entry.Any(e => e.Request?.Url == $"Immunization/{dose.Id}"));
            if (shared && !otherRows && patch is not null && await BeforeRowAsync(dose.Id, dose.Resource, r.Row.Key, ct) is var (earlier, rowTraceCodes))
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

        // The patch by id of a row's later version that leaves the dose its earlier version reported.
        static Bundle.EntryComponent? Leaving((TownshipRow Row, Bundle Transaction) r) => r.Row is { Table: "immunizations", Deleted: false }
            ? r.Transaction.Entry.FirstOrDefault(e => e.Request is { Method: Bundle.HTTPVerb.PATCH, Url: { } url } && url.StartsWith("Immunization/", StringComparison.Ordinal))
            : null;
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
    /// A deleted resident whose Patient only township rows ever wrote (<see cref="WrittenByTownshipAloneAsync"/>, read
    /// when the chunk is applied) retracts the record with the number: the row is mapped again to patch that Patient by
    /// id, If-Match on the version read, so a report another source commits meanwhile fails the chunk with 412 and
    /// <see cref="ApplyTogetherAsync"/> reads again.
    /// </summary>
    private async Task<IReadOnlyList<(TownshipRow Row, Bundle Transaction)>> RetractRecordsAsync(
        IReadOnlyList<(TownshipRow Row, Bundle Transaction)> rows, CancellationToken ct)
    {
        var retracted = rows.Where(r => r.Row is { Table: "residents", Deleted: true }).Select(r => TextNormalizer.Number(r.Row.Key)).ToList();
        if (retracted.Count == 0)
        {
            return rows;
        }

        var stored = await StoredByIdentifierAsync<Patient>(Systems.HealthRecord, retracted, p => p.Identifier, ct);
        var result = new List<(TownshipRow Row, Bundle Transaction)>(rows.Count);
        foreach (var r in rows)
        {
            if (r.Row is { Table: "residents", Deleted: true } && stored.TryGetValue(TextNormalizer.Number(r.Row.Key), out var record)
                && await WrittenByTownshipAloneAsync(record.Resource, ct)
                && r.Row.Map(new StoredRow(record.Id, SharedWithOtherSources: false)) is { } retraction)
            {
                retraction.Entry.Single(e => e.Request is { Method: Bundle.HTTPVerb.PATCH }).Request!.IfMatch = $"W/\"{record.Resource.Meta?.VersionId}\"";
                result.Add((r.Row, retraction));
                continue;
            }

            if (r.Row is { Table: "residents", Deleted: true } && stored.TryGetValue(TextNormalizer.Number(r.Row.Key), out record)
                && await OtherSourcesReportAsync(record.Resource, TextNormalizer.Number(r.Row.Key), ct) is { } restored
                && r.Transaction.Entry.SingleOrDefault(e => e.Request is { Method: Bundle.HTTPVerb.PATCH, Url: { } url } && url.StartsWith("Patient?", StringComparison.Ordinal))
                    is { } patch)
            {
                // The person another source reported too goes back to what that source said (§2 "Retraction": what the hub
                // derived from the row goes with it), in the version read.
                var put = new Bundle.EntryComponent
                {
                    FullUrl = patch.FullUrl, Resource = restored,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Patient/{record.Id}", IfMatch = $"W/\"{record.Resource.Meta?.VersionId}\"" },
                };
                var restoring = new Bundle { Type = Bundle.BundleType.Transaction };
                restoring.Entry.AddRange(r.Transaction.Entry.Select(e => e == patch ? put : e));
                result.Add((r.Row, restoring));
                continue;
            }

            result.Add(r);
        }

        return result;
    }

    /// <summary>
    /// What a Patient that another source wrote too says without a deleted resident's rows: when township rows wrote its
    /// current version and it holds no other health-record number (no other resident row reports the person), the latest
    /// version another source wrote (the certificate, the HIS: a <c>meta.source</c> naming no batch row), with every
    /// identifier added since but the retracted number. Null when another source wrote last (nothing of the rows' is
    /// over it), when only township rows wrote it, when the record was merged away or records were merged into it since.
    /// What township rows said before that version and the other source left in place (a phone or address of another
    /// use) stays: the hub keeps no record of which source gave which element.
    /// </summary>
    private async Task<Patient?> OtherSourcesReportAsync(Patient current, string recordNo, CancellationToken ct)
    {
        static bool Township(Patient patient) => patient.Meta?.Source?.StartsWith(TownshipMapper.SourcePrefix, StringComparison.Ordinal) == true;
        if (current is not { Id: { } id } || current.Active == false || !Township(current)
            || current.Identifier.Any(i => i.System == Systems.HealthRecord && i.Value != recordNo)
            || !int.TryParse(current.Meta?.VersionId, CultureInfo.InvariantCulture, out var version))
        {
            return null;
        }

        for (var v = version - 1; v >= 1; v--)
        {
            if (await store.ReadVersionAsync("Patient", id, v, ct) is not { IsDeleted: false } stored || serializers.ParseStored(stored.Json) is not Patient earlier)
            {
                return null;
            }

            if (Township(earlier))
            {
                continue;
            }

            if (current.Link.Any(l => !earlier.Link.Any(e => e.Type == l.Type && e.Other?.Reference == l.Other?.Reference)))
            {
                // Records were merged into it since (MergedRecords): what they brought is not in that version.
                return null;
            }

            earlier.Meta = earlier.Meta?.Source is { } source ? new Meta { Source = source } : null;
            earlier.Identifier.AddRange(current.Identifier.Where(i => !earlier.Identifier.Any(e => e.System == i.System && e.Value == i.Value)).ToList());
            earlier.Identifier.RemoveAll(i => i.System == Systems.HealthRecord && i.Value == recordNo);
            earlier.Link = current.Link;
            earlier.Active = current.Active;
            return earlier;
        }

        return null;
    }

    /// <summary>
    /// Whether only township rows ever wrote a stored Patient: no hospital MRN on it (every HIS message names the patient
    /// by one, and a HIS message that only adds its identifiers keeps the stored <c>meta.source</c>), and every version's
    /// <c>meta.source</c> names a batch row (a certificate's version has none). Then retracting the resident retracts the
    /// record.
    /// </summary>
    private async Task<bool> WrittenByTownshipAloneAsync(Patient? patient, CancellationToken ct)
    {
        if (patient is not { Id: { } id } || patient.Identifier.Any(i => Systems.IsMrn(i.System))
            || !int.TryParse(patient.Meta?.VersionId, CultureInfo.InvariantCulture, out var version))
        {
            return false;
        }

        for (var v = version; v >= 1; v--)
        {
            var written = v == version ? patient
                : await store.ReadVersionAsync("Patient", id, v, ct) is { IsDeleted: false } stored ? serializers.ParseStored(stored.Json) as Patient : null;
            if (written?.Meta?.Source?.StartsWith(TownshipMapper.SourcePrefix, StringComparison.Ordinal) != true)
            {
                return false;
            }
        }

        return true;
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
    private static string RowState(TownshipRow row) => RowState(row.Table, row.Key);

    private static string RowState(string table, string key) => $"township-row:{table}:{key}";

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
    private async Task<Dictionary<string, (DateTimeOffset UpdatedAt, string? ContentHash, string? Supplied)>> AppliedAtAsync(
        IReadOnlyList<(string Table, string Key)> rows, CancellationToken ct)
    {
        var applied = new Dictionary<string, (DateTimeOffset, string?, string?)>(StringComparer.Ordinal);
        foreach (var page in rows.Distinct().Chunk(1000))
        {
            var states = await state.ReadStatesAsync([.. page.Select(r => RowState(r.Table, r.Key))], ct);
            var earlier = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (table, key) in page)
            {
                if (states.TryGetValue(RowState(table, key), out var value))
                {
                    // "updated_at content-hash [resident's filled elements]"; rows applied before the hash was kept have the time alone.
                    var parts = value.Split(' ', 3);
                    applied[RowState(table, key)] = (DateTimeOffset.Parse(parts[0], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                        parts.Length > 1 ? parts[1] : null, parts.Length > 2 ? parts[2] : null);
                }
                else
                {
                    earlier[Bundles.ResourceIds.From(table, key)] = RowState(table, key);
                }
            }

            foreach (var stored in await store.ReadManyAsync("Provenance", [.. earlier.Keys], ct))
            {
                if (serializers.ParseStored(stored.Json) is Provenance { Occurred: FhirDateTime occurred })
                {
                    applied[earlier[stored.Id]] = (occurred.ToDateTimeOffset(TimeSpan.Zero), null, null);
                }
            }
        }

        return applied;
    }

    /// <summary>The manifest's batch id keys a township batch (township-export.md §1); an unreadable batch is keyed by its bytes.</summary>
    private static string BatchId(byte[] zip)
    {
        try
        {
            // The manifest only: the rows are read once, when the stored batch is applied.
            if (TownshipBatchReader.FileFromZip(zip, "manifest.json") is { } bytes
                && TownshipBatchReader.ReadManifest(new Dictionary<string, byte[]> { ["manifest.json"] = bytes }) is { } manifest)
            {
                return manifest.BatchId;
            }
        }
        catch (InvalidDataException)
        {
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(zip));
    }
}
