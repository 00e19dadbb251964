using System.Net;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Hub.Referrals;
using FhirTask = Hl7.Fhir.Model.Task;
using S = Hl7.Fhir.Model.Task.TaskStatus;

namespace InteropHub.Hub.Tests.Referrals;

public sealed class ReferralStateMachineTests
{
    /// <summary>DOMAIN.md §2, row by row: from, to, who.</summary>
    public static TheoryData<S, S, ReferralParty> Legal => new()
    {
        { S.Requested, S.Received, ReferralParty.Receiver },
        { S.Requested, S.Accepted, ReferralParty.Receiver },
        { S.Received, S.Accepted, ReferralParty.Receiver },
        { S.Requested, S.Rejected, ReferralParty.Receiver },
        { S.Received, S.Rejected, ReferralParty.Receiver },
        { S.Accepted, S.InProgress, ReferralParty.Receiver },
        { S.InProgress, S.Completed, ReferralParty.Receiver },
        { S.InProgress, S.Failed, ReferralParty.Receiver },
        { S.Requested, S.Cancelled, ReferralParty.Requester },
        { S.Received, S.Cancelled, ReferralParty.Requester },
        { S.Accepted, S.Cancelled, ReferralParty.Requester },
    };

    [Theory]
    [MemberData(nameof(Legal))]
    public void Every_legal_transition_by_its_party_is_allowed(S from, S to, ReferralParty party)
    {
        ReferralStateMachine.Check(Referral(from), Complete(Referral(to)), party, ReferralDirection.Down);
        ReferralStateMachine.Check(Referral(from), Complete(Referral(to)), ReferralParty.Unknown, ReferralDirection.Up);
    }

    [Theory]
    [MemberData(nameof(Legal))]
    public void A_legal_transition_by_the_other_party_is_409(S from, S to, ReferralParty party)
    {
        var wrong = party == ReferralParty.Receiver ? ReferralParty.Requester : ReferralParty.Receiver;

        var e = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(Referral(from), Complete(Referral(to)), wrong, ReferralDirection.Down));

        Assert.Equal(HttpStatusCode.Conflict, e.Status);
        Assert.StartsWith("[referral-party]", e.Outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_transition_not_in_the_table_is_409()
    {
        var statuses = new[] { S.Requested, S.Received, S.Accepted, S.Rejected, S.InProgress, S.Completed, S.Failed, S.Cancelled };
        var legal = Legal.Select(row => ((S)row[0], (S)row[1])).ToHashSet();
        var refused = 0;
        foreach (var from in statuses)
        {
            foreach (var to in statuses.Where(t => t != from && !legal.Contains((from, t))))
            {
                var e = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(Referral(from), Complete(Referral(to)), ReferralParty.Unknown, ReferralDirection.Down));
                Assert.Equal(HttpStatusCode.Conflict, e.Status);
                Assert.StartsWith("[referral-transition]", e.Outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
                refused++;
            }
        }

        Assert.Equal((8 * 7) - 11, refused);
    }

    [Fact]
    public void A_referral_is_created_as_requested()
    {
        ReferralStateMachine.Check(null, Referral(S.Requested), ReferralParty.Requester, ReferralDirection.Up);
        var e = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(null, Referral(S.Accepted), ReferralParty.Requester, ReferralDirection.Up));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
    }

    [Fact]
    public void A_rejection_without_a_reason_is_422()
    {
        var e = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(Referral(S.Received), Referral(S.Rejected), ReferralParty.Receiver, ReferralDirection.Up));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Status);
        Assert.StartsWith("[referral-reject-reason]", e.Outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
        var rejected = Referral(S.Rejected);
        rejected.StatusReason = new CodeableConcept { Text = "床位已满" };
        ReferralStateMachine.Check(Referral(S.Received), rejected, ReferralParty.Receiver, ReferralDirection.Up);
    }

    [Fact]
    public void Completion_needs_a_summary_and_a_down_referral_also_a_care_plan()
    {
        var summaryOnly = Referral(S.Completed);
        summaryOnly.Output.Add(Output("DocumentReference/discharge-summary"));

        ReferralStateMachine.Check(Referral(S.InProgress), summaryOnly, ReferralParty.Receiver, ReferralDirection.Up);
        var noCarePlan = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(Referral(S.InProgress), summaryOnly, ReferralParty.Receiver, ReferralDirection.Down));
        Assert.StartsWith("[referral-complete-careplan]", noCarePlan.Outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
        var noSummary = Assert.ThrowsAny<FhirException>(() => ReferralStateMachine.Check(Referral(S.InProgress), Referral(S.Completed), ReferralParty.Receiver, ReferralDirection.Up));
        Assert.StartsWith("[referral-complete-summary]", noSummary.Outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public void An_update_that_keeps_the_status_is_not_a_transition()
    {
        ReferralStateMachine.Check(Referral(S.Completed), Referral(S.Completed), ReferralParty.Requester, ReferralDirection.Down);
    }

    [Fact]
    public void A_third_organisation_may_not_write_a_referral_task_and_an_anonymous_client_may_not_move_one()
    {
        var other = Assert.Throws<FhirException>(() => ReferralStateMachine.Check(Referral(S.Requested), Referral(S.Requested), ReferralParty.Other, ReferralDirection.Up));
        var anonymous = Assert.Throws<FhirException>(() => ReferralStateMachine.Check(Referral(S.Requested), Referral(S.Accepted), ReferralParty.Anonymous, ReferralDirection.Up));

        Assert.StartsWith("[referral-party]", other.Message, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, anonymous.Status);
    }

    private static FhirTask Referral(S status) => new()
    {
        Status = status,
        Intent = FhirTask.TaskIntent.Order,
        Requester = new ResourceReference("Organization/QX2110026"),
        Owner = new ResourceReference("Organization/QX2100012"),
    };

    /// <summary>Adds what the target status requires, so a test about another rule is not stopped by this one.</summary>
    private static FhirTask Complete(FhirTask task)
    {
        task.StatusReason = new CodeableConcept { Text = "理由" };
        task.Output.Add(Output("DocumentReference/summary"));
        task.Output.Add(Output("CarePlan/follow-up"));
        return task;
    }

    private static FhirTask.OutputComponent Output(string reference) => new()
    {
        Type = new CodeableConcept { Text = "referral output" },
        Value = new ResourceReference(reference),
    };
}
