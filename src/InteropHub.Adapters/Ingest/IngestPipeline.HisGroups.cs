using Hl7.Fhir.Model;
using InteropHub.Adapters.His;
using InteropHub.Adapters.His.Acks;
using InteropHub.Fhir.Bundles;
using InteropHub.Fhir.Storage;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Adapters.Ingest;

/// <summary>
/// HIS messages about different persons that are ready at the same moment share one transaction (a group commit):
/// the group's Bundles are applied as one, and each message's completion commits with it. A message then costs its
/// share of a transaction's statements and round trips instead of all of them.
/// <para>
/// A message joins a group only when it is plain (no precondition to check, no merge) and its person's lock is held, so
/// the messages of a group never name one person. A message that arrives while no HIS transaction runs starts one at
/// once, alone. While one runs, a message waits for company: the next transaction starts when two wait (and fewer than
/// <see cref="HisGroupsInFlight"/> run) or when a running one ends, whichever comes first, so a lone message waits at
/// most one transaction. Under load every transaction but the first then carries two or more messages, where starting
/// each lone arrival at once sent most of them alone (a lone message costs nearly a group's statements). When a group's transaction fails, nothing of it was written and each of its messages is applied
/// alone, on the ordinary path, which answers for it exactly as if it had never been grouped (a new message is first
/// stored in the inbox on its own: see <see cref="ReceiveHl7Async"/>).
/// </para>
/// </summary>
public sealed partial class IngestPipeline
{
    /// <summary>
    /// HIS transactions that run at once, one per core and at least two (the database works on one while the hub
    /// prepares the other; on two cores one was slower and three no faster).
    /// </summary>
    private static readonly int HisGroupsInFlight = Math.Max(2, Environment.ProcessorCount);

    /// <summary>The most messages one transaction carries.</summary>
    private const int HisGroupSize = 16;

    private readonly Lock _hisGroupLock = new();
    private readonly List<GroupedHis> _hisWaiting = [];
    private int _hisGroupsRunning;
    private long _sharedTransactions;
    private long _sharedMessages;
    private long _sharedFailures;

    /// <summary>Since start-up: the transactions of groups, the messages they carried, and those that failed (their messages then applied alone).</summary>
    public HisGroupCounts HisGroups => new(Interlocked.Read(ref _sharedTransactions), Interlocked.Read(ref _sharedMessages), Interlocked.Read(ref _sharedFailures));

    /// <summary>
    /// A message waiting for its group, with what records it as applied in the group's transaction, and what applying
    /// it gave: as <see cref="ApplyHisAsync"/> answers, null when it is to be mapped again and applied alone.
    /// </summary>
    private sealed record GroupedHis(Func<IWriteSession, CancellationToken, Task> Complete, HisAccepted Accepted)
    {
        public TaskCompletionSource<(AckCode, IReadOnlyList<HisIssue>, bool Completed)?> Applied { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static bool Groupable(HisAccepted accepted) => accepted.Preconditions.Count == 0 && accepted.Merge is null
        && !accepted.Transaction.Entry.Any(e => e.Resource is DiagnosticReport { Status: DiagnosticReport.DiagnosticReportStatus.Cancelled });

    /// <summary>
    /// Applies a plain message in a group with the messages ready beside it, or alone when none is; answers as
    /// <see cref="ApplyHisAsync"/> does, or null when the group's transaction failed (map it again and apply it alone).
    /// </summary>
    private async Task<(AckCode, IReadOnlyList<HisIssue>, bool Completed)?> ApplyInGroupAsync(Func<IWriteSession, CancellationToken, Task> complete,
        HisAccepted accepted)
    {
        var waiting = new GroupedHis(complete, accepted);
        List<GroupedHis>? group;
        lock (_hisGroupLock)
        {
            _hisWaiting.Add(waiting);
            group = TakeGroup();
        }

        if (group is not null)
        {
            await RunGroupsAsync(group);
        }

        return await waiting.Applied.Task;
    }

    /// <summary>The next group, when a slot is free and messages wait (two of them while another group runs); called under the lock.</summary>
    private List<GroupedHis>? TakeGroup()
    {
        if (_hisWaiting.Count == 0 || _hisGroupsRunning == HisGroupsInFlight || (_hisGroupsRunning > 0 && _hisWaiting.Count < 2))
        {
            return null;
        }

        var count = Math.Min(HisGroupSize, _hisWaiting.Count);
        var group = _hisWaiting.GetRange(0, count);
        _hisWaiting.RemoveRange(0, count);
        _hisGroupsRunning++;
        return group;
    }

    /// <summary>Runs a group, then hands the slot to the messages that gathered meanwhile (in the background, so this one's answer is not held up).</summary>
    private async Task RunGroupsAsync(List<GroupedHis> group)
    {
        try
        {
            await RunGroupAsync(group);
        }
        finally
        {
            List<GroupedHis>? next;
            lock (_hisGroupLock)
            {
                _hisGroupsRunning--;
                next = TakeGroup();
            }

            if (next is not null)
            {
                _ = Task.Run(() => RunGroupsAsync(next));
            }
        }
    }

    private async Task RunGroupAsync(List<GroupedHis> group)
    {
        // A group's transaction runs to its end even when a sender hangs up: the others wait for its answer.
        var ct = CancellationToken.None;
        if (group.Count == 1)
        {
            // Alone, but in the slot: those arriving meanwhile gather into the next group.
            try
            {
                group[0].Applied.SetResult(await ApplyHisAsync(group[0].Complete, group[0].Accepted, retry: true, ct));
            }
            catch (Exception e)
            {
                group[0].Applied.SetException(e);
            }

            return;
        }

        var members = new List<GroupedHis>();
        var committed = false;
        try
        {
            var combined = new Bundle { Type = Bundle.BundleType.Transaction };
            var entries = new Dictionary<string, Bundle.EntryComponent>(StringComparer.Ordinal);
            foreach (var grouped in group)
            {
                // A message writing what a member writes (two messages about one visit or one report, naming its person
                // by identifiers that share no value) is applied alone after the group, with everything it writes.
                var transaction = grouped.Accepted.Transaction;
                if (!Joins(transaction, entries))
                {
                    continue;
                }

                combined.Entry.AddRange(transaction.Entry.Where(e => e.FullUrl is null || !entries.ContainsKey(e.FullUrl)).ToList());
                foreach (var entry in transaction.Entry)
                {
                    if (entry.FullUrl is { } fullUrl)
                    {
                        entries.TryAdd(fullUrl, entry);
                    }
                }

                members.Add(grouped);
            }

            if (members.Count > 0)
            {
                // A member naming a retired Patient fails the group's transaction (CheckPatientsAsync), and each
                // message is then applied alone: that one is refused, the others written.
                IdNumberOutcome.AttachTo(combined);
                await transactions.HandleAsync(new BundleRequest(combined, BaseUrl, async (session, token) =>
                {
                    foreach (var member in members)
                    {
                        await member.Complete(session, token);
                    }

                    await session.AddToCountsAsync(UnmappedCounts(members.Select(m => m.Accepted.Transaction)), token);
                }, CheckPatientsAsync), ct);
                committed = true;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Nothing of the group was written: each message is applied alone.
            Interlocked.Increment(ref _sharedFailures);
        }
        finally
        {
            if (committed)
            {
                Interlocked.Increment(ref _sharedTransactions);
                Interlocked.Add(ref _sharedMessages, members.Count);
                foreach (var member in members)
                {
                    member.Applied.SetResult((AckCode.AA, HisWarnings(member.Accepted), true));
                }
            }

            foreach (var grouped in group)
            {
                grouped.Applied.TrySetResult(null);
            }
        }
    }

    /// <summary>
    /// Whether a message's entries can join the group's: each is new to it by <c>fullUrl</c> (the mappers make it
    /// from the request), or the same conditional create as a member's (a practitioner or department several
    /// messages name), which is then sent once.
    /// </summary>
    private static bool Joins(Bundle transaction, Dictionary<string, Bundle.EntryComponent> entries) =>
        transaction.Entry.All(e => e.FullUrl is null || !entries.TryGetValue(e.FullUrl, out var kept)
            || e.Request is { Method: Bundle.HTTPVerb.POST, IfNoneExist: { } criteria } && kept.Request is { Method: Bundle.HTTPVerb.POST } other
                && other.IfNoneExist == criteria && other.Url == e.Request.Url);
}

/// <summary>How the HIS group commit went since start-up (<see cref="IngestPipeline.HisGroups"/>).</summary>
public sealed record HisGroupCounts(long Transactions, long Messages, long Failed);
