using System.Globalization;
using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Resources.Create;
using InteropHub.Fhir.Resources.Delete;
using InteropHub.Fhir.Resources.History;
using InteropHub.Fhir.Resources.Patch;
using InteropHub.Fhir.Resources.Read;
using InteropHub.Fhir.Resources.Search;
using InteropHub.Fhir.Resources.Update;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Terminology;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.Bundles;

/// <summary>
/// <c>POST [base]</c> with a batch or transaction Bundle (http.html#transaction).
/// <para>
/// A transaction runs every entry in one write session, so it commits whole or not at all, in the order of
/// http.html#trules: DELETE, then POST, then PUT and PATCH, then GET and HEAD. Before anything is written it
/// takes its locks in a canonical order (see <see cref="LockAsync"/>) so concurrent transactions over the same
/// resources queue rather than deadlock; resolves the id every POST, PUT and PATCH will write
/// (conditional ones against the store, inside the session); refuses two entries on one resource; and rewrites
/// fullUrl placeholders and conditional references in every resource of the bundle. The first failing entry
/// fails the transaction with its status and an OperationOutcome naming <c>Bundle.entry[n]</c>.
/// </para>
/// <para>
/// A batch runs each entry on its own, writes each in its own session, and answers every entry, failures
/// included, with the status and outcome it would have had as a single request; an entry that did not parse
/// (<see cref="BundleRequest.RefusedEntries"/>) is answered 400 with its issues.
/// </para>
/// </summary>
public sealed class ProcessBundle(
    IResourceStore store,
    CreateResource create,
    UpdateResource update,
    DeleteResource delete,
    PatchResource patch,
    ReadResource read,
    SearchResources search,
    ReadHistory history,
    SearchParser parser,
    LocalTerminology terminology,
    ILogger<ProcessBundle> logger)
{

    public async Task<BundleResult> HandleAsync(BundleRequest request, CancellationToken ct) => request.Bundle.Type switch
    {
        Bundle.BundleType.Transaction when request.RefusedEntries is { Count: > 0 } =>
            throw new InvalidOperationException("A transaction fails whole: an entry that does not parse fails it, not only itself."),
        Bundle.BundleType.Transaction => new BundleResult(Bundle.BundleType.TransactionResponse, await TransactionAsync(request, ct)),
        Bundle.BundleType.Batch when request.BeforeCommit is not null || request.AfterLocks is not null =>
            throw new InvalidOperationException("BeforeCommit and AfterLocks run in a transaction's session; a batch has one session per entry."),
        Bundle.BundleType.Batch => new BundleResult(Bundle.BundleType.BatchResponse, await BatchAsync(request, ct)),
        var type => throw new InvalidInputException(
            $"POST [base] takes a Bundle of type batch or transaction, not {(type is { } named ? Hl7.Fhir.Utility.EnumUtility.GetLiteral(named) : "one without a type")}.", "Bundle.type"),
    };

    private Task<IReadOnlyList<EntryResponse>> TransactionAsync(BundleRequest request, CancellationToken ct)
    {
        var attempts = 0;
        return store.RunAsync<IReadOnlyList<EntryResponse>>(async session =>
        {
            // Processing stamps ids into the resources and rewrites their references, so every attempt (a retry
            // after a deadlock is a new attempt) starts from its own copy of what the client sent.
            var bundle = (Bundle)request.Bundle.DeepCopy();
            var plans = new List<EntryPlan>(bundle.Entry.Count);
            for (var i = 0; i < bundle.Entry.Count; i++)
            {
                plans.Add(await ParseAsync(bundle.Entry[i], i, request.BaseUrl, ct));
            }

            await RunAsync(new LockingSession(session), plans, transaction: true, retry: ++attempts > 1, ct,
                request.AfterLocks is { } afterLocks ? (locked, token) => afterLocks(locked, bundle.Entry, token) : null);
            if (request.BeforeCommit is { } beforeCommit)
            {
                await beforeCommit(session, ct);
            }

            return plans.Select(p => p.Response!).ToList();
        }, ct);
    }

    private async Task<IReadOnlyList<EntryResponse>> BatchAsync(BundleRequest request, CancellationToken ct)
    {
        var responses = new List<EntryResponse>(request.Bundle.Entry.Count);
        // Each entry runs alone, yet one that names another's fullUrl in its conditional URL must learn that it resolves nothing.
        var fullUrls = request.Bundle.Entry.Select(e => e.FullUrl).OfType<string>().ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < request.Bundle.Entry.Count; i++)
        {
            var entry = request.Bundle.Entry[i];
            var index = i;
            try
            {
                if (request.RefusedEntries?.GetValueOrDefault(index) is { } refused)
                {
                    throw Attribute($"Bundle.entry[{index}]", null, new InvalidInputException(refused));
                }

                if (request.Forward is { } forward && EntryPlan.IsForwarded(entry, request.BaseUrl, out var url))
                {
                    responses.Add(await forward(entry, url, index, ct));
                    continue;
                }

                var plan = await ParseAsync(entry, index, request.BaseUrl, ct);
                if (!plan.IsWrite)
                {
                    responses.Add(await ReadAsync(plan, null, ct, request.Lenient));
                    continue;
                }

                var attempts = 0;
                responses.Add(await store.RunAsync(async session =>
                {
                    // As for a transaction: each attempt works on its own copy of the entry.
                    var attempt = await ParseAsync((Bundle.EntryComponent)entry.DeepCopy(), index, request.BaseUrl, ct);
                    await RunAsync(new LockingSession(session), [attempt], transaction: false, retry: ++attempts > 1, ct, fullUrls: fullUrls);
                    return attempt.Response!;
                }, ct));
            }
            catch (FhirException e)
            {
                responses.Add(new EntryResponse((int)e.Status, Outcome: e.Outcome));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The entries before it may have been written: the client must still learn what became of each one.
                logger.LogError(e, "Batch entry {Index} failed unexpectedly", index);
                responses.Add(new EntryResponse(500, Outcome: FhirException.Issue(OperationOutcome.IssueType.Exception,
                    $"Bundle.entry[{index}] failed with an internal error; the details are in the server log. The other entries were processed.",
                    $"Bundle.entry[{index}]")));
            }
        }

        return responses;
    }

    private async Task<EntryPlan> ParseAsync(Bundle.EntryComponent entry, int index, string baseUrl, CancellationToken ct)
    {
        try
        {
            var plan = EntryPlan.Parse(entry, index, baseUrl, parser);
            await plan.ExpandAsync(terminology, ct);
            return plan;
        }
        catch (FhirException e)
        {
            throw Attribute($"Bundle.entry[{index}]", null, e);
        }
    }

    /// <summary>Processes the entries in one session: all of a transaction, or one entry of a batch.</summary>
    /// <param name="afterLocks">See <see cref="BundleRequest.AfterLocks"/>; what it throws is not attributed to an entry.</param>
    /// <param name="retry">The attempt follows one the database aborted to break a deadlock: see <see cref="LockAsync"/>.</param>
    /// <param name="fullUrls">A batch entry's: every fullUrl of the bundle (a transaction's are its entries').</param>
    private async Task RunAsync(LockingSession session, List<EntryPlan> plans, bool transaction, bool retry, CancellationToken ct,
        Func<IWriteSession, CancellationToken, Task>? afterLocks = null, IReadOnlySet<string>? fullUrls = null)
    {
        EntryPlan? at = null;
        try
        {
            var writes = plans.Where(p => p.IsWrite).ToList();
            var waiting = WaitingForPlaceholders(writes, fullUrls ?? writes.Select(p => p.FullUrl).OfType<string>().ToHashSet(StringComparer.Ordinal),
                transaction, p => at = p);
            at = null;
            var references = BundleReferences.Collect(writes, parser);
            await references.ExpandAsync(terminology, ct);
            await LockAsync(session, writes.Where(p => !waiting.ContainsKey(p)).ToList(), references, retry, p => at = p, ct);
            if (afterLocks is not null)
            {
                at = null;
                await afterLocks(session, ct);
            }

            // DELETE first, then settle which resource every POST, PUT and PATCH writes, before anything else is
            // written: placeholders and conditional references in any resource may point at any of them.
            var identities = new Dictionary<string, EntryPlan>(StringComparer.Ordinal);
            var conditionalWrites = new Dictionary<string, EntryPlan>(StringComparer.Ordinal);
            foreach (var plan in Of(plans, Bundle.HTTPVerb.DELETE))
            {
                at = plan;
                var outcome = await delete.ExecuteAsync(session, new DeleteRequest(plan.ResourceType, plan.Id, plan.Criteria, plan.IfMatch), ct);
                if ((outcome.Resource?.Id ?? plan.Id) is { } deleted)
                {
                    Claim(identities, plan, deleted);
                }

                plan.Response = Written(outcome);
            }

            var posts = Of(plans, Bundle.HTTPVerb.POST).ToList();
            while (await NextAsync(posts, waiting, writes, p => at = p, ct) is { } plan)
            {
                at = plan;
                ClaimCriteria(conditionalWrites, plan, plan.IfNoneExist);
                plan.Existing = await CreateResource.FindExistingAsync(session, CreateRequestOf(plan), ct);
                plan.ResolvedId = plan.Existing?.Id ?? VersionWriter.NewId();
                Claim(identities, plan, plan.ResolvedId);
            }

            var updates = plans.Where(p => p.Method is Bundle.HTTPVerb.PUT or Bundle.HTTPVerb.PATCH).ToList();
            while (await NextAsync(updates, waiting, writes, p => at = p, ct) is { } plan)
            {
                at = plan;
                if (plan.Method == Bundle.HTTPVerb.PUT)
                {
                    ClaimCriteria(conditionalWrites, plan, plan.Criteria);
                    (plan.ResolvedId, var made) = await UpdateResource.ResolveIdAsync(session, UpdateRequestOf(plan), ct);
                    if (made)
                    {
                        // An id made just now: nothing stored has it, so there is nothing to read before writing it.
                        session.AssumeAbsent(plan.ResourceType, plan.ResolvedId);
                    }
                }
                else
                {
                    plan.ResolvedId = await PatchResource.ResolveIdAsync(session, PatchRequestOf(plan), ct);
                }

                Claim(identities, plan, plan.ResolvedId);
            }

            at = null;
            var targets = transaction ? Targets(writes) : null;
            references.ReplacePlaceholders(targets);
            foreach (var plan in writes.Where(p => p.Patch is JsonPatch))
            {
                // A JSON Patch's values are JSON, not resources the reference walk reaches: its placeholders are rewritten here.
                at = plan;
                ((JsonPatch)plan.Patch!).ReplaceReferences(value =>
                {
                    if (targets is not null && targets.TryGetValue(value, out var target))
                    {
                        return target;
                    }

                    return BundleReferences.IsPlaceholder(value)
                        ? throw new InvalidInputException(targets is null
                            ? $"{plan.Where}'s JSON Patch refers to '{value}', a placeholder: the entries of a batch stand alone and resolve none."
                            : $"{plan.Where}'s JSON Patch refers to '{value}', but no entry of the transaction has that fullUrl.", $"{plan.Where}.resource")
                        : null;
                });
            }

            at = null;
            await ResolveConditionalReferencesAsync(session, references, conditionalWrites, targets, p => at = p, ct);
            at = null;
            await session.PrefetchAsync(plans.Where(p => p.Method is Bundle.HTTPVerb.PUT or Bundle.HTTPVerb.PATCH && p.ResolvedId is not null)
                .Select(p => (p.ResourceType, p.ResolvedId!)), ct);

            foreach (var plan in Of(plans, Bundle.HTTPVerb.POST))
            {
                at = plan;
                plan.Response = plan.Existing is { } existing
                    ? Written(new WriteOutcome(WriteStatus.Existing, existing))
                    : Written(await create.WriteAsync(session, CreateRequestOf(plan), plan.ResolvedId!, ct));
            }

            foreach (var plan in plans.Where(p => p.Method is Bundle.HTTPVerb.PUT or Bundle.HTTPVerb.PATCH))
            {
                at = plan;
                plan.Response = Written(plan.Method == Bundle.HTTPVerb.PUT
                    ? await update.WriteAsync(session, UpdateRequestOf(plan), plan.ResolvedId!, ct)
                    : await patch.WriteAsync(session, PatchRequestOf(plan), plan.ResolvedId!, ct));
            }

            // Reads come last and see the transaction's own writes.
            foreach (var plan in plans.Where(p => !p.IsWrite))
            {
                at = plan;
                plan.Response = await ReadAsync(plan, session, ct);
            }
        }
        catch (FhirException e) when (at is not null)
        {
            throw Attribute(at.Where, at.ToString(), e);
        }
    }

    /// <summary>
    /// The entries whose conditional URL names other entries' placeholders (<c>POST Observation</c> with
    /// <c>ifNoneExist=subject=urn:uuid:…</c>, as HAPI allows), with those placeholders. Only a transaction resolves
    /// them, and only for creates, updates and patches: deletes run before any entry has its id. Such an entry takes
    /// its criteria and id locks when it runs, after <see cref="LockAsync"/> took the others': two such transactions
    /// over the same resources can wait on each other, which PostgreSQL ends with a deadlock error, and the write
    /// session runs the loser again.
    /// </summary>
    private Dictionary<EntryPlan, IReadOnlyList<string>> WaitingForPlaceholders(List<EntryPlan> writes, IReadOnlySet<string> fullUrls, bool transaction,
        Action<EntryPlan> at)
    {
        var waiting = new Dictionary<EntryPlan, IReadOnlyList<string>>();
        foreach (var plan in writes)
        {
            at(plan);
            if (plan.CriteriaPlaceholders(fullUrls, parser) is not [var first, ..] placeholders)
            {
                continue;
            }

            if (!transaction || plan.Method == Bundle.HTTPVerb.DELETE)
            {
                throw new InvalidInputException(!transaction
                    ? $"{plan.Where}'s conditional URL names '{first}', a placeholder: the entries of a batch stand alone and resolve none."
                    : $"{plan.Where}'s conditional delete names '{first}', a placeholder: deletes run before any entry has its id.", $"{plan.Where}.request.url");
            }

            waiting[plan] = placeholders;
        }

        return waiting;
    }

    /// <summary>
    /// Takes the next entry to run from <paramref name="pending"/> (null when none is left): the first in bundle order,
    /// except that one whose conditional URL names placeholders waits until the entries with those fullUrls have their
    /// ids, and then has its criteria rewritten to them (<see cref="EntryPlan.ResolvePlaceholdersAsync"/>). An entry
    /// waiting on one that never gets its id first (a cycle, or a create naming a conditional update) is a 400.
    /// </summary>
    private async Task<EntryPlan?> NextAsync(List<EntryPlan> pending, Dictionary<EntryPlan, IReadOnlyList<string>> waiting,
        List<EntryPlan> writes, Action<EntryPlan> at, CancellationToken ct)
    {
        string? Target(string fullUrl) => writes.FirstOrDefault(w => w.FullUrl == fullUrl && w.Method != Bundle.HTTPVerb.DELETE) is { } owner
            && (owner.ResolvedId ?? owner.Id) is { } id ? $"{owner.ResourceType}/{id}" : null;

        if (pending.Count == 0)
        {
            return null;
        }

        var next = pending.FirstOrDefault(p => !waiting.TryGetValue(p, out var names) || names.All(n => Target(n) is not null));
        if (next is null)
        {
            var stuck = pending.First(waiting.ContainsKey);
            at(stuck);
            var name = waiting[stuck].First(n => Target(n) is null);
            throw new InvalidInputException(writes.Any(w => w.FullUrl == name && w.Method == Bundle.HTTPVerb.DELETE)
                ? $"{stuck.Where}'s conditional URL names '{name}', the fullUrl of a delete: a deleted resource cannot be searched for."
                : $"{stuck.Where}'s conditional URL names '{name}', an entry that gets its id only after this one.", $"{stuck.Where}.request");
        }

        pending.Remove(next);
        if (waiting.TryGetValue(next, out var placeholders))
        {
            at(next);
            await next.ResolvePlaceholdersAsync(placeholders.ToDictionary(n => n, n => Target(n)!, StringComparer.Ordinal), parser, terminology, ct);
        }

        return next;
    }

    /// <summary>
    /// Takes every lock the entries need before any of them runs: first the criteria of conditional updates and the
    /// ids the entries name (in the first round trip, with the reads of those ids), then the criteria of conditional
    /// creates that find nothing yet, then the ids conditional updates matched, each set in sorted order. Conditional
    /// updates are matched (under their criteria lock) to learn their ids. Single requests lock criteria, then id, too.
    /// Transactions can wait on each other in a cycle only when one of them, holding its conditional updates' criteria
    /// or the ids it names, waits for a lock it takes later (a conditional create's criteria that found nothing, an id
    /// a conditional update matched) that another holds while waiting for one of the first one's: the other creates
    /// the resource of those criteria, or names by id the resource the first one's conditional update matched while
    /// its own conditional update matches one the first one names. PostgreSQL ends the cycle with a deadlock error
    /// after its <c>deadlock_timeout</c> (1 s by default), and the write session retries (<see cref="WriteSessions"/>).
    /// A retry takes its conditional creates' criteria locks in the first set too, whether they find their resource or
    /// not: it then waits for others instead of joining the cycle again, so every deadlock leaves fewer transactions
    /// that can be in one. A first attempt does not wait long for its conditional creates' criteria: after a moment it
    /// gives up (see <see cref="IWriteSession.LockAllOrGiveUpAsync"/>) and runs again as a retry, so a cycle of first
    /// attempts through them is broken in a fifth of a second, not a second per victim. The adapters never do this: HIS
    /// messages about one person run one after another, and township chunks in flight never write the same resource or
    /// name the same person.
    /// </summary>
    private static async Task LockAsync(LockingSession session, List<EntryPlan> writes, BundleReferences references, bool retry,
        Action<EntryPlan> at, CancellationToken ct)
    {
        // One round trip: the conditional updates' criteria locks and the locks of the ids the entries name, then,
        // under them, every search the entries need: the conditional updates', the conditional creates' and the
        // conditional references' other than the bundle's own conditional writes (these only read: they take no lock,
        // so the many transactions that name one organisation by its identifier run side by side), and the current
        // versions of the named ids. Each is then answered from the session, a conditional create's match too (read
        // with its search).
        var named = writes.Where(p => p.Id is not null).Select(p => (p.ResourceType, Id: p.Id!)).ToList();
        var creates = writes.Where(p => p.Criteria is null && p.IfNoneExist is { IsEmpty: false }).ToList();
        await session.LockAllAsync(writes.Where(p => p.Criteria is not null).Select(p => VersionWriter.CriteriaLock(p.ResourceType, p.Criteria!))
            .Concat(retry ? creates.Select(p => VersionWriter.CriteriaLock(p.ResourceType, p.IfNoneExist!)) : []).ToList(), ct);
        await session.LockAllAsync(named.Select(i => VersionWriter.IdLock(i.ResourceType, i.Id)).ToList(), ct);
        var written = writes.Select(p => (p.Criteria ?? p.IfNoneExist)?.Canonical(p.ResourceType)).OfType<string>().ToHashSet(StringComparer.Ordinal);
        await session.FindAheadAsync(writes.Where(p => p.Id is null && p.Criteria is { IsEmpty: false }).Select(p => (p.ResourceType, p.Criteria!, 2))
            .Concat(creates.Select(p => (p.ResourceType, p.IfNoneExist!, 2)))
            .Concat(references.Conditional.Where(r => !written.Contains(r.Criteria.Canonical(r.ResourceType))).Select(r => (r.ResourceType, r.Criteria, 2))),
            named, ct);

        // A conditional create whose resource exists writes nothing and needs no lock (see CreateResource); one that
        // found nothing locks its criteria and searches again under the lock, as another writer may have created it.
        var missing = new List<EntryPlan>();
        foreach (var plan in creates)
        {
            at(plan);
            if ((await session.FindAsync(plan.ResourceType, plan.IfNoneExist!, 2, ct)).Count == 0)
            {
                missing.Add(plan);
            }
        }

        // These locks are taken after others, out of the canonical order: a first attempt gives up on one another writer
        // keeps instead of waiting, as that writer may be waiting for one of its own (two transactions each creating what
        // the other updates). The matched ids' below wait: a cycle through them needs ids named crosswise, which is rare,
        // and every conditional update takes them (a lock_timeout around them would cost each such transaction two
        // statements).
        var missingLocks = missing.Select(p => VersionWriter.CriteriaLock(p.ResourceType, p.IfNoneExist!)).ToList();
        await (retry ? session.LockAllAsync(missingLocks, ct) : session.LockAllOrGiveUpAsync(missingLocks, ct));
        await session.FindAheadAsync(missing.Select(p => (p.ResourceType, p.IfNoneExist!, 2)), [], ct);

        // The resources written by a single match are locked, then read in one round trip (the locks go with it); those
        // named by id, and those conditional creates found, were read already (a round trip only when a conditional
        // update matched): every entry then reads its current version from the session.
        var ids = new List<(string ResourceType, string Id)>();
        var existing = new List<(string ResourceType, string Id)>();
        foreach (var plan in writes)
        {
            if (plan.Id is { } id)
            {
                ids.Add((plan.ResourceType, id));
            }
            else if (plan.Criteria is { IsEmpty: false } conditional)
            {
                at(plan);
                var matches = await session.FindAsync(plan.ResourceType, conditional, 2, ct);
                if (matches.Count == 1)
                {
                    ids.Add((plan.ResourceType, matches[0].Id));
                }
            }
            else if (plan.IfNoneExist is { IsEmpty: false } ifNoneExist && await session.FindAsync(plan.ResourceType, ifNoneExist, 2, ct) is [var found])
            {
                existing.Add((plan.ResourceType, found.Id));
            }
        }

        await session.LockAllAsync(ids.Select(i => VersionWriter.IdLock(i.ResourceType, i.Id)).ToList(), ct);
        await session.PrefetchAsync(ids.Concat(existing), ct);
    }

    /// <summary>
    /// Replaces each <c>Type?criteria</c> reference by the one resource it matches (http.html#trules): a
    /// conditional create or update of the same bundle with the same criteria, or else a search in the session.
    /// No match is 400, several are 412. In a transaction, criteria may name other entries' placeholders
    /// (<c>Observation?subject=urn:uuid:…&amp;code=…</c>), which are searched as what those entries resolved to.
    /// </summary>
    private async Task ResolveConditionalReferencesAsync(LockingSession session, BundleReferences references,
        Dictionary<string, EntryPlan> conditionalWrites, IReadOnlyDictionary<string, string>? targets, Action<EntryPlan> at, CancellationToken ct)
    {
        var resolved = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var reference in references.Conditional)
        {
            at(reference.Entry);
            var criteria = targets is null ? reference.Criteria : await WithPlaceholdersResolvedAsync(reference, targets, ct);
            var key = criteria.Canonical(reference.ResourceType);
            if (!resolved.TryGetValue(key, out var target))
            {
                if (conditionalWrites.TryGetValue(key, out var writer))
                {
                    target = $"{writer.ResourceType}/{writer.ResolvedId}";
                }
                else
                {
                    var matches = await session.FindAsync(reference.ResourceType, criteria, 2, ct);
                    target = matches.Count switch
                    {
                        1 => $"{reference.ResourceType}/{matches[0].Id}",
                        0 => throw new InvalidInputException(
                            $"The conditional reference '{reference.Reference.Reference}' matches no resource.", $"{reference.Entry.Where}.resource"),
                        _ => throw new PreconditionFailedException(
                            $"The conditional reference '{reference.Reference.Reference}' matches more than one resource."),
                    };
                }

                resolved[key] = target;
            }

            reference.Reference.Reference = target;
        }
    }

    /// <summary>A conditional reference's criteria with the placeholders of other entries rewritten to their references.</summary>
    private async Task<SearchCriteria> WithPlaceholdersResolvedAsync(ConditionalReference reference, IReadOnlyDictionary<string, string> targets,
        CancellationToken ct)
    {
        var pairs = reference.Conditions;
        if (!pairs.Any(p => p.Value.Split(',').Any(v => BundleReferences.IsPlaceholder(v) && targets.ContainsKey(v))
            && BundleReferences.NamesReference(parser, reference.ResourceType, p.Key)))
        {
            return reference.Criteria;
        }

        var rewritten = BundleReferences.WithTargets(parser, reference.ResourceType, pairs, targets);
        return await terminology.ExpandAsync(parser.ParseCriteria(reference.ResourceType, rewritten), ct);
    }

    private async Task<EntryResponse> ReadAsync(EntryPlan plan, LockingSession? session, CancellationToken ct, bool lenient = false)
    {
        var type = plan.ResourceType;
        var withBody = plan.Method == Bundle.HTTPVerb.GET;
        switch (plan.Read)
        {
            case ReadKind.Read:
                var current = session is null ? await store.ReadAsync(type, plan.Id!, ct) : await session.ReadCurrentAsync(type, plan.Id!, ct);
                if (current is null)
                {
                    throw new ResourceNotFoundException($"{type}/{plan.Id} is not known.");
                }

                if (current.IsDeleted)
                {
                    throw new ResourceGoneException($"{type}/{plan.Id} was deleted (version {current.VersionId}).");
                }

                return NotModified(plan, current)
                    ? new EntryResponse(304, current, WithBody: false)
                    : new EntryResponse(200, current, WithBody: withBody, IsRead: true);
            case ReadKind.VRead:
                var version = await ReadVersionAsync(plan, session, ct);
                return version.IsDeleted
                    ? throw new ResourceGoneException($"Version {version.VersionId} of {type}/{plan.Id} is a deletion.")
                    : new EntryResponse(200, version, WithBody: withBody, IsRead: true);
            case ReadKind.Search:
                var page = session is null
                    ? await search.HandleAsync(new SearchRequest(type.Length == 0 ? null : type, plan.Query, lenient, plan.Compartment), ct)
                    : await SearchAsync(plan, session, ct);
                return new EntryResponse(200, Search: page, Url: plan.Url, WithBody: withBody, IsRead: true);
            default:
                if (session is not null)
                {
                    throw new InvalidInputException("History cannot be read inside a transaction; read it in a batch or on its own.");
                }

                var unknown = plan.Query.FirstOrDefault(p => !ReadHistory.Parameters.Contains(p.Key)).Key;
                if (unknown is not null)
                {
                    throw ReadHistory.Unsupported(unknown);
                }

                var versions = await history.HandleAsync(new HistoryRequest(
                    plan.ResourceType.Length == 0 ? null : plan.ResourceType, plan.Id, Last(plan, "_since"), Last(plan, "_count"),
                    Last(plan, Paging.CursorParameter), Last(plan, "_at")), ct);
                return new EntryResponse(200, History: versions, Url: plan.Url, WithBody: withBody, IsRead: true);
        }
    }

    private async Task<StoredResource> ReadVersionAsync(EntryPlan plan, LockingSession? session, CancellationToken ct)
    {
        if (session is null)
        {
            return await read.ReadVersionAsync(plan.ResourceType, plan.Id!, plan.VersionId!, ct);
        }

        // The transaction may have written the current version itself; older versions are committed history.
        var current = await session.ReadCurrentAsync(plan.ResourceType, plan.Id!, ct);
        return current is not null && current.VersionId.ToString(CultureInfo.InvariantCulture) == plan.VersionId
            ? current
            : await read.ReadVersionAsync(plan.ResourceType, plan.Id!, plan.VersionId!, ct);
    }

    /// <summary>
    /// A search inside a transaction: the search a request of its own runs (sorting, includes, totals, paging), reading
    /// through the session so it sees the transaction's own writes, and so answers as it will once they commit.
    /// </summary>
    private async Task<SearchPage> SearchAsync(EntryPlan plan, LockingSession session, CancellationToken ct)
    {
        if (plan.ResourceType.Length == 0)
        {
            throw new InvalidInputException("A search of every type cannot run inside a transaction; use a batch, or search one type.", plan.Where);
        }

        return await search.HandleAsync(new SearchRequest(plan.ResourceType, plan.Query, Lenient: false, plan.Compartment), session, ct);
    }

    private static bool NotModified(EntryPlan plan, StoredResource current)
    {
        if (plan.IfNoneMatch is { } noneMatch)
        {
            return noneMatch.Split(',').Select(t => t.Trim()).Any(t => t == "*" || t == current.ETag || t == $"\"{current.VersionId}\"");
        }

        return plan.IfModifiedSince is { } since && current.LastUpdated <= since;
    }

    private static string? Last(EntryPlan plan, string name) => plan.Query.LastOrDefault(p => p.Key == name).Value;

    private static IEnumerable<EntryPlan> Of(List<EntryPlan> plans, Bundle.HTTPVerb method) => plans.Where(p => p.Method == method);

    /// <summary>http.html#trules: resource identities may not overlap between the entries of a transaction.</summary>
    private static void Claim(Dictionary<string, EntryPlan> identities, EntryPlan plan, string id)
    {
        var identity = $"{plan.ResourceType}/{id}";
        if (!identities.TryAdd(identity, plan))
        {
            throw new InvalidInputException(
                $"{identities[identity].Where} and {plan.Where} both act on {identity}; a transaction may touch each resource only once.",
                plan.Where);
        }
    }

    /// <summary>Two conditional creates or updates with the same criteria would race for one resource: refused like an overlap.</summary>
    private static void ClaimCriteria(Dictionary<string, EntryPlan> conditionalWrites, EntryPlan plan, SearchCriteria? criteria)
    {
        if (criteria is null || criteria.IsEmpty)
        {
            return;
        }

        var key = criteria.Canonical(plan.ResourceType);
        if (!conditionalWrites.TryAdd(key, plan))
        {
            throw new InvalidInputException(
                $"{conditionalWrites[key].Where} and {plan.Where} both conditionally write '{key}'; a transaction may touch each resource only once.",
                plan.Where);
        }
    }

    /// <summary>fullUrl → the <c>Type/id</c> its entry writes, for placeholder replacement (bdl-7: fullUrls are unique).</summary>
    private static Dictionary<string, string> Targets(List<EntryPlan> writes)
    {
        var targets = new Dictionary<string, string>(StringComparer.Ordinal);
        var owners = new Dictionary<string, EntryPlan>(StringComparer.Ordinal);
        foreach (var plan in writes.Where(p => p.FullUrl is not null && p.Method != Bundle.HTTPVerb.DELETE))
        {
            if (!owners.TryAdd(plan.FullUrl!, plan))
            {
                throw new InvalidInputException(
                    $"{owners[plan.FullUrl!].Where} and {plan.Where} have the same fullUrl '{plan.FullUrl}'; fullUrls in a bundle are unique (bdl-7).",
                    $"{plan.Where}.fullUrl");
            }

            targets[plan.FullUrl!] = $"{plan.ResourceType}/{plan.ResolvedId}";
        }

        return targets;
    }

    private static CreateRequest CreateRequestOf(EntryPlan plan) => new(plan.ResourceType, plan.Resource!, plan.IfNoneExist);

    private static UpdateRequest UpdateRequestOf(EntryPlan plan) => new(plan.ResourceType, plan.Id, plan.Criteria, plan.Resource!, plan.IfMatch, plan.IfNoneMatchVersion);

    private static PatchRequest PatchRequestOf(EntryPlan plan) => new(plan.ResourceType, plan.Id, plan.Criteria, plan.Patch!, plan.IfMatch);

    private static EntryResponse Written(WriteOutcome outcome)
    {
        var resource = outcome.Resource;
        var location = resource is null ? null : $"{resource.ResourceType}/{resource.Id}/_history/{resource.VersionId}";
        return outcome.Status switch
        {
            WriteStatus.Created => new EntryResponse(201, resource, location),
            WriteStatus.Updated or WriteStatus.Existing => new EntryResponse(200, resource, location),
            _ => new EntryResponse(204, resource, WithBody: false),
        };
    }

    /// <summary>The failing entry's own outcome, with every issue pointing at the entry (<c>Bundle.entry[n]</c>).</summary>
    private static FhirException Attribute(string where, string? what, FhirException e)
    {
        var outcome = (OperationOutcome)e.Outcome.DeepCopy();
        foreach (var issue in outcome.Issue)
        {
            if (issue.Diagnostics is { } diagnostics && !diagnostics.StartsWith(where, StringComparison.Ordinal))
            {
                issue.Diagnostics = what is null ? $"{where}: {diagnostics}" : $"{where} ({what}): {diagnostics}";
            }

            if (!issue.Expression.Any(x => x?.StartsWith(where, StringComparison.Ordinal) == true))
            {
                issue.Expression = [where, .. issue.Expression];
            }
        }

        return new FhirException(e.Status, outcome);
    }
}
