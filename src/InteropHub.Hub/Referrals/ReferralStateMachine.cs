using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Hub.Referrals;

/// <summary>Which way a referral goes: up (township → hospital, 上转) or down (hospital → township, 下转).</summary>
public enum ReferralDirection
{
    Up,
    Down,
}

/// <summary>Who is changing a referral Task, relative to it.</summary>
public enum ReferralParty
{
    /// <summary>The caller's organisation is not known (no identity yet): the party rule is not applied.</summary>
    Unknown,

    /// <summary>The Task's requester organisation (the referring institution).</summary>
    Requester,

    /// <summary>The Task's owner organisation (the receiving institution).</summary>
    Receiver,

    /// <summary>Neither requester nor owner.</summary>
    Other,

    /// <summary>An HTTP client that did not name its organisation (X-Organization).</summary>
    Anonymous,
}

/// <summary>
/// The referral Task state machine of DOMAIN.md §2 (双向转诊). A change that breaks it is refused: an illegal
/// transition or a transition by the wrong party is 409 (it conflicts with the referral's state), a rejection
/// without statusReason or a completion without the required output is 422 (the request lacks what the rule
/// needs). Each refusal names its rule in the diagnostics so integrators can tell them apart.
/// </summary>
public static class ReferralStateMachine
{
    private static readonly Dictionary<(FhirTask.TaskStatus From, FhirTask.TaskStatus To), ReferralParty> Transitions = new()
    {
        [(FhirTask.TaskStatus.Requested, FhirTask.TaskStatus.Received)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Requested, FhirTask.TaskStatus.Accepted)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Accepted)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Requested, FhirTask.TaskStatus.Rejected)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Rejected)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Completed)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Failed)] = ReferralParty.Receiver,
        [(FhirTask.TaskStatus.Requested, FhirTask.TaskStatus.Cancelled)] = ReferralParty.Requester,
        [(FhirTask.TaskStatus.Received, FhirTask.TaskStatus.Cancelled)] = ReferralParty.Requester,
        [(FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.Cancelled)] = ReferralParty.Requester,
    };

    /// <summary>The statuses a referral may move to from <paramref name="from"/>, and who may move it.</summary>
    public static IEnumerable<(FhirTask.TaskStatus To, ReferralParty By)> NextFrom(FhirTask.TaskStatus from) =>
        Transitions.Where(t => t.Key.From == from).Select(t => (t.Key.To, t.Value));

    /// <summary>Throws a <see cref="FhirException"/> naming the broken rule when <paramref name="next"/> may not follow <paramref name="previous"/>.</summary>
    /// <param name="previous">The current version, or null when the Task is being created.</param>
    public static void Check(FhirTask? previous, FhirTask next, ReferralParty caller, ReferralDirection direction)
    {
        var to = next.Status ?? throw Refuse(HttpStatusCode.UnprocessableEntity, "referral-status", "A referral Task needs a status.");
        if (previous?.Status is not { } from)
        {
            if (to != FhirTask.TaskStatus.Requested)
            {
                throw Refuse(HttpStatusCode.UnprocessableEntity, "referral-starts-requested",
                    $"A referral Task starts as 'requested', not '{Code(to)}'.");
            }

            if (caller is ReferralParty.Other or ReferralParty.Receiver)
            {
                throw Refuse(HttpStatusCode.Conflict, "referral-party", "Only the referring organisation (Task.requester) makes a referral's Task.");
            }

            return;
        }

        if (caller == ReferralParty.Other)
        {
            throw Refuse(HttpStatusCode.Conflict, "referral-party",
                "A referral Task is written only by its referring (Task.requester) or receiving (Task.owner) organisation.");
        }

        if (caller == ReferralParty.Anonymous)
        {
            // Any change of a referral's Task over the API, a note as much as a move, is made by one of its two parties.
            throw new FhirException(HttpStatusCode.Forbidden, OperationOutcome.IssueType.Security,
                (from == to ? "[referral-caller] Changing a referral Task" : $"[referral-caller] Moving a referral from '{Code(from)}' to '{Code(to)}'")
                + " needs the caller's organisation: send X-Organization: Organization/{id}.",
                "X-Organization");
        }

        if (from == to)
        {
            if (to == FhirTask.TaskStatus.Completed && previous.Output.Count > 0)
            {
                // A completed referral keeps the summary (and follow-up plan) it was completed with.
                CheckCompletionOutput(next, direction);
            }

            return;
        }

        if (!Transitions.TryGetValue((from, to), out var party))
        {
            var allowed = string.Join(", ", NextFrom(from).Select(t => Code(t.To)));
            throw Refuse(HttpStatusCode.Conflict, "referral-transition",
                $"A referral cannot go from '{Code(from)}' to '{Code(to)}'" + (allowed.Length > 0 ? $"; from '{Code(from)}' it may go to: {allowed}." : $"; '{Code(from)}' is final."));
        }

        if (caller != ReferralParty.Unknown && caller != party)
        {
            throw Refuse(HttpStatusCode.Conflict, "referral-party",
                $"Only the {(party == ReferralParty.Receiver ? "receiving organisation (Task.owner)" : "referring organisation (Task.requester)")} may move a referral from '{Code(from)}' to '{Code(to)}'.");
        }

        if (to == FhirTask.TaskStatus.Rejected && !HasReason(next.StatusReason))
        {
            throw Refuse(HttpStatusCode.UnprocessableEntity, "referral-reject-reason", "A rejected referral needs Task.statusReason saying why.", "Task.statusReason");
        }

        if (to == FhirTask.TaskStatus.Completed)
        {
            CheckCompletionOutput(next, direction);
        }
    }

    /// <summary>Completion hands the patient back: a summary is required, and a follow-up CarePlan for a down-referral.</summary>
    private static void CheckCompletionOutput(FhirTask next, ReferralDirection direction)
    {
        var outputs = next.Output.Select(o => o.Value).OfType<ResourceReference>().Select(r => r.Reference ?? "").ToList();
        // DOMAIN.md §2: the output is the Encounter of the treatment, a discharge summary or a CarePlan; a summary is
        // a document (DocumentReference, Composition) or the treatment Encounter itself, which is what a HIS
        // completion (REF^I13 C) can point to.
        if (!outputs.Any(r => r.StartsWith("DocumentReference/", StringComparison.Ordinal) || r.StartsWith("Composition/", StringComparison.Ordinal)
            || r.StartsWith("Encounter/", StringComparison.Ordinal)))
        {
            throw Refuse(HttpStatusCode.UnprocessableEntity, "referral-complete-summary",
                "A completed referral needs a summary in Task.output: a reference to a DocumentReference, a Composition or the treatment Encounter.", "Task.output");
        }

        if (direction == ReferralDirection.Down && !outputs.Any(r => r.StartsWith("CarePlan/", StringComparison.Ordinal)))
        {
            throw Refuse(HttpStatusCode.UnprocessableEntity, "referral-complete-careplan",
                "A completed down-referral needs the follow-up CarePlan for the receiving team in Task.output.", "Task.output");
        }
    }

    private static bool HasReason(CodeableConcept? reason) =>
        reason is not null && (!string.IsNullOrWhiteSpace(reason.Text) || reason.Coding.Count > 0);

    private static FhirException Refuse(HttpStatusCode status, string rule, string message, string element = "Task.status") =>
        new(status, status == HttpStatusCode.Conflict ? OperationOutcome.IssueType.Conflict : OperationOutcome.IssueType.BusinessRule,
            $"[{rule}] {message}", element);

    internal static string Code(FhirTask.TaskStatus status) => Hl7.Fhir.Utility.EnumUtility.GetLiteral(status) ?? status.ToString();
}
