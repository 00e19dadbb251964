using Hl7.Fhir.Model;
using InteropHub.Adapters.BirthCertificate;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Mapping;
using InteropHub.Adapters.Identity;
using InteropHub.Adapters.Township;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Errors;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// Birth certificates (birth-certificate.md): a stored document applied certificate by certificate; reissues and
/// corrections.
/// </summary>
public sealed partial class IngestPipeline
{
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
                    if (late is null)
                    {
                        await WithdrawUndeclaredFatherAsync(accepted.Transaction, ct);
                    }

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

    /// <summary>
    /// A correction of the father that leaves none declared (<see cref="UndeclaredFather"/>): the father of record is
    /// withdrawn (active false) in the certificate's transaction, If-Match on the version read (a write in between fails
    /// the certificate, kept for a replay).
    /// </summary>
    private async Task WithdrawUndeclaredFatherAsync(Bundle transaction, CancellationToken ct)
    {
        if (transaction.Annotations(typeof(UndeclaredFather)).OfType<UndeclaredFather>().FirstOrDefault() is not { } father
            || await store.ReadAsync("RelatedPerson", father.Id, ct) is not { IsDeleted: false } stored
            || serializers.ParseStored(stored.Json) is not RelatedPerson { Active: true })
        {
            return;
        }

        var url = $"RelatedPerson/{father.Id}";
        transaction.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = Bundles.TransactionBuilder.Urn(url + "#withdraw"),
            Resource = Bundles.FhirValues.FhirPathPatch("RelatedPerson.active", new FhirBoolean(false)),
            Request = new Bundle.RequestComponent
            {
                Method = Bundle.HTTPVerb.PATCH, Url = url, IfMatch = $"W/\"{stored.VersionId.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"",
            },
        });
    }

    private async Task<int?> StoredRecordVersionAsync(string number, CancellationToken ct) =>
        await store.ReadAsync("DocumentReference", Bundles.ResourceIds.From(number), ct) is { IsDeleted: false } stored
        && serializers.ParseStored(stored.Json) is DocumentReference document
        && document.GetExtensionValue<Integer>(BirthCertificateMapper.RecordVersionExtension)?.Value is { } version
            ? version
            : null;
}
