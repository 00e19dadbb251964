using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// One record per person across the sources: a person's lock (messages about one person apply in order), the linking
/// of records that are one person, and what a message keeps of what other sources wrote.
/// </summary>
public sealed partial class IngestPipeline
{
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

    /// <summary>
    /// The identifier of a message's patient that makes it clearly another person than a stored one: the resident ID
    /// number, or an MRN of one of <paramref name="institutions"/> (every institution when null), where the stored patient
    /// has one of that system too and none of the same value. An MRN both hold names the same patient, whatever else
    /// differs (an ID number the hub did not take, IdNumberOutcome).
    /// </summary>
    private static Identifier? AnotherPatient(Patient sent, Patient had, IReadOnlyCollection<string>? institutions = null)
    {
        static bool Holds(Patient patient, Identifier identifier) =>
            patient.Identifier.Any(h => h.System == identifier.System && h.Value == identifier.Value);

        if (sent.Identifier.Any(i => Systems.IsMrn(i.System) && Holds(had, i)))
        {
            return null;
        }

        return sent.Identifier.FirstOrDefault(i => i.System is { } system
            && (system == Systems.ResidentId || Systems.IsMrn(system) && (institutions is null || institutions.Any(o => Systems.Mrn(o) == system)))
            && had.Identifier.Any(h => h.System == system) && !Holds(had, i));
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
    /// identifier but one it clears (a birth certificate's newborn key that a correction made stale), and the use, type
    /// and period of one it sends bare; telecoms of a system and use, addresses of a use and names of a use or
    /// representation the message does not give (the same name sent again keeps the stored one's parts and use);
    /// extensions of a URL it does not give
    /// (ethnicity, registered poor, …); each single element it leaves empty (death, marital status, managing
    /// organisation, …); and the time of birth on a birth date it gives unchanged.
    /// </summary>
    /// <param name="cleared">What the message deleted with <c>""</c>: element names and extension URLs not to keep; and
    /// identifiers not to keep (<see cref="BirthCertificateMapper.ClearedIdentifier"/>).</param>
    private static void KeepWhatTheMessageLacks(Patient patient, Patient current, HashSet<string> cleared)
    {
        // An identifier sent again without its use, type or period keeps the stored one's: a certificate number the
        // reissue made old (birth-certificate.md §3) stays old when the township or the HIS names it.
        foreach (var sent in patient.Identifier)
        {
            if (current.Identifier.FirstOrDefault(i => i.System == sent.System && i.Value == sent.Value) is { } stored)
            {
                sent.Use ??= stored.Use;
                sent.Type ??= stored.Type;
                sent.Period ??= stored.Period;
            }
        }

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
}
