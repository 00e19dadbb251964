using System.Collections;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// ADT^A40 (his-hl7v2.md §5): after the merge every record of the retired patient belongs to the survivor. Before the
/// merge transaction runs, each resource in the retired Patient's compartment is added to it as an update (If-Match on
/// the version read) whose references to the retired Patient point at the survivor's entry, so the records move in
/// the same transaction as the merge itself, or not at all.
/// </summary>
public sealed class MergedRecords(IResourceStore store, SearchParser parser, FhirSerializers serializers, TimeProvider clock)
{
    /// <summary>Who did what stays as it was recorded: provenance and audit trails are not rewritten.</summary>
    private static readonly HashSet<string> Untouched = new(StringComparer.Ordinal) { "Patient", "Provenance", "AuditEvent" };

    private readonly Lazy<IReadOnlyList<string>> _types = new(() =>
        ResourceTypes.All.Where(t => !Untouched.Contains(t)
            && parser.Registry.For(t).Values.Any(p => p.Type == SearchParamType.Reference && p.Targets.Contains("Patient"))).ToList());

    /// <summary>Adds the moves to <paramref name="transaction"/>, whose entries are the retired Patient and the survivor.</summary>
    public async System.Threading.Tasks.Task AddMovesAsync(Bundle transaction, CancellationToken ct)
    {
        var retiredEntry = transaction.Entry.FirstOrDefault(e => e.Resource is Patient { Active: false } p && p.Link.Any(l => l.Type == Patient.LinkType.ReplacedBy));
        var survivorEntry = transaction.Entry.FirstOrDefault(e => e.Resource is Patient { Active: true } p && p.Link.Any(l => l.Type == Patient.LinkType.Replaces));
        if (retiredEntry?.Request?.Url is not { } url || survivorEntry?.FullUrl is not { } survivor)
        {
            return;
        }

        var found = await store.FindAsync("Patient", parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", url.Split('?', 2)[1])), null, 2, ct);
        if (found.Count != 1)
        {
            // Unknown: the merge's precondition refuses it. Ambiguous: its conditional update does.
            return;
        }

        // The survivor is matched on its MRN alone; an identifier of its PID (an ID number) that a third record holds
        // makes the persons ambiguous, which the sender must resolve: refused as a conditional update's 412 would be.
        var survivorMatch = survivorEntry.Request?.Url is { } survivorUrl
            ? await store.FindAsync("Patient", parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", survivorUrl.Split('?', 2)[1])), null, 2, ct)
            : [];
        var linking = ((Patient)survivorEntry.Resource!).Identifier.Where(i => i.System is not null && i.Value is not null && !Identity.Systems.IsMrn(i.System)).ToList();
        if (linking.Count > 0)
        {
            var criteria = Bundles.Criteria.Identifier(linking);
            var holders = await store.FindAsync("Patient", parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", criteria)), null, 10, ct);
            if (holders.Any(h => h.Id != found[0].Id && survivorMatch.All(m => m.Id != h.Id)))
            {
                throw new FhirException(System.Net.HttpStatusCode.PreconditionFailed, OperationOutcome.IssueType.MultipleMatches,
                    $"Patient?{criteria} matches a record other than the two being merged");
            }
        }

        if (survivorMatch is [var same] && same.Id == found[0].Id)
        {
            // Both MRNs are on one Patient already (an ID number linked them): it is the survivor, keeping what it holds,
            // and the retired MRN becomes a record of its own that names it, so a later message with that MRN is refused.
            var id = Bundles.ResourceIds.From("retired-mrn", url.Split('?', 2)[1]);
            retiredEntry.Resource!.Id = id;
            retiredEntry.Request.Url = $"Patient/{id}";
            return;
        }

        await MoveAsync(transaction, [found[0].Id], survivorMatch is [var kept] ? kept.Id : null, survivor, ct);
    }

    /// <summary>
    /// Identity linking (legacy README, "Linking persons across the three systems"): identifiers that one message gives
    /// one person and that two or more stored Patients hold between them (an MRN on the HIS's record, the ID number on
    /// the township's, a certificate number and its reissue) say that those Patients are one person. Unless their
    /// records disagree (<see cref="Disagree"/>), the merge is returned as a transaction of its own: the Patient created
    /// first survives with every identifier and what it lacks of the others; each other one is retired (inactive,
    /// replaced-by the survivor, its identifiers gone to the survivor so that they name one Patient again) and its records
    /// move to the survivor as an A40's do. Null when no Patient of the message names several stored ones, or they disagree
    /// or one was retired already: the message is then refused as before, for the sender to resolve.
    /// </summary>
    public async System.Threading.Tasks.Task<Bundle?> SamePersonAsync(Bundle message, CancellationToken ct)
    {
        foreach (var entry in message.Entry)
        {
            // A conditional update's criteria, or a conditional create's.
            var criteria = entry switch
            {
                { Resource: Patient, Request: { Method: Bundle.HTTPVerb.PUT, Url: { } url } } when url.StartsWith("Patient?", StringComparison.Ordinal) => url.Split('?', 2)[1],
                { Resource: Patient, Request: { Method: Bundle.HTTPVerb.POST, IfNoneExist: { Length: > 0 } ifNoneExist } } => ifNoneExist,
                _ => null,
            };
            if (criteria is null || entry.Resource is not Patient sent)
            {
                continue;
            }

            var found = await store.FindAsync("Patient", parser.ParseCriteria("Patient", SearchParser.SplitQueryString("Patient", criteria)), null, 10, ct);
            if (found.Count < 2)
            {
                continue;
            }

            var stored = await store.ReadManyAsync("Patient", found.Select(f => f.Id).ToList(), ct);
            var patients = stored.Where(s => !s.IsDeleted).Select(s => (Stored: s, Patient: (Patient)serializers.ParseStored(s.Json))).ToList();
            if (patients.Count != found.Count || patients.Any(p => p.Patient.Active == false || p.Patient.Link.Any(l => l.Type == Patient.LinkType.ReplacedBy))
                || Disagree([sent, .. patients.Select(p => p.Patient)]))
            {
                return null;
            }

            var first = found.MinBy(f => f.Rid)!.Id;
            var survivor = patients.Single(p => p.Stored.Id == first);
            var merge = new Bundle { Type = Bundle.BundleType.Transaction };
            // Who merged them and why (DOMAIN.md: every adapter write carries a Provenance).
            var shared = sent.Identifier.Where(i => patients.Any(p => p.Patient.Identifier.Any(k => k.System == i.System && k.Value == i.Value)))
                .Select(i => $"{i.System}|{i.Value}").ToList();
            var provenance = new Provenance
            {
                Target = [.. patients.Select(p => new ResourceReference($"Patient/{p.Stored.Id}"))],
                Recorded = clock.GetUtcNow(),
                Activity = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "UPDATE", "revise", "identity link: records of one person merged"),
                Reason = [new CodeableConcept { Text = $"one message names them as one person: {string.Join(", ", shared)}" }],
                Agent =
                [
                    new Provenance.AgentComponent
                    {
                        Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"),
                        Who = new ResourceReference { Display = "InteropHub identity linking (legacy README, linking rules)" },
                    },
                ],
            };
            foreach (var (retiredStored, retired) in patients.Where(p => p.Stored.Id != first))
            {
                survivor.Patient.Identifier.AddRange(retired.Identifier.Where(i => !survivor.Patient.Identifier.Any(k => k.System == i.System && k.Value == i.Value)));
                // What only the retired record says is the person's too: its extensions of other kinds (a newborn's record
                // key, its birthplace), phone numbers and addresses the survivor lacks, and the elements it leaves empty.
                survivor.Patient.Extension.AddRange(retired.Extension.Where(e => !survivor.Patient.Extension.Any(k => k.Url == e.Url)));
                survivor.Patient.Telecom.AddRange(retired.Telecom.Where(t => !survivor.Patient.Telecom.Any(k => k.Value == t.Value)));
                survivor.Patient.Address.AddRange(retired.Address.Where(a => !survivor.Patient.Address.Any(k => a.IsExactly(k))));
                UnsentElements.Keep(survivor.Patient, retired);
                survivor.Patient.Link.Add(new Patient.LinkComponent { Other = new ResourceReference($"Patient/{retiredStored.Id}"), Type = Patient.LinkType.Replaces });
                retired.Active = false;
                retired.Identifier = [];
                retired.Link = [new Patient.LinkComponent { Other = new ResourceReference($"Patient/{first}"), Type = Patient.LinkType.ReplacedBy }];
                merge.Entry.Add(new Bundle.EntryComponent
                {
                    FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                    Resource = retired,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Patient/{retiredStored.Id}", IfMatch = retiredStored.ETag },
                });
            }

            merge.Entry.Insert(0, new Bundle.EntryComponent
            {
                FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                Resource = survivor.Patient,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Patient/{first}", IfMatch = survivor.Stored.ETag },
            });
            await MoveAsync(merge, [.. patients.Where(p => p.Stored.Id != first).Select(p => p.Stored.Id)], first, $"Patient/{first}", ct);
            merge.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                Resource = provenance,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Provenance" },
            });

            return merge;
        }

        return null;
    }

    /// <summary>Identifiers a person has one value of: the ID number, the health record number, the newborn key, the resident health card, one MRN per institution.</summary>
    private static bool SingleValued(string system) =>
        system is Identity.Systems.ResidentId or Identity.Systems.HealthRecord or Identity.Systems.NewbornKey or Identity.Systems.HealthCard
        || Identity.Systems.IsMrn(system);

    /// <summary>Two of the records (or the message) have different values of an identifier a person has only one of: they are not one person.</summary>
    private static bool Disagree(IReadOnlyList<Patient> records)
    {
        // Two current birth certificate numbers are two children, unless the message itself names one of them as the
        // number its reissue replaces (records[0] is the message's Patient).
        var replaced = records[0].Identifier.Where(i => i.System == Identity.Systems.BirthCertificate && i.Use == Identifier.IdentifierUse.Old).Select(i => i.Value).ToHashSet(StringComparer.Ordinal);
        if (records.SelectMany(r => r.Identifier).Where(i => i.System == Identity.Systems.BirthCertificate && i.Use != Identifier.IdentifierUse.Old && !replaced.Contains(i.Value))
            .Select(i => i.Value).Distinct(StringComparer.Ordinal).Count() > 1)
        {
            return true;
        }

        var values = records.Select(r => r.Identifier.Where(i => i.System is { } system && i.Value is not null && SingleValued(system))
            .ToLookup(i => i.System!, i => i.Value!.ToUpperInvariant(), StringComparer.Ordinal)).ToList();
        return values.SelectMany(v => v.Select(g => g.Key)).Distinct(StringComparer.Ordinal).Any(system =>
        {
            var held = values.Where(v => v.Contains(system)).Select(v => v[system].ToHashSet(StringComparer.Ordinal)).ToList();
            return held.Any(a => held.Any(b => !a.Overlaps(b)));
        });
    }

    /// <summary>
    /// Adds to <paramref name="transaction"/> the moves of every record of the Patients <paramref name="retiredIds"/> to
    /// <paramref name="survivor"/> (its reference in the transaction). A dose the survivor (<paramref name="survivorId"/>,
    /// when stored) or an earlier moved record already has is merged into that one instead (his-hl7v2.md §5: one
    /// Immunization per person, vaccine and date), and each dose kept is written once.
    /// </summary>
    private async System.Threading.Tasks.Task MoveAsync(Bundle transaction, IReadOnlyList<string> retiredIds, string? survivorId, string survivor, CancellationToken ct)
    {
        // The doses the person keeps: the survivor's (ETag: written at the end if they changed) and those moved (their PUT is in the transaction).
        var kept = new List<(Immunization Dose, string? ETag, int Identifiers)>();
        var rewritten = new HashSet<Immunization>(ReferenceEqualityComparer.Instance);
        if (survivorId is not null)
        {
            await foreach (var stored in CompartmentAsync("Immunization", survivorId, ct))
            {
                var dose = (Immunization)serializers.ParseStored(stored.Json);
                kept.Add((dose, stored.ETag, dose.Identifier.Count));
            }
        }

        foreach (var retiredId in retiredIds)
        {
            var retired = $"Patient/{retiredId}";
            foreach (var type in _types.Value)
            {
                await foreach (var stored in CompartmentAsync(type, retiredId, ct))
                {
                    var resource = serializers.ParseStored(stored.Json);
                    Repoint(resource, retired, survivor);
                    if (resource is Immunization dose && kept.FirstOrDefault(d => SameDose(d.Dose, dose)) is { Dose: not null } held)
                    {
                        // The person has this dose already: it keeps its id and takes the moved one's identifiers, and the
                        // moved one goes. What it says is the better report's: a first-hand one over a transcription, else
                        // the later one (a dose's status is its last report's).
                        var identifiers = held.Dose.Identifier.Concat(dose.Identifier.Where(i => !held.Dose.Identifier.Any(k => k.System == i.System && k.Value == i.Value))).ToList();
                        if (Better(dose, held.Dose))
                        {
                            UnsentElements.KeepAll(held.Dose, dose);
                            rewritten.Add(held.Dose);
                        }

                        held.Dose.Identifier = identifiers;
                        transaction.Entry.Add(new Bundle.EntryComponent
                        {
                            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.DELETE, Url = $"{type}/{stored.Id}", IfMatch = stored.ETag },
                        });
                        continue;
                    }

                    if (resource is Immunization moved)
                    {
                        kept.Add((moved, null, moved.Identifier.Count));
                    }

                    transaction.Entry.Add(new Bundle.EntryComponent
                    {
                        FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                        Resource = resource,
                        Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"{type}/{stored.Id}", IfMatch = stored.ETag },
                    });
                }
            }
        }

        foreach (var (dose, etag, _) in kept.Where(d => d.ETag is not null && (d.Dose.Identifier.Count > d.Identifiers || rewritten.Contains(d.Dose))))
        {
            transaction.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"urn:uuid:{Guid.NewGuid()}",
                Resource = dose,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Immunization/{dose.Id}", IfMatch = etag },
            });
        }
    }

    /// <summary>
    /// In the merge's transaction, once it holds its locks (<see cref="Fhir.Bundles.BundleRequest.AfterLocks"/>): a record of a
    /// retired Patient that the merge does not move (written since its compartment was read) fails the merge with 409,
    /// and the merge is read again. A writer that commits between this check and the merge's commit is not seen.
    /// </summary>
    public async System.Threading.Tasks.Task CheckNothingLeftAsync(IWriteSession session, IReadOnlyList<Bundle.EntryComponent> entries, CancellationToken ct)
    {
        var retired = entries.Select(e => e.Resource).OfType<Patient>().Where(p => p.Active == false && p.Link.Any(l => l.Type == Patient.LinkType.ReplacedBy))
            .Select(p => p.Id).OfType<string>().ToList();
        var written = entries.Select(e => e.Request?.Url).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var id in retired)
        {
            foreach (var type in _types.Value)
            {
                if ((await session.FindAsync(type, Compartment(type, id), 1000, ct)).FirstOrDefault(m => !written.Contains($"{type}/{m.Id}")) is { } left)
                {
                    throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                        $"{type}/{left.Id} was written for Patient/{id} while its merge was prepared");
                }
            }
        }
    }

    /// <summary>The resources of a type in a Patient's compartment, as search criteria.</summary>
    private SearchCriteria Compartment(string type, string patientId) =>
        Compartments.Restrict(parser.ParseCriteria(type, []), new ResourceKey("Patient", patientId), parser.Registry);

    /// <summary>The stored resources of a type in a Patient's compartment, a page at a time.</summary>
    private async IAsyncEnumerable<StoredResource> CompartmentAsync(string type, string patientId,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var criteria = Compartment(type, patientId);
        long? after = null;
        while (await store.FindAsync(type, criteria, after, 100, ct) is { Count: > 0 } matches)
        {
            foreach (var stored in await store.ReadManyAsync(type, matches.Select(m => m.Id).ToList(), ct))
            {
                yield return stored;
            }

            after = matches[^1].Rid;
        }
    }

    /// <summary>Whether <paramref name="moved"/> is the better report of a dose than <paramref name="held"/>: first hand over a transcription, else the later written.</summary>
    private static bool Better(Immunization moved, Immunization held) =>
        (moved.PrimarySource == true) != (held.PrimarySource == true)
            ? moved.PrimarySource == true
            : (moved.Meta?.LastUpdated ?? DateTimeOffset.MinValue) > (held.Meta?.LastUpdated ?? DateTimeOffset.MinValue);

    /// <summary>One vaccine (a coding in common) on one day.</summary>
    private static bool SameDose(Immunization a, Immunization b) =>
        a.Occurrence is FhirDateTime { Value.Length: >= 10 } at && b.Occurrence is FhirDateTime { Value.Length: >= 10 } bt && at.Value[..10] == bt.Value[..10]
        && a.VaccineCode?.Coding.Any(x => b.VaccineCode?.Coding.Any(y => x.System == y.System && x.Code == y.Code) == true) == true;

    private static void Repoint(Base node, string retired, string survivor)
    {
        if (node is ResourceReference { Reference: { } reference } link && reference == retired)
        {
            link.Reference = survivor;
        }

        foreach (var (_, child) in node.EnumerateElements())
        {
            if (child is Base element)
            {
                Repoint(element, retired, survivor);
            }
            else if (child is IEnumerable list and not string)
            {
                foreach (var item in list.OfType<Base>())
                {
                    Repoint(item, retired, survivor);
                }
            }
        }
    }
}
