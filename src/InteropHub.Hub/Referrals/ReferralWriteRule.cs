using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Hub.Referrals;

/// <summary>
/// Enforces two-way referral (DOMAIN.md §2) on every write, whatever path it takes (REST, transaction, adapter):
/// a referral ServiceRequest may only go to a partner organisation of the requester, and a Task whose focus is a
/// referral ServiceRequest follows <see cref="ReferralStateMachine"/>, moved by the right party.
/// </summary>
public sealed class ReferralWriteRule(FhirSerializers serializers) : IWriteRule
{
    /// <summary>SNOMED CT 3457005 Patient referral: the ServiceRequest category that marks a referral.</summary>
    public const string ReferralCategorySystem = "http://snomed.info/sct";
    public const string ReferralCategoryCode = "3457005";

    /// <summary>The local category saying which way a referral goes (UP 上转 / DOWN 下转).</summary>
    public const string DirectionSystem = "urn:interophub:cs:qxref";

    public const string PartnerExtension = "https://interophub.dev/fhir/StructureDefinition/referral-partner";

    public async System.Threading.Tasks.Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        switch (next)
        {
            case ServiceRequest request when IsReferral(request):
                await CheckPartnerAsync(session, request, ct);
                break;
            case FhirTask task:
                await CheckTaskAsync(session, task, previous, ct);
                break;
        }
    }

    internal static bool IsReferral(ServiceRequest request) =>
        request.Category.SelectMany(c => c.Coding).Any(c => c.System == ReferralCategorySystem && c.Code == ReferralCategoryCode);

    internal static ReferralDirection Direction(ServiceRequest request) =>
        request.Category.SelectMany(c => c.Coding).Any(c => c.System == DirectionSystem && string.Equals(c.Code, "DOWN", StringComparison.OrdinalIgnoreCase))
            ? ReferralDirection.Down
            : ReferralDirection.Up;

    private async System.Threading.Tasks.Task CheckPartnerAsync(IWriteSession session, ServiceRequest request, CancellationToken ct)
    {
        var from = OrganizationId(request.Requester?.Reference);
        var to = request.Performer.Select(p => OrganizationId(p.Reference)).FirstOrDefault(id => id is not null);
        if (from is null || to is null)
        {
            // Practitioner requesters and unaddressed referrals carry no organisation pair to check.
            return;
        }

        var stored = await session.ReadCurrentAsync("Organization", from, ct);
        var partners = stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is Organization organization
            ? organization.Extension.Where(e => e.Url == PartnerExtension).Select(e => (e.Value as ResourceReference)?.Reference).ToHashSet(StringComparer.Ordinal)
            : [];
        if (!partners.Contains($"Organization/{to}"))
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-partner] Organization/{from} has no referral agreement with Organization/{to}: referrals go only to partner organisations " +
                $"(extension {PartnerExtension} on the requester).", "ServiceRequest.performer");
        }
    }

    private async System.Threading.Tasks.Task CheckTaskAsync(IWriteSession session, FhirTask task, StoredResource? previous, CancellationToken ct)
    {
        var focus = task.Focus?.Reference;
        if (focus is null || !focus.StartsWith("ServiceRequest/", StringComparison.Ordinal))
        {
            return;
        }

        var stored = await session.ReadCurrentAsync("ServiceRequest", focus["ServiceRequest/".Length..], ct);
        if (stored is not { IsDeleted: false } || serializers.ParseStored(stored.Json) is not ServiceRequest request || !IsReferral(request))
        {
            return;
        }

        var before = previous is { IsDeleted: false } ? serializers.ParseStored(previous.Json) as FhirTask : null;
        var direction = Direction(request);
        ReferralStateMachine.Check(before, task, Party(task), direction);
        if (direction == ReferralDirection.Down && task.Status == FhirTask.TaskStatus.Completed && before?.Status != FhirTask.TaskStatus.Completed)
        {
            await CheckFollowUpCarePlanAsync(session, task, ct);
        }
    }

    /// <summary>
    /// A completed down-referral hands the patient to the receiving township's team (DOMAIN.md §2): one CarePlan of
    /// Task.output must exist, be about the referred patient and name in <c>careTeam</c> a team of the receiving
    /// organisation, the family-doctor team that then finds it (<c>CarePlan?care-team=…</c>).
    /// </summary>
    private async System.Threading.Tasks.Task CheckFollowUpCarePlanAsync(IWriteSession session, FhirTask task, CancellationToken ct)
    {
        var problems = new List<string>();
        foreach (var reference in task.Output.Select(o => (o.Value as ResourceReference)?.Reference).OfType<string>()
            .Where(r => r.StartsWith("CarePlan/", StringComparison.Ordinal)))
        {
            var stored = await session.ReadCurrentAsync("CarePlan", reference["CarePlan/".Length..], ct);
            if (stored is not { IsDeleted: false } || serializers.ParseStored(stored.Json) is not CarePlan plan)
            {
                problems.Add($"{reference} does not exist");
                continue;
            }

            if (plan.Subject?.Reference != task.For?.Reference)
            {
                problems.Add($"{reference} is about {plan.Subject?.Reference ?? "nobody"}, not {task.For?.Reference}");
                continue;
            }

            foreach (var team in plan.CareTeam.Select(t => t.Reference).OfType<string>().Where(r => r.StartsWith("CareTeam/", StringComparison.Ordinal)))
            {
                if (await session.ReadCurrentAsync("CareTeam", team["CareTeam/".Length..], ct) is { IsDeleted: false } storedTeam
                    && serializers.ParseStored(storedTeam.Json) is CareTeam careTeam
                    && careTeam.ManagingOrganization.Any(o => o.Reference == task.Owner?.Reference))
                {
                    return;
                }
            }

            problems.Add($"{reference} names no care team of {task.Owner?.Reference} in careTeam");
        }

        if (problems.Count > 0)
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-complete-careplan] The follow-up CarePlan of a down-referral must exist, be about the referred patient and name a care " +
                $"team of the receiving organisation: {string.Join("; ", problems)}.", "Task.output");
        }
    }

    private static ReferralParty Party(FhirTask task)
    {
        var caller = CallerContext.Organization;
        if (caller is null)
        {
            return ReferralParty.Unknown;
        }

        if (caller == task.Owner?.Reference)
        {
            return ReferralParty.Receiver;
        }

        return caller == task.Requester?.Reference ? ReferralParty.Requester : ReferralParty.Other;
    }

    private static string? OrganizationId(string? reference) =>
        reference is not null && reference.StartsWith("Organization/", StringComparison.Ordinal) ? reference["Organization/".Length..] : null;
}
