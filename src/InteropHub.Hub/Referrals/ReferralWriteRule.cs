using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
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
            case ServiceRequest request when CallerContext.OverHttp && await HeldRequestAsync(session, previous, ct) is var (before, task):
                await CheckRequestUpdateAsync(session, before, task, request, ct);
                break;
            case ServiceRequest request when IsReferral(request) && !SameParties(request, previous):
                await CheckPartnerAsync(session, request, ct);
                break;
            case FhirTask task:
                await CheckTaskAsync(session, task, previous, ct);
                break;
        }
    }

    internal static bool IsReferral(ServiceRequest request) =>
        request.Category.SelectMany(c => c.Coding).Any(c => c.System == ReferralCategorySystem && c.Code == ReferralCategoryCode);

    /// <summary>The direction code the request states (UP, DOWN), or null when it states none.</summary>
    private static string? StatedDirection(ServiceRequest request) =>
        request.Category.SelectMany(c => c.Coding).FirstOrDefault(c => c.System == DirectionSystem && c.Code is { Length: > 0 })?.Code?.ToUpperInvariant();

    internal static ReferralDirection Direction(ServiceRequest request) =>
        request.Category.SelectMany(c => c.Coding).Any(c => c.System == DirectionSystem && string.Equals(c.Code, "DOWN", StringComparison.OrdinalIgnoreCase))
            ? ReferralDirection.Down
            : ReferralDirection.Up;

    /// <summary>
    /// The stored version names the same requester and performers: the pair was checked when the referral was made, and
    /// an agreement withdrawn since stops new referrals, not the updates of one under way (its completion, a revocation).
    /// </summary>
    private bool SameParties(ServiceRequest request, StoredResource? previous) =>
        previous is { IsDeleted: false } && serializers.ParseStored(previous.Json) is ServiceRequest before
        && before.Requester?.Reference == request.Requester?.Reference
        && before.Performer.Select(p => p.Reference).SequenceEqual(request.Performer.Select(p => p.Reference));

    private async System.Threading.Tasks.Task CheckPartnerAsync(IWriteSession session, ServiceRequest request, CancellationToken ct) =>
        await CheckPartnerAsync(session, request, OrganizationId(request.Requester?.Reference),
            request.Performer.Select(p => OrganizationId(p.Reference)).FirstOrDefault(id => id is not null), "ServiceRequest.performer", ct);

    /// <param name="from">The referring organisation: the request's requester, or (a practitioner requesting, as in the
    /// HIS's referrals) its Task's requester.</param>
    private async System.Threading.Tasks.Task CheckPartnerAsync(IWriteSession session, ServiceRequest request, string? from, string? to, string element,
        CancellationToken ct)
    {
        if (from is null || to is null)
        {
            // Unaddressed referrals carry no organisation pair to check.
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
                $"(extension {PartnerExtension} on the requester).", element);
        }

        if (CallerContext.OverHttp && stored is not null && await session.ReadCurrentAsync("Organization", to, ct) is { IsDeleted: false } receiver
            && serializers.ParseStored(receiver.Json) is Organization toOrganization
            && (Level(serializers.ParseStored(stored.Json) as Organization), Level(toOrganization)) is var (fromLevel, toLevel)
            && fromLevel is not null && toLevel is not null && fromLevel != toLevel
            && Direction(request) != (fromLevel == InstitutionLevel.Primary ? ReferralDirection.Up : ReferralDirection.Down))
        {
            // DOMAIN.md §2: up is from a primary institution to a hospital, down the way back. A client's referral saying
            // otherwise would be counted the wrong way by referral-metrics (HIS messages carry the sender's own category).
            var expected = fromLevel == InstitutionLevel.Primary ? "UP" : "DOWN";
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-direction] A referral from {(fromLevel == InstitutionLevel.Primary ? "a primary institution" : "a hospital")} Organization/{from} to " +
                $"{(toLevel == InstitutionLevel.Primary ? "a primary institution" : "a hospital")} Organization/{to} goes {expected} ({DirectionSystem}).",
                "ServiceRequest.category");
        }
    }

    private enum InstitutionLevel
    {
        Primary,
        Hospital,
    }

    /// <summary>
    /// By the WS 218 class on Organization.type: A a hospital; B, C, D a primary institution (基层医疗卫生机构); none when the
    /// organisation gives no class (the direction is then not checked).
    /// </summary>
    private static InstitutionLevel? Level(Organization? organization) =>
        organization?.Type.SelectMany(t => t.Coding).FirstOrDefault(c => c.System == Indicators.TownshipResidents.Ws218System && c.Code is { Length: > 0 })?.Code?[0] switch
        {
            'A' => InstitutionLevel.Hospital,
            'B' or 'C' or 'D' => InstitutionLevel.Primary,
            _ => null,
        };

    /// <summary>The stored referral ServiceRequest <paramref name="previous"/> and its Task, when the referral has one.</summary>
    private async Task<(ServiceRequest Request, FhirTask Task)?> HeldRequestAsync(IWriteSession session, StoredResource? previous, CancellationToken ct)
    {
        if (previous is not { IsDeleted: false, ResourceType: "ServiceRequest" } || serializers.ParseStored(previous.Json) is not ServiceRequest before || !IsReferral(before)
            || await session.FindAsync("Task", SearchCriteria.ParseQueryString("Task", $"focus=ServiceRequest/{previous.Id}"), 1, ct) is not [var held, ..]
            || (held.Current ?? await session.ReadCurrentAsync("Task", held.Id, ct)) is not { IsDeleted: false } current
            || serializers.ParseStored(current.Json) is not FhirTask task)
        {
            return null;
        }

        return (before, task);
    }

    /// <summary>
    /// A client's update of a referral's ServiceRequest once the referral has its Task: by one of the two parties; the
    /// referral, its direction, patient and parties stay (a referral elsewhere is a new referral), and its status follows
    /// the Task (revoked once cancelled, completed once completed: <see cref="WrittenAsync"/>), so the request and its
    /// Task never tell two stories. Notes, reasons and supporting information may change.
    /// </summary>
    private async System.Threading.Tasks.Task CheckRequestUpdateAsync(IWriteSession session, ServiceRequest before, FhirTask task, ServiceRequest next, CancellationToken ct)
    {
        if (SameButMeta(before, next))
        {
            // Sent again unchanged (a sync, a repeated import): it writes nothing, whoever sends it.
            return;
        }

        var party = await PartyAsync(session, task, ct);
        if (party == ReferralParty.Anonymous)
        {
            throw new FhirException(System.Net.HttpStatusCode.Forbidden, OperationOutcome.IssueType.Security,
                $"[referral-caller] Changing the request of the referral Task/{task.Id} needs the caller's organisation: send X-Organization: Organization/{{id}}.",
                "X-Organization");
        }

        if (party == ReferralParty.Other)
        {
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"[referral-party] The request of the referral Task/{task.Id} is written only by its referring ({task.Requester?.Reference}) or receiving ({task.Owner?.Reference}) organisation.",
                "ServiceRequest");
        }

        foreach (var (element, was, now) in new[]
        {
            ("ServiceRequest.category", $"{ReferralCategoryCode} {StatedDirection(before) ?? "(no direction)"}",
                IsReferral(next) ? $"{ReferralCategoryCode} {StatedDirection(next) ?? "(no direction)"}" : "none"),
            ("ServiceRequest.intent", before.Intent is { } intent ? Hl7.Fhir.Utility.EnumUtility.GetLiteral(intent) : null,
                next.Intent is { } nextIntent ? Hl7.Fhir.Utility.EnumUtility.GetLiteral(nextIntent) : null),
            ("ServiceRequest.subject", before.Subject?.Reference, next.Subject?.Reference),
            ("ServiceRequest.requester", before.Requester?.Reference, next.Requester?.Reference),
            ("ServiceRequest.performer", string.Join(", ", before.Performer.Select(p => p.Reference)), string.Join(", ", next.Performer.Select(p => p.Reference))),
        })
        {
            if (was != now)
            {
                throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                    $"[referral-parties] {element} of a referral's request does not change once it has its Task/{task.Id} (it is {(was is { Length: > 0 } ? was : "empty")}); " +
                    "a referral for another patient or institution is a new referral.", element);
            }
        }

        var follows = task.Status switch
        {
            // Refused, or attempted and failed: the referring organisation may withdraw the request (revoked) too.
            FhirTask.TaskStatus.Cancelled or FhirTask.TaskStatus.Rejected or FhirTask.TaskStatus.Failed => RequestStatus.Revoked,
            FhirTask.TaskStatus.Completed => RequestStatus.Completed,
            _ => before.Status,
        };
        if (next.Status != before.Status && next.Status != follows)
        {
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"[referral-request-status] The status of a referral's request follows its Task/{task.Id} ({(task.Status is { } status ? ReferralStateMachine.Code(status) : "no status")}): the referring organisation " +
                "cancels the Task, which revokes the request, and the receiving one completes it, which completes the request.", "ServiceRequest.status");
        }

        if (next.Status != before.Status && next.Status == RequestStatus.Revoked && party != ReferralParty.Requester)
        {
            // A refused or failed referral is withdrawn by the institution that made it, not by the one that refused it.
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"[referral-request-status] Only the referring organisation ({task.Requester?.Reference}) revokes the request of the referral Task/{task.Id}.",
                "ServiceRequest.status");
        }
    }

    /// <summary>
    /// A client's move of a referral's Task to cancelled or completed carries its ServiceRequest along (revoked, completed),
    /// in the same transaction; the HIS adapter maps the request's state from the message itself (his-hl7v2.md §6).
    /// </summary>
    public async System.Threading.Tasks.Task WrittenAsync(IWriteSession session, VersionWriter writer, Resource written, StoredResource? previous, CancellationToken ct)
    {
        if (!CallerContext.OverHttp || written is not FhirTask { Status: FhirTask.TaskStatus.Cancelled or FhirTask.TaskStatus.Completed } task
            || previous is { IsDeleted: false } && serializers.ParseStored(previous.Json) is FhirTask { Status: var was } && was == task.Status
            || task.Focus?.Reference is not { } focus || !focus.StartsWith("ServiceRequest/", StringComparison.Ordinal))
        {
            return;
        }

        var id = focus["ServiceRequest/".Length..];
        // After the Task's lock, out of the order a transaction takes its locks in (a HIS REF message: request, then
        // Task): given up rather than waited on, so the two cannot wait on each other; the write is then run again.
        await session.LockAllOrGiveUpAsync([VersionWriter.IdLock("ServiceRequest", id)], ct);
        if (await session.ReadCurrentAsync("ServiceRequest", id, ct) is not { IsDeleted: false } stored
            || serializers.ParseStored(stored.Json) is not ServiceRequest request || !IsReferral(request)
            || request.Status is not (RequestStatus.Active or RequestStatus.OnHold or RequestStatus.Draft))
        {
            return;
        }

        request.Status = task.Status == FhirTask.TaskStatus.Completed ? RequestStatus.Completed : RequestStatus.Revoked;
        await writer.SaveAsync(session, request, id, stored, "PUT", ct);
    }

    /// <summary>The two versions differ in meta (versionId, lastUpdated) at most.</summary>
    private static bool SameButMeta(DomainResource stored, DomainResource next)
    {
        var (a, b) = ((DomainResource)stored.DeepCopy(), (DomainResource)next.DeepCopy());
        a.Meta = b.Meta = null;
        return a.IsExactly(b);
    }

    /// <summary>
    /// A referral's Task: one per referral ServiceRequest, between the request's parties, which never change; it moves
    /// by <see cref="ReferralStateMachine"/>, judged by who the stored Task says the parties are (not by what the new
    /// version claims). Once a Task is a referral's, every later version is checked, so it cannot be turned into
    /// another Task's to escape the rules.
    /// </summary>
    private async System.Threading.Tasks.Task CheckTaskAsync(IWriteSession session, FhirTask task, StoredResource? previous, CancellationToken ct)
    {
        var before = previous is { IsDeleted: false } ? serializers.ParseStored(previous.Json) as FhirTask : null;
        var request = await ReferralOfAsync(session, before ?? task, ct);
        if (request is null || before is not null && SameButMeta(before, task))
        {
            // Not a referral's; or sent again unchanged, which writes nothing, whoever sends it.
            return;
        }

        if (before is not null && CallerContext.OverHttp)
        {
            // The adapters map each message whole (an I13 restates the parties); clients change states, not parties.
            CheckUnchanged(before, task);
        }
        else
        {
            await CheckNewTaskAsync(session, task, request, isNew: before is null, ct);
        }

        var direction = Direction(request);
        ReferralStateMachine.Check(before, task, await PartyAsync(session, before ?? task, ct), direction);
        if (task.Status is FhirTask.TaskStatus.Accepted or FhirTask.TaskStatus.Rejected or FhirTask.TaskStatus.InProgress or FhirTask.TaskStatus.Completed
            or FhirTask.TaskStatus.Failed or FhirTask.TaskStatus.Cancelled && task.BusinessStatus is { } business
            && business.Coding.RemoveAll(c => c.System == OverdueReferrals.BusinessStatusSystem && c.Code == OverdueReferrals.Overdue) > 0
            && business.Coding.Count == 0 && string.IsNullOrEmpty(business.Text))
        {
            // Answered or withdrawn: no longer waiting, so no longer overdue (a client echoing the flag back does not keep it).
            task.BusinessStatus = null;
        }
        if (task.Status == FhirTask.TaskStatus.Completed && (before?.Status != FhirTask.TaskStatus.Completed
            || !before.Output.Select(o => (o.Value as ResourceReference)?.Reference).SequenceEqual(task.Output.Select(o => (o.Value as ResourceReference)?.Reference))))
        {
            await CheckSummaryExistsAsync(session, task, ct);
            if (direction == ReferralDirection.Down)
            {
                await CheckFollowUpCarePlanAsync(session, task, ct);
            }
        }
    }

    /// <summary>The referral ServiceRequest a Task is the workflow of, or null when its focus is none.</summary>
    private async Task<ServiceRequest?> ReferralOfAsync(IWriteSession session, FhirTask task, CancellationToken ct)
    {
        var focus = task.Focus?.Reference;
        if (focus is null || !focus.StartsWith("ServiceRequest/", StringComparison.Ordinal))
        {
            return null;
        }

        var stored = await session.ReadCurrentAsync("ServiceRequest", focus["ServiceRequest/".Length..], ct);
        return stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is ServiceRequest request && IsReferral(request) ? request : null;
    }

    /// <summary>Whose referral it is, for whom and about which request does not change once the Task exists.</summary>
    private static void CheckUnchanged(FhirTask before, FhirTask next)
    {
        foreach (var (element, was, now) in new[]
        {
            ("Task.focus", before.Focus?.Reference, next.Focus?.Reference),
            ("Task.for", before.For?.Reference, next.For?.Reference),
            ("Task.requester", before.Requester?.Reference, next.Requester?.Reference),
            ("Task.owner", before.Owner?.Reference, next.Owner?.Reference),
        })
        {
            if (was != now)
            {
                throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                    $"[referral-parties] {element} of a referral Task does not change (it is {was ?? "empty"}); a referral to another institution is a new referral.",
                    element);
            }
        }
    }

    /// <summary>A referral has one Task, made between the parties its ServiceRequest names.</summary>
    /// <param name="isNew">No Task was stored: the referral is being made (an adapter's later messages restate the parties
    /// of one under way, whose agreement was checked then).</param>
    private async System.Threading.Tasks.Task CheckNewTaskAsync(IWriteSession session, FhirTask task, ServiceRequest request, bool isNew, CancellationToken ct)
    {
        var focus = task.Focus!.Reference!;
        var others = (await session.FindAsync("Task", SearchCriteria.ParseQueryString("Task", $"focus={focus}"), 2, ct)).Where(o => o.Id != task.Id).ToList();
        if (others.Count > 0)
        {
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Duplicate,
                $"[referral-one-task] {focus} already has its Task (Task/{others[0].Id}).", "Task.focus");
        }

        if (isNew && request.Subject?.Reference is { } patient && task.For?.Reference != patient)
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-parties] The Task of {focus} is for {patient}, the referral's patient, not {task.For?.Reference ?? "nobody"}.", "Task.for");
        }

        if (request.Requester?.Reference is { } requester && requester.StartsWith("Organization/", StringComparison.Ordinal)
            && task.Requester?.Reference != requester)
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-parties] The Task of {focus} is requested by {requester}, the referral's requester, not {task.Requester?.Reference ?? "nobody"}.", "Task.requester");
        }

        var performers = request.Performer.Select(p => p.Reference).OfType<string>().Where(r => r.StartsWith("Organization/", StringComparison.Ordinal)).ToList();
        if (performers.Count > 0 && !performers.Contains(task.Owner?.Reference ?? ""))
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-parties] The Task of {focus} is owned by the organisation it refers to ({string.Join(" or ", performers)}), not {task.Owner?.Reference ?? "nobody"}.", "Task.owner");
        }

        if (isNew && OrganizationId(request.Requester?.Reference) is null)
        {
            // A practitioner requested it (the HIS's referrals): the pair of organisations is the Task's.
            await CheckPartnerAsync(session, request, OrganizationId(task.Requester?.Reference), OrganizationId(task.Owner?.Reference), "Task.owner", ct);
        }
    }

    /// <summary>The summary a completion names (DOMAIN.md §2) must be stored, or be written in the same transaction before it.</summary>
    private static async System.Threading.Tasks.Task CheckSummaryExistsAsync(IWriteSession session, FhirTask task, CancellationToken ct)
    {
        var summaries = task.Output.Select(o => (o.Value as ResourceReference)?.Reference).OfType<string>()
            .Where(r => r.StartsWith("DocumentReference/", StringComparison.Ordinal) || r.StartsWith("Composition/", StringComparison.Ordinal)
                || r.StartsWith("Encounter/", StringComparison.Ordinal))
            .ToList();
        foreach (var summary in summaries)
        {
            var slash = summary.IndexOf('/', StringComparison.Ordinal);
            if (await session.ReadCurrentAsync(summary[..slash], summary[(slash + 1)..], ct) is { IsDeleted: false })
            {
                return;
            }
        }

        if (summaries.Count > 0)
        {
            throw new FhirException(System.Net.HttpStatusCode.UnprocessableEntity, OperationOutcome.IssueType.BusinessRule,
                $"[referral-complete-summary] The summary a completed referral names does not exist: {string.Join(", ", summaries)}.", "Task.output");
        }
    }

    /// <summary>
    /// A referral Task may only be cancelled by its requester, never deleted: its history is the referral's record. Nor is
    /// the ServiceRequest of a referral that has its Task: the Task would name a request that is gone.
    /// </summary>
    public async System.Threading.Tasks.Task CheckDeleteAsync(IWriteSession session, StoredResource current, CancellationToken ct)
    {
        if (current.ResourceType == "Task" && current.Json.Length > 0 && serializers.ParseStored(current.Json) is FhirTask task
            && await ReferralOfAsync(session, task, ct) is not null)
        {
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"[referral-delete] Task/{current.Id} is a referral's: it is not deleted; the referring organisation cancels it (status cancelled).", "Task");
        }

        if (current.ResourceType == "ServiceRequest" && current.Json.Length > 0 && serializers.ParseStored(current.Json) is ServiceRequest request
            && IsReferral(request)
            && await session.FindAsync("Task", SearchCriteria.ParseQueryString("Task", $"focus=ServiceRequest/{current.Id}"), 1, ct) is [var held, ..])
        {
            throw new FhirException(System.Net.HttpStatusCode.Conflict, OperationOutcome.IssueType.Conflict,
                $"[referral-delete] ServiceRequest/{current.Id} is the request of the referral Task/{held.Id}: it is not deleted; the referring " +
                "organisation cancels the Task, which revokes the request.", "ServiceRequest");
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

    /// <summary>Who the caller is to the referral, by the parties of <paramref name="task"/> (the stored version when there is one).</summary>
    private async Task<ReferralParty> PartyAsync(IWriteSession session, FhirTask task, CancellationToken ct)
    {
        var caller = CallerContext.Organization;
        if (caller is null)
        {
            // The hub's own writes (adapters, jobs) name no caller; an HTTP client that names none is anonymous.
            return CallerContext.OverHttp ? ReferralParty.Anonymous : ReferralParty.Unknown;
        }

        if (caller == task.Owner?.Reference)
        {
            return ReferralParty.Receiver;
        }

        if (caller == task.Requester?.Reference)
        {
            return ReferralParty.Requester;
        }

        return task.Requester?.Reference is { } requester && requester.StartsWith("Practitioner/", StringComparison.Ordinal)
            && await WorksForAsync(session, requester["Practitioner/".Length..], caller, ct)
            ? ReferralParty.Requester
            : ReferralParty.Other;
    }

    /// <summary>The staff-number system of an institution's practitioners, as the HIS adapter writes it (his-hl7v2.md, XCN).</summary>
    private const string StaffSystemPrefix = "urn:interophub:sid:staff:";

    private const string OrganizationCodeSystem = "urn:interophub:sid:org-code";

    /// <summary>
    /// Whether a practitioner is staff of the caller's institution, by the institution code in the system of their
    /// staff number: HIS referral Tasks written before they named the referring institution name its doctor.
    /// </summary>
    private async Task<bool> WorksForAsync(IWriteSession session, string practitionerId, string caller, CancellationToken ct)
    {
        if (await session.ReadCurrentAsync("Practitioner", practitionerId, ct) is not { IsDeleted: false } storedPractitioner
            || serializers.ParseStored(storedPractitioner.Json) is not Practitioner practitioner
            || await session.ReadCurrentAsync("Organization", caller["Organization/".Length..], ct) is not { IsDeleted: false } storedOrganization
            || serializers.ParseStored(storedOrganization.Json) is not Organization organization)
        {
            return false;
        }

        var codes = organization.Identifier.Where(i => i.System == OrganizationCodeSystem).Select(i => i.Value).OfType<string>().ToHashSet(StringComparer.Ordinal);
        return practitioner.Identifier.Any(i => i.System?.StartsWith(StaffSystemPrefix, StringComparison.Ordinal) == true
            && codes.Contains(i.System[StaffSystemPrefix.Length..]));
    }

    private static string? OrganizationId(string? reference) =>
        reference is not null && reference.StartsWith("Organization/", StringComparison.Ordinal) ? reference["Organization/".Length..] : null;
}
