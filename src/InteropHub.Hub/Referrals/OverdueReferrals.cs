using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using FhirTask = Hl7.Fhir.Model.Task;

namespace InteropHub.Hub.Referrals;

/// <summary><c>InteropHub:Referrals</c>.</summary>
public sealed class ReferralOptions
{
    /// <summary>A referral not accepted (or rejected) this long after it was made is overdue.</summary>
    public TimeSpan AcceptWithin { get; set; } = TimeSpan.FromHours(48);

    /// <summary>How often the hub looks for overdue referrals.</summary>
    public TimeSpan CheckEvery { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Flags referrals the receiver has not accepted within <see cref="ReferralOptions.AcceptWithin"/>: the Task stays
/// requested or received and gets a <c>businessStatus</c> coding overdue (超时未接收), written as a new version through the normal
/// update path, so the state machine sees it (no status change) and history records when it happened. The age of a
/// referral is counted from <c>Task.authoredOn</c>, or from its first version when that is absent.
/// </summary>
public sealed class OverdueReferrals(IResourceStore store, SearchParser parser, UpdateResource update, FhirSerializers serializers, ReferralOptions options)
{
    public const string BusinessStatusSystem = "https://interophub.dev/fhir/CodeSystem/referral-business-status";
    public const string Overdue = "overdue";

    private const int PageSize = 200;

    /// <summary>Flags every referral overdue at <paramref name="now"/>; returns how many were flagged.</summary>
    public async Task<int> RunOnceAsync(DateTimeOffset now, CancellationToken ct)
    {
        var criteria = parser.ParseCriteria("Task", [new("status", "requested,received")]);
        var flagged = 0;
        long? after = null;
        while (true)
        {
            var matches = await store.FindAsync("Task", criteria, after, PageSize, ct);
            if (matches.Count == 0)
            {
                return flagged;
            }

            after = matches[^1].Rid;
            foreach (var stored in await store.ReadManyAsync("Task", matches.Select(m => m.Id).ToList(), ct))
            {
                if (serializers.ParseStored(stored.Json) is FhirTask task && !IsFlagged(task)
                    && await CreatedAsync(stored, task, ct) <= now - options.AcceptWithin && await IsReferralAsync(task, ct)
                    && await FlagAsync(stored, task, ct))
                {
                    flagged++;
                }
            }
        }
    }

    public static bool IsFlagged(FhirTask task) =>
        task.BusinessStatus?.Coding.Any(c => c.System == BusinessStatusSystem && c.Code == Overdue) == true;

    private async Task<bool> FlagAsync(StoredResource stored, FhirTask task, CancellationToken ct)
    {
        // Added beside what the business status says already (the HIS's 已签收, a client's own code), not over it.
        task.BusinessStatus ??= new CodeableConcept();
        task.BusinessStatus.Coding.Add(new Coding(BusinessStatusSystem, Overdue, "超时未接收"));
        try
        {
            // If-Match: a receiver who accepts at the same moment wins; the next run sees the accepted Task.
            await update.HandleAsync(new UpdateRequest("Task", stored.Id, null, task, [stored.VersionId]), ct);
            return true;
        }
        catch (PreconditionFailedException)
        {
            return false;
        }
    }

    private async Task<DateTimeOffset> CreatedAsync(StoredResource stored, FhirTask task, CancellationToken ct)
    {
        if (task.AuthoredOnElement is { } authored)
        {
            return authored.ToDateTimeOffset(TimeSpan.Zero);
        }

        if (stored.VersionId == 1)
        {
            return stored.LastUpdated;
        }

        var first = await store.ReadVersionAsync("Task", stored.Id, 1, ct);
        return first?.LastUpdated ?? stored.LastUpdated;
    }

    private async Task<bool> IsReferralAsync(FhirTask task, CancellationToken ct)
    {
        if (task.Focus?.Reference is not { } focus || !focus.StartsWith("ServiceRequest/", StringComparison.Ordinal))
        {
            return false;
        }

        var stored = await store.ReadAsync("ServiceRequest", focus["ServiceRequest/".Length..], ct);
        return stored is { IsDeleted: false } && serializers.ParseStored(stored.Json) is ServiceRequest request && ReferralWriteRule.IsReferral(request);
    }
}
