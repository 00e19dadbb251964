using Hl7.Fhir.Model;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Parsing;

namespace InteropHub.Adapters.His;

/// <summary>The idempotency key of an HIS message: (MSH-4, MSH-10) (his-hl7v2.md §1).</summary>
public sealed record HisMessageKey(string Facility, string ControlId);

/// <summary>What the HIS mapper made of one message: accepted with its transaction, or rejected with its reasons.</summary>
public abstract record HisOutcome(Hl7Message? Message, IReadOnlyList<HisIssue> Issues)
{
    public abstract AckCode AckCode { get; }

    /// <summary>Null when the MSH could not be read.</summary>
    public HisMessageKey? Key => Message is { ControlId.Length: > 0 } m ? new HisMessageKey(m.SendingFacility, m.ControlId) : null;
}

/// <summary>
/// The message maps to <see cref="Transaction"/> (a FHIR transaction Bundle whose last entry is
/// <see cref="Provenance"/>). <see cref="Preconditions"/> are the checks only the store can make (does the visit
/// exist, may the referral move to that state); the ingest pipeline evaluates them before it commits, and answers
/// AE with the precondition's reason and location when one fails. <see cref="Issues"/> holds warnings only.
/// </summary>
public sealed record HisAccepted(
    Hl7Message Acknowledged,
    Bundle Transaction,
    Provenance Provenance,
    IReadOnlyList<HisPrecondition> Preconditions,
    PatientMerge? Merge,
    string ContentHash,
    IReadOnlyList<HisIssue> Warnings) : HisOutcome(Acknowledged, Warnings)
{
    public override AckCode AckCode => AckCode.AA;

    /// <summary>
    /// The message's doses, in RXA order: the id given, its id under the patient's MRN key (the same when no person key
    /// is known), and the county vaccine code and day that make it one dose of the person (§5 VXU).
    /// </summary>
    public IReadOnlyList<(string Id, string MrnId, string Vaccine, DateOnly Date)> Doses { get; init; } = [];

    /// <summary>The MRN (of the sending institution) of the patient whose doses the message reports; null without doses.</summary>
    public Identifier? DosePatient { get; init; }
}

public sealed record HisRejected(Hl7Message? Rejected, AckCode Code, IReadOnlyList<HisIssue> Errors) : HisOutcome(Rejected, Errors)
{
    public override AckCode AckCode => Code;

    /// <summary>MSH-10 read from the first line of a message that could not be parsed (for MSA-2), else null.</summary>
    public string? UnreadControlId { get; init; }
}

/// <summary>A check against stored data that the pure mapper cannot make.</summary>
public abstract record HisPrecondition(Hl7Location Location, string Detail);

/// <summary>
/// A resource matching <see cref="Search"/> (e.g. <c>Encounter?identifier=…</c>) must already exist, otherwise the
/// message is rejected with <see cref="RejectionReason.UnknownReference"/>.
/// </summary>
public sealed record MustExist(string Search, Hl7Location Location, string Detail) : HisPrecondition(Location, Detail);

/// <summary>
/// A resource matching <see cref="Search"/> is expected to exist; when none does the message is still applied, with
/// a warning (e.g. a down-referral naming an up-referral the hub never received, his-hl7v2.md §4 RF1-11).
/// </summary>
public sealed record ShouldExist(string Search, Hl7Location Location, string Detail) : HisPrecondition(Location, Detail);

/// <summary>
/// The stored referral Task (<c>Task/{TaskId}</c>) must be in one of <see cref="AllowedFrom"/> (his-hl7v2.md §6),
/// otherwise <see cref="RejectionReason.InvalidTransition"/>. A missing Task is
/// <see cref="RejectionReason.UnknownReference"/> unless <see cref="MayBeAbsent"/> (a new I12). When
/// <see cref="KeepsStatus"/> is set (an I13 <c>P</c>, or an I12 for a referral that exists) the stored status is
/// kept instead of the one in the Bundle.
/// </summary>
public sealed record TaskTransition(string TaskId, IReadOnlyList<string> AllowedFrom, string To, bool KeepsStatus, bool MayBeAbsent,
    Hl7Location Location, string Detail) : HisPrecondition(Location, Detail);

/// <summary>ADT^A40: every record of <see cref="Retired"/> is to be moved to the surviving patient <see cref="Survivor"/>.</summary>
public sealed record PatientMerge(Identifier Retired, IReadOnlyList<Identifier> Survivor);
