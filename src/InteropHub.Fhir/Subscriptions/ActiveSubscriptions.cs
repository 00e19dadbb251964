using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Parameters;
using InteropHub.Fhir.Search.Query;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;

namespace InteropHub.Fhir.Subscriptions;

/// <summary>
/// The active rest-hook Subscriptions, held in memory by resource type, and the write-time side of notification:
/// <list type="bullet">
/// <item>as a write rule, a Subscription being written is checked (422 when the hub cannot deliver it) and a
/// <c>requested</c> one is made <c>active</c>: in R4 the server activates a subscription it accepts;</item>
/// <item><see cref="WrittenAsync"/> runs in the write session after each version and its index rows are written: for
/// every active subscription on that type whose criteria match the version (the criteria plus <c>_id</c>, searched in
/// the session, which sees the uncommitted index rows) it adds an outbox row, so the notification commits or rolls
/// back with the change. A type nobody subscribed to costs one dictionary look-up.</item>
/// </list>
/// A Subscription written here takes effect at once; the set is rebuilt from what is committed by
/// <see cref="ReloadAsync"/> (at start-up and every poll of the delivery worker, which is also how other hub
/// instances' Subscriptions arrive), keeping this instance's recent writes that may not have committed yet.
/// </summary>
public sealed class ActiveSubscriptions(SearchParser parser, FhirSerializers serializers, SubscriptionOptions options, ILogger<ActiveSubscriptions> logger,
    TimeProvider clock) : IWriteRule
{
    /// <summary>How long a Subscription written here wins over the committed state (its transaction may still be open).</summary>
    private static readonly TimeSpan WriteGrace = TimeSpan.FromSeconds(30);

    private readonly Lock _gate = new();
    private Dictionary<string, RestHookSubscription> _committed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (RestHookSubscription? Active, long At)> _written = new(StringComparer.Ordinal);
    private volatile Dictionary<string, RestHookSubscription[]> _byType = new(StringComparer.Ordinal);

    public Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct)
    {
        if (next is Subscription subscription)
        {
            var readable = RestHookSubscription.From(subscription, parser);
            // A new endpoint, or one to be used again; the hub setting error or off on a Subscription whose endpoint is
            // no longer allowed keeps it.
            var endpointKept = previous is { IsDeleted: false } && serializers.ParseStored(previous.Json) is Subscription before
                && before.Channel?.Endpoint == subscription.Channel.Endpoint
                && subscription.Status is Subscription.SubscriptionStatus.Error or Subscription.SubscriptionStatus.Off;
            if (!endpointKept
                && OutboundUrls.Refusal(readable.Endpoint, OutboundUrls.Allowed(options.AllowedEndpoints), SubscriptionOptions.AllowedEndpointsSetting) is { } refusal)
            {
                throw new BusinessRuleException($"Subscription.channel.endpoint '{readable.Endpoint}' {refusal}.", "Subscription.channel.endpoint");
            }

            subscription.Status ??= Subscription.SubscriptionStatus.Requested;
            if (readable.EndedBy(clock.GetUtcNow()) && subscription.Status is Subscription.SubscriptionStatus.Requested or Subscription.SubscriptionStatus.Active)
            {
                // Its end has passed: the server turns it off (subscription.html, Subscription.end).
                subscription.Status = Subscription.SubscriptionStatus.Off;
            }
            else if (subscription.Status == Subscription.SubscriptionStatus.Requested)
            {
                subscription.Status = Subscription.SubscriptionStatus.Active;
                subscription.Error = null;
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Called by <see cref="VersionWriter"/> inside the session, after <paramref name="version"/> and its <paramref name="index"/> rows are written.</summary>
    public async Task WrittenAsync(IWriteSession session, VersionRow version, SearchIndexEntries index, Resource? resource, CancellationToken ct)
    {
        if (version.ResourceType == "Subscription")
        {
            Remember(version.Id, resource as Subscription);
        }

        if (version.IsDeleted || !_byType.TryGetValue(version.ResourceType, out var subscriptions))
        {
            return;
        }

        var now = clock.GetUtcNow();
        foreach (var subscription in subscriptions)
        {
            if (!subscription.EndedBy(now) && MayMatch(subscription, index) && (await session.FindAsync(version.ResourceType, subscription.For([version.Id]), 1, ct)).Count > 0)
            {
                await session.AddNotificationAsync(subscription.Id, version, ct);
            }
        }
    }

    /// <summary>
    /// Called by <see cref="VersionWriter.LoadAsync"/> inside the session, after the first versions of new resources were
    /// bulk-loaded (an import): the notifications they owe, as <see cref="WrittenAsync"/> adds them for one version. Per
    /// active subscription on a loaded type, one search of its criteria plus the ids of the versions that may match, all
    /// in one round trip, then the outbox rows in write order; a load of types nobody subscribed to searches nothing.
    /// </summary>
    public async Task LoadedAsync(IWriteSession session, IReadOnlyList<BulkResource> loaded, IReadOnlyList<Resource> resources, CancellationToken ct)
    {
        foreach (var subscription in resources.OfType<Subscription>())
        {
            Remember(subscription.Id!, subscription);
        }

        var byType = _byType;
        var now = clock.GetUtcNow();
        var searches = new List<(string ResourceType, SearchCriteria Criteria, int Limit)>();
        var searchedFor = new List<string>();
        foreach (var type in loaded.GroupBy(r => r.Version.ResourceType, StringComparer.Ordinal))
        {
            foreach (var subscription in byType.GetValueOrDefault(type.Key, []).Where(s => !s.EndedBy(now)))
            {
                // A search names its ids as parameters: a thousand at most, whatever the import's batch size.
                foreach (var ids in type.Where(r => MayMatch(subscription, r.Index)).Select(r => r.Version.Id).Chunk(1000))
                {
                    searches.Add((type.Key, subscription.For(ids), ids.Length));
                    searchedFor.Add(subscription.Id);
                }
            }
        }

        if (searches.Count == 0)
        {
            return;
        }

        var found = (await session.FindManyAsync(searches, [], ct)).Found;
        var matched = new HashSet<(string Type, string Id, string Subscription)>();
        for (var i = 0; i < searches.Count; i++)
        {
            matched.UnionWith(found[i].Select(m => (searches[i].ResourceType, m.Id, searchedFor[i])));
        }

        foreach (var version in loaded.Select(r => r.Version).OrderBy(v => v.Key))
        {
            foreach (var subscription in byType.GetValueOrDefault(version.ResourceType, []))
            {
                if (matched.Contains((version.ResourceType, version.Id, subscription.Id)))
                {
                    await session.AddNotificationAsync(subscription.Id, version, ct);
                }
            }
        }
    }

    /// <summary>
    /// False when a plain reference criterion (<c>owner=Organization/X</c>) is met by none of the version's own index
    /// rows, compared as the search SQL compares them: with many subscribers on one type (each hospital on its own
    /// owner) only the ones that can match cost a query.
    /// </summary>
    private static bool MayMatch(RestHookSubscription subscription, SearchIndexEntries index) =>
        subscription.Criteria.Criteria.All(criterion => MayMatch(criterion, index));

    /// <summary>A union (Task's patient reads subject's rows of type Patient too) may match when one of its parts may.</summary>
    private static bool MayMatch(Criterion criterion, SearchIndexEntries index) => criterion switch
    {
        IndexCriterion { Negated: false, Table: IndexTable.References } reference => reference.AnyOf.Any(condition => condition is not ReferenceCondition target
            || index.References.Any(row => row.Param == reference.Param
                && (target.Url is { } url ? row.Url == url : row.TargetId == (target.TargetId ?? "") && (target.TargetType is null || row.TargetType == target.TargetType)))),
        AnyCriterion any => any.Any.Any(part => MayMatch(part, index)),
        _ => true,
    };

    /// <summary>Rebuilds the set from the committed active Subscriptions.</summary>
    /// <summary>The committed active subscriptions whose <c>end</c> has passed, for the delivery worker to turn off.</summary>
    public IReadOnlyList<string> Ended()
    {
        var now = clock.GetUtcNow();
        lock (_gate)
        {
            return [.. _committed.Values.Where(s => s.EndedBy(now)).Select(s => s.Id)];
        }
    }

    public async Task ReloadAsync(IResourceStore store, CancellationToken ct)
    {
        var committed = new Dictionary<string, RestHookSubscription>(StringComparer.Ordinal);
        var active = parser.ParseCriteria("Subscription", [new("status", "active")]);
        long? after = null;
        while (true)
        {
            var matches = await store.FindAsync("Subscription", active, after, 500, ct);
            if (matches.Count == 0)
            {
                break;
            }

            foreach (var stored in await store.ReadManyAsync("Subscription", matches.Select(m => m.Id).ToList(), ct))
            {
                if (Read(stored) is { } subscription)
                {
                    committed[subscription.Id] = subscription;
                }
            }

            after = matches[^1].Rid;
        }

        lock (_gate)
        {
            _committed = committed;
            var now = Environment.TickCount64;
            foreach (var (id, written) in _written.ToList())
            {
                if (now - written.At > WriteGrace.TotalMilliseconds)
                {
                    _written.Remove(id);
                }
            }

            Publish();
        }
    }

    /// <summary>The deliverable form of a stored Subscription; null when it is not active or cannot be delivered.</summary>
    public RestHookSubscription? Read(StoredResource stored)
    {
        if (stored.IsDeleted || serializers.ParseStored(stored.Json) is not Subscription { Status: Subscription.SubscriptionStatus.Active } subscription)
        {
            return null;
        }

        try
        {
            return RestHookSubscription.From(subscription, parser);
        }
        catch (FhirException e)
        {
            logger.LogWarning("Subscription/{Id} is active but cannot be delivered, so it is not used: {Problem}", stored.Id, e.Message);
            return null;
        }
    }

    private void Remember(string id, Subscription? subscription)
    {
        var active = subscription is { Status: Subscription.SubscriptionStatus.Active } ? RestHookSubscription.From(subscription, parser) : null;
        lock (_gate)
        {
            _written[id] = (active, Environment.TickCount64);
            Publish();
        }
    }

    private void Publish()
    {
        var all = new Dictionary<string, RestHookSubscription>(_committed, StringComparer.Ordinal);
        foreach (var (id, written) in _written)
        {
            if (written.Active is { } active)
            {
                all[id] = active;
            }
            else
            {
                all.Remove(id);
            }
        }

        _byType = all.Values.GroupBy(s => s.ResourceType, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(s => s.Id, StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
    }
}
