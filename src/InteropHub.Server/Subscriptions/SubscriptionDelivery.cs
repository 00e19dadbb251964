using System.Collections.Concurrent;
using System.Net.Http.Headers;
using Hl7.Fhir.Model;
using InteropHub.Fhir;
using InteropHub.Fhir.Resources;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Fhir.Subscriptions;
using Microsoft.Extensions.Logging;

namespace InteropHub.Server.Subscriptions;

/// <summary>
/// Delivers the subscription outbox (subscription.html, rest-hook): per subscription, row by row in sequence order,
/// with the <c>channel.header</c> values, a <c>PUT [endpoint]/[type]/[id]</c> carrying the version in the
/// <c>channel.payload</c> mime type, or a POST to <c>channel.endpoint</c> without body when the payload is empty. A row is removed only after a 2xx answer,
/// so delivery is at least once and survives restarts (the rows are in the database). A failure holds the
/// subscription's later rows back (order), and is retried after a delay that doubles up to a cap; after
/// <see cref="SubscriptionOptions.MaxFailures"/> failures in a row the Subscription is set to <c>error</c> with the
/// reason, and its rows are kept. Subscriptions that are not active are not delivered; deleted ones lose their rows.
/// With several hub instances on one database, an instance delivers a subscription only while it holds the claim on it
/// (<see cref="ISubscriptionOutbox.ClaimDeliveryAsync"/>), renewed before each POST.
/// </summary>
internal sealed class SubscriptionDelivery : IDisposable
{
    private const int BatchSize = 100;

    private readonly IResourceStore _store;
    private readonly ISubscriptionOutbox _outbox;
    private readonly ActiveSubscriptions _subscriptions;
    private readonly VersionWriter _writer;
    private readonly FhirSerializers _serializers;
    private readonly SubscriptionOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<SubscriptionDelivery> _logger;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _signal = new(0);
    private readonly ConcurrentDictionary<string, Failures> _failures = new(StringComparer.Ordinal);
    private readonly string _owner = Guid.NewGuid().ToString("N");
    private readonly TimeSpan _claim;
    private DateTimeOffset _reloadedAt;

    public SubscriptionDelivery(IResourceStore store, ISubscriptionOutbox outbox, ActiveSubscriptions subscriptions, VersionWriter writer,
        FhirSerializers serializers, SubscriptionOptions options, TimeProvider clock, ILogger<SubscriptionDelivery> logger)
    {
        _store = store;
        _outbox = outbox;
        _subscriptions = subscriptions;
        _writer = writer;
        _serializers = serializers;
        _options = options;
        _clock = clock;
        _logger = logger;
        var refuseInternal = OutboundUrls.Allowed(options.AllowedEndpoints).Length == 0;
        _http = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AllowAutoRedirect = false,
            ConnectCallback = (context, ct) => OutboundUrls.ConnectAsync(context, refuseInternal, SubscriptionOptions.AllowedEndpointsSetting, ct),
        }) { Timeout = options.RequestTimeout };
        _outbox.NotificationsCommitted += (_, _) => Signal();

        // Long enough to cover one POST and the pause before the next round, so a live instance never loses its claim.
        _claim = 2 * (options.RequestTimeout + options.PollInterval);
    }

    /// <summary>Loads the active subscriptions; called before the hub takes requests, so the first writes are matched.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await _subscriptions.ReloadAsync(_store, ct);
        _reloadedAt = _clock.GetUtcNow();
    }

    /// <summary>Delivers until cancelled; rows left by an earlier run are delivered first.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await DeliverAllAsync(ct);
        }
        finally
        {
            try
            {
                await _outbox.ReleaseDeliveryAsync(_owner, CancellationToken.None);
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "The subscription delivery claims could not be released; they expire by themselves.");
            }
        }
    }

    private async Task DeliverAllAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var wait = _options.PollInterval;
            try
            {
                // Woken by every commit that queued rows: reload the Subscriptions only once per poll interval.
                if (_clock.GetUtcNow() - _reloadedAt >= _options.PollInterval)
                {
                    await _subscriptions.ReloadAsync(_store, ct);
                    _reloadedAt = _clock.GetUtcNow();
                    foreach (var ended in _subscriptions.Ended())
                    {
                        // Subscription.end has passed: the server turns it off (a new version; what is queued waits).
                        if (await _store.ReadAsync("Subscription", ended, ct) is { IsDeleted: false } stored)
                        {
                            await SetStatusAsync(stored, Subscription.SubscriptionStatus.Off, null, ct);
                        }
                    }
                }

                var pending = await _outbox.OutboxSubscriptionsAsync(ct);
                var waits = await Task.WhenAll(pending.Select(id => DeliverAsync(id, ct)));
                wait = waits.Where(w => w is not null).Select(w => w!.Value).Append(wait).Min();
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _logger.LogError(e, "Subscription delivery failed; trying again in {Wait}.", wait);
            }

            try
            {
                await _signal.WaitAsync(wait, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _signal.Dispose();
    }

    private void Signal()
    {
        if (_signal.CurrentCount == 0)
        {
            _signal.Release();
        }
    }

    /// <summary>Delivers one subscription's rows in order; returns how long until it should be tried again, or null.</summary>
    private async Task<TimeSpan?> DeliverAsync(string subscriptionId, CancellationToken ct)
    {
        var stored = await _store.ReadAsync("Subscription", subscriptionId, ct);
        if (stored is null || stored.IsDeleted)
        {
            await _outbox.ClearOutboxAsync(subscriptionId, ct);
            _failures.TryRemove(subscriptionId, out _);
            return null;
        }

        if (_subscriptions.Read(stored) is not { } subscription)
        {
            return null;
        }

        // A new version of the Subscription (e.g. reactivated after an error) starts counting afresh.
        var failures = _failures.GetValueOrDefault(subscriptionId);
        if (failures is not null && failures.SubscriptionVersion != stored.VersionId)
        {
            failures = null;
            _failures.TryRemove(subscriptionId, out _);
        }

        var now = _clock.GetUtcNow();
        if (failures is not null && failures.NextAttempt > now)
        {
            return failures.NextAttempt - now;
        }

        while (!ct.IsCancellationRequested)
        {
            var entries = await _outbox.ReadOutboxAsync(subscriptionId, BatchSize, ct);
            foreach (var entry in entries)
            {
                if (!await _outbox.ClaimDeliveryAsync(subscriptionId, _owner, _clock.GetUtcNow() + _claim, _clock.GetUtcNow(), ct))
                {
                    // Another instance delivers this subscription.
                    return null;
                }

                var problem = await SendAsync(subscription, entry, ct);
                if (problem is null)
                {
                    await _outbox.RemoveFromOutboxAsync(entry.Sequence, ct);
                    _failures.TryRemove(subscriptionId, out _);
                    failures = null;
                    continue;
                }

                var count = (failures?.Count ?? 0) + 1;
                if (count >= _options.MaxFailures)
                {
                    _failures.TryRemove(subscriptionId, out _);
                    await SetErrorAsync(stored, $"Delivery to {subscription.Endpoint} failed {count} times in a row; the last attempt: {problem}", ct);
                    return null;
                }

                var delay = TimeSpan.FromTicks(Math.Min(_options.MaxRetryDelay.Ticks, _options.RetryDelay.Ticks * (1L << Math.Min(count - 1, 20))));
                _failures[subscriptionId] = new Failures(stored.VersionId, count, _clock.GetUtcNow() + delay);
                _logger.LogWarning("Delivery of {Type}/{Id}/_history/{Version} to Subscription/{Subscription} failed ({Count} in a row), retrying in {Delay}: {Problem}",
                    entry.ResourceType, entry.ResourceId, entry.VersionId, subscriptionId, count, delay, problem);
                return delay;
            }

            if (entries.Count < BatchSize)
            {
                break;
            }
        }

        return null;
    }

    /// <summary>
    /// Sends one notification; returns null on a 2xx answer, else what went wrong. As R4's rest-hook channel says
    /// (subscription-channel-type): with a payload the endpoint is the receiver's FHIR base and the version is sent as
    /// an update, <c>PUT [endpoint]/[type]/[id]</c>; without one, an empty POST to the endpoint.
    /// </summary>
    private async Task<string?> SendAsync(RestHookSubscription subscription, OutboxEntry entry, CancellationToken ct)
    {
        // Refused when the Subscription is written; checked again for one stored before the allowlist changed.
        if (OutboundUrls.Refusal(subscription.Endpoint, OutboundUrls.Allowed(_options.AllowedEndpoints), SubscriptionOptions.AllowedEndpointsSetting) is { } refusal)
        {
            return $"channel.endpoint {refusal}; the notification was not sent.";
        }

        using var request = subscription.Payload is null
            ? new HttpRequestMessage(HttpMethod.Post, subscription.Endpoint)
            : new HttpRequestMessage(HttpMethod.Put, new Uri($"{subscription.Endpoint.AbsoluteUri.TrimEnd('/')}/{entry.ResourceType}/{entry.ResourceId}"));
        // Without a payload the content is empty (an empty POST either way), so that a content header (Content-Language) has a place.
        byte[] body = [];
        if (subscription.Payload is not null)
        {
            var version = await _store.ReadVersionAsync(entry.ResourceType, entry.ResourceId, entry.VersionId, ct);
            body = version is null ? [] : subscription.IsXml ? _serializers.ToXmlBytes(_serializers.ParseStored(version.Json)) : version.Json;
        }

        request.Content = new ByteArrayContent(body);
        if (subscription.Payload is { } payload)
        {
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(payload);
        }

        foreach (var (name, value) in subscription.Headers)
        {
            // Refused when the Subscription is written; checked again here, as TryAddWithoutValidation would send a CR or LF
            // as is: a header that is not one HTTP header fails the notification (and in the end the Subscription), with why.
            var problem = RestHookSubscription.HeaderProblem(name, value);
            if (problem is not null || !(request.Headers.TryAddWithoutValidation(name, value) || request.Content.Headers.TryAddWithoutValidation(name, value)))
            {
                // A name HeaderProblem passed is a token, quoted safely; the problem quotes what it refuses without control characters.
                return $"{(problem is null ? $"channel.header '{name}' cannot be sent" : $"A channel.header {problem}")}; the notification was not sent.";
            }
        }

        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>Sets the Subscription to <c>error</c> (a new version), unless it changed since delivery started.</summary>
    private Task SetErrorAsync(StoredResource delivered, string reason, CancellationToken ct)
    {
        _logger.LogError("Subscription/{Id} is set to error: {Reason}", delivered.Id, reason);
        return SetStatusAsync(delivered, Subscription.SubscriptionStatus.Error, reason, ct);
    }

    /// <summary>Writes the Subscription with another status (a new version), unless it changed since <paramref name="delivered"/> was read.</summary>
    private async Task SetStatusAsync(StoredResource delivered, Subscription.SubscriptionStatus status, string? reason, CancellationToken ct)
    {
        await _store.RunAsync(async session =>
        {
            await session.LockAsync(VersionWriter.IdLock("Subscription", delivered.Id), ct);
            var current = await session.ReadCurrentAsync("Subscription", delivered.Id, ct);
            if (current is null || current.IsDeleted || current.VersionId != delivered.VersionId
                || _serializers.ParseStored(current.Json) is not Subscription subscription)
            {
                return false;
            }

            subscription.Status = status;
            subscription.Error = reason ?? subscription.Error;
            await _writer.SaveAsync(session, subscription, delivered.Id, current, "PUT", ct);
            return true;
        }, ct);
    }

    private sealed record Failures(int SubscriptionVersion, int Count, DateTimeOffset NextAttempt);
}
