using Hl7.Fhir.Model;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Hub.Indicators;
using InteropHub.Hub.ResultRecognition;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Hub.Referrals;

/// <param name="Start">First instant of the period.</param>
/// <param name="End">First instant after the period.</param>
/// <param name="Organization">Only referrals this organisation sent or received (and orders it placed), <c>Organization/{id}</c>; null for all.</param>
public sealed record ReferralMetricsRequest(DateTimeOffset Start, DateTimeOffset End, string? Organization);

/// <summary>
/// The referral indicators of DOMAIN.md §3 as a summary <c>MeasureReport</c> of <c>Measure/referral-metrics</c>,
/// computed from the stored referral Tasks, their ServiceRequests and the Tasks' history:
/// <list type="bullet">
/// <item><c>up</c>, <c>down</c>: referrals made in the period (Task.authoredOn, else its first version), with how many
/// were accepted (reached accepted at some version), completed, rejected and flagged overdue, stratified by referring
/// (<c>requester</c>) and receiving (<c>owner</c>) organisation, and by township (the township centre the referring
/// institution of an up-referral, or the receiving one of a down-referral, is or belongs to);</item>
/// <item><c>acceptance-rate</c>: accepted / referrals; <c>completion-rate</c>: completed / accepted;</item>
/// <item><c>median-time-to-accept</c>: hours from the referral to its first accepted version;</item>
/// <item><c>non-recognition-reason</c>: orders placed in the period with a non-recognition reason, stratified by
/// reason and by ordering organisation.</item>
/// </list>
/// </summary>
public sealed class ReferralMetrics(IResourceStore store, IResourceScanner scanner, FhirSerializers serializers, TimeProvider clock, ReferralOptions options,
    TownshipResidents townships)
{
    public const string MeasureUrl = "https://interophub.dev/fhir/Measure/referral-metrics";
    public const string GroupSystem = "https://interophub.dev/fhir/CodeSystem/referral-metrics";
    public const string PopulationSystem = "http://terminology.hl7.org/CodeSystem/measure-population";

    private static readonly FhirTask.TaskStatus[] AcceptedOrLater =
        [FhirTask.TaskStatus.Accepted, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Completed, FhirTask.TaskStatus.Failed];

    public async Task<MeasureReport> HandleAsync(ReferralMetricsRequest request, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var referrals = new List<Referral>();
        var requests = new Dictionary<string, ServiceRequest?>(StringComparer.Ordinal);
        await foreach (var stored in scanner.ScanAsync("Task", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not FhirTask task || task.Focus?.Reference is not { } focus
                || !focus.StartsWith("ServiceRequest/", StringComparison.Ordinal))
            {
                continue;
            }

            var requester = task.Requester?.Reference;
            var owner = task.Owner?.Reference;
            if (request.Organization is { } organization && organization != requester && organization != owner)
            {
                continue;
            }

            var made = task.AuthoredOnElement?.ToDateTimeOffset(TimeSpan.Zero) ?? await FirstWrittenAsync(stored, ct);
            if (made < request.Start || made >= request.End)
            {
                continue;
            }

            if (!requests.TryGetValue(focus, out var serviceRequest))
            {
                var found = await store.ReadAsync("ServiceRequest", focus["ServiceRequest/".Length..], ct);
                serviceRequest = requests[focus] = found is { IsDeleted: false } ? serializers.ParseStored(found.Json) as ServiceRequest : null;
            }

            if (serviceRequest is null || !ReferralWriteRule.IsReferral(serviceRequest))
            {
                continue;
            }

            var (accepted, answered, ended) = await FirstAnswersAsync(stored, task, ct);
            // Overdue: answered (accepted or rejected) later than the rule allows, or left unanswered past it (still
            // waiting, or cancelled or failed only after the deadline); whatever the flag on the current version says.
            var waitedUntil = answered ?? ended ?? (task.Status is FhirTask.TaskStatus.Requested or FhirTask.TaskStatus.Received ? now : null);
            var overdue = waitedUntil - made > options.AcceptWithin;
            referrals.Add(new Referral(ReferralWriteRule.Direction(serviceRequest), requester ?? "", owner ?? "", task.Status,
                overdue, accepted is { } at ? (at > made ? at - made : TimeSpan.Zero) : null));
        }

        var report = new MeasureReport
        {
            Status = MeasureReport.MeasureReportStatus.Complete,
            Type = MeasureReport.MeasureReportType.Summary,
            Measure = MeasureUrl,
            DateElement = new FhirDateTime(now),
            Period = new Period(new FhirDateTime(request.Start), new FhirDateTime(request.End.AddTicks(-1))),
        };
        if (request.Organization is { } subject)
        {
            report.Subject = new ResourceReference(subject);
        }

        var institutions = await townships.InstitutionsAsync(now.AddTicks(1), ct);
        string? Township(string organization) => institutions.GetValueOrDefault(organization)?.Township;
        report.Group.Add(DirectionGroup("up", "上转", referrals.Where(r => r.Direction == ReferralDirection.Up).ToList(), Township));
        report.Group.Add(DirectionGroup("down", "下转", referrals.Where(r => r.Direction == ReferralDirection.Down).ToList(), Township));
        var acceptedCount = referrals.Count(r => r.TimeToAccept is not null);
        var completedCount = referrals.Count(r => r.Status == FhirTask.TaskStatus.Completed);
        report.Group.Add(Rate("acceptance-rate", "接收率", acceptedCount, referrals.Count));
        report.Group.Add(Rate("completion-rate", "完成率", completedCount, acceptedCount));
        report.Group.Add(MedianTimeToAccept(referrals.Select(r => r.TimeToAccept).OfType<TimeSpan>().ToList()));
        report.Group.Add(await NonRecognitionReasonsAsync(request, now, ct));
        return report;
    }

    /// <param name="township">The township centre an organisation is or belongs to (a village clinic's referrals count for its township).</param>
    private static MeasureReport.GroupComponent DirectionGroup(string code, string display, IReadOnlyList<Referral> referrals, Func<string, string?> township) => new()
    {
        Code = new CodeableConcept(GroupSystem, code, display),
        Population =
        [
            Population("initial-population", referrals.Count, PopulationSystem),
            Population("accepted", referrals.Count(r => r.TimeToAccept is not null)),
            Population("completed", referrals.Count(r => r.Status == FhirTask.TaskStatus.Completed)),
            Population("rejected", referrals.Count(r => r.Status == FhirTask.TaskStatus.Rejected)),
            Population(OverdueReferrals.Overdue, referrals.Count(r => r.Overdue)),
        ],
        Stratifier =
        [
            Stratify("requester", referrals.Select(r => r.Requester)),
            Stratify("owner", referrals.Select(r => r.Owner)),
            // Per township: an up-referral by the township it leaves, a down-referral by the one it goes to.
            Stratify("township", referrals.Select(r => township(r.Direction == ReferralDirection.Up ? r.Requester : r.Owner)).OfType<string>()),
        ],
    };

    private static MeasureReport.GroupComponent Rate(string code, string display, int numerator, int denominator) => new()
    {
        Code = new CodeableConcept(GroupSystem, code, display),
        Population = [Population("numerator", numerator, PopulationSystem), Population("denominator", denominator, PopulationSystem)],
        MeasureScore = denominator == 0 ? null : new Quantity(Math.Round((decimal)numerator / denominator, 4), "1"),
    };

    private static MeasureReport.GroupComponent MedianTimeToAccept(List<TimeSpan> times)
    {
        times.Sort();
        double? median = times.Count == 0 ? null
            : times.Count % 2 == 1 ? times[times.Count / 2].TotalHours
            : (times[(times.Count / 2) - 1].TotalHours + times[times.Count / 2].TotalHours) / 2;
        return new MeasureReport.GroupComponent
        {
            Code = new CodeableConcept(GroupSystem, "median-time-to-accept", "接收时间中位数"),
            Population = [Population("initial-population", times.Count, PopulationSystem)],
            MeasureScore = median is { } hours
                ? new Quantity { Value = Math.Round((decimal)hours, 2), Unit = "h", System = "http://unitsofmeasure.org", Code = "h" }
                : null,
        };
    }

    private async Task<MeasureReport.GroupComponent> NonRecognitionReasonsAsync(ReferralMetricsRequest request, DateTimeOffset now, CancellationToken ct)
    {
        var orders = new List<(string Reason, string Requester)>();
        await foreach (var stored in scanner.ScanAsync("ServiceRequest", null, now.AddTicks(1), ct))
        {
            if (serializers.ParseStored(stored.Json) is not ServiceRequest order
                || order.Extension.FirstOrDefault(e => e.Url == NonRecognitionReasonRule.ReasonExtension)?.Value is not { } value)
            {
                continue;
            }

            var placed = order.AuthoredOnElement?.ToDateTimeOffset(TimeSpan.FromHours(8)) ?? stored.LastUpdated;
            var requester = order.Requester?.Reference ?? "";
            if (placed < request.Start || placed >= request.End || (request.Organization is { } organization && organization != requester))
            {
                continue;
            }

            var reason = value switch
            {
                Coding coding => coding.Code,
                CodeableConcept concept => concept.Coding.FirstOrDefault(c => c.System == NonRecognitionReasonRule.ReasonSystem)?.Code,
                _ => null,
            };
            orders.Add((reason ?? "", requester));
        }

        return new MeasureReport.GroupComponent
        {
            Code = new CodeableConcept(GroupSystem, "non-recognition-reason", "不予互认原因"),
            Population = [Population("initial-population", orders.Count, PopulationSystem)],
            Stratifier = [Stratify("reason", orders.Select(o => o.Reason)), Stratify("requester", orders.Select(o => o.Requester))],
        };
    }

    private static MeasureReport.PopulationComponent Population(string code, int count, string system = GroupSystem) =>
        new() { Code = new CodeableConcept(system, code), Count = count };

    private static MeasureReport.StratifierComponent Stratify(string by, IEnumerable<string> values) => new()
    {
        Code = [new CodeableConcept(GroupSystem, by)],
        Stratum = values.GroupBy(v => v, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new MeasureReport.StratifierGroupComponent
            {
                Value = new CodeableConcept { Text = g.Key },
                Population = [new MeasureReport.StratifierGroupPopulationComponent
                {
                    Code = new CodeableConcept(PopulationSystem, "initial-population"),
                    Count = g.Count(),
                }],
            })
            .ToList(),
    };

    private async Task<DateTimeOffset> FirstWrittenAsync(StoredResource stored, CancellationToken ct) =>
        stored.VersionId == 1 ? stored.LastUpdated : (await store.ReadVersionAsync("Task", stored.Id, 1, ct))?.LastUpdated ?? stored.LastUpdated;

    /// <summary>
    /// From the Task's history: when it was first accepted (or moved past accepted), and when the receiver first answered
    /// (accepted or rejected); null when it never did. The time is the version's <c>Task.lastModified</c> when that
    /// version set it (a HIS message says when the change happened, which may be long before the hub heard of it),
    /// else when the hub stored it.
    /// </summary>
    private async Task<(DateTimeOffset? Accepted, DateTimeOffset? Answered, DateTimeOffset? Ended)> FirstAnswersAsync(StoredResource stored, FhirTask task,
        CancellationToken ct)
    {
        if (task.Status is FhirTask.TaskStatus.Requested or FhirTask.TaskStatus.Received or FhirTask.TaskStatus.Cancelled && stored.VersionId == 1)
        {
            return (null, null, null);
        }

        var versions = new List<(FhirTask Task, DateTimeOffset Stored)>();
        long? before = null;
        while (true)
        {
            var page = await store.ReadHistoryAsync(new HistoryQuery("Task", stored.Id, null, 100, before), ct);
            versions.AddRange(page.Where(e => !e.Resource.IsDeleted).Select(e => (serializers.ParseStored(e.Resource.Json) as FhirTask, e.Resource.LastUpdated))
                .Where(v => v.Item1 is not null).Select(v => (v.Item1!, v.LastUpdated)));
            if (page.Count < 100)
            {
                break;
            }

            before = page[^1].Key;
        }

        versions.Reverse();
        DateTimeOffset? accepted = null;
        DateTimeOffset? answered = null;
        DateTimeOffset? ended = null;
        for (var i = 0; i < versions.Count && accepted is null; i++)
        {
            var (version, storedAt) = versions[i];
            // Never later than the hub heard of it: a client's lastModified does not move a change into the future.
            var changedAt = version.LastModifiedElement is { } modified && (i == 0 || versions[i - 1].Task.LastModified != version.LastModified)
                ? Min(modified.ToDateTimeOffset(TimeSpan.Zero), storedAt)
                : storedAt;
            if (version.Status is FhirTask.TaskStatus.Cancelled or FhirTask.TaskStatus.Failed)
            {
                ended ??= changedAt;
            }

            if (version.Status is { } status && AcceptedOrLater.Contains(status))
            {
                accepted = changedAt;
                answered ??= changedAt;
            }
            else if (version.Status == FhirTask.TaskStatus.Rejected)
            {
                answered ??= changedAt;
            }
        }

        return (accepted, answered, ended);
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private sealed record Referral(ReferralDirection Direction, string Requester, string Owner, FhirTask.TaskStatus? Status, bool Overdue, TimeSpan? TimeToAccept);
}
