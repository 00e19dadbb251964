using Hl7.Fhir.Model;
using InteropHub.Fhir.Errors;
using InteropHub.Fhir.Search;
using InteropHub.Fhir.Search.Indexing;
using InteropHub.Fhir.Serialization;
using InteropHub.Fhir.Storage;
using InteropHub.Fhir.Subscriptions;

namespace InteropHub.Fhir.Resources;

public enum WriteStatus
{
    /// <summary>A new resource (or a new life of a deleted one): 201.</summary>
    Created,

    /// <summary>A new version of an existing resource: 200.</summary>
    Updated,

    /// <summary>Conditional create found a match and wrote nothing: 200 with the match.</summary>
    Existing,

    /// <summary>A delete wrote a deletion version: 204.</summary>
    Deleted,

    /// <summary>A delete found nothing live to delete: 204, no version written.</summary>
    NothingToDelete,
}

public sealed record WriteOutcome(WriteStatus Status, StoredResource? Resource);

/// <summary>
/// Writes one new version inside a write session: stamps id, versionId and lastUpdated into <c>meta</c>,
/// serialises once to the bytes that reads will return, and hands the store the version and its index rows
/// (extracted here, so they are written in the same transaction as the version), then adds the notifications the
/// version owes to active Subscriptions to the outbox, in the same transaction too.
/// </summary>
public sealed class VersionWriter(FhirSerializers serializers, TimeProvider clock, SearchIndexer? indexer = null, IEnumerable<IWriteRule>? rules = null,
    ActiveSubscriptions? subscriptions = null)
{
    private readonly SearchIndexer _indexer = indexer ?? SearchIndexer.Default;
    private readonly IWriteRule[] _rules = rules?.ToArray() ?? [];

    public async Task<StoredResource> SaveAsync(IWriteSession session, Resource resource, string id, StoredResource? previous,
        string method, CancellationToken ct)
    {
        await CheckRulesAsync(session, resource, previous, ct);
        var row = Stamp(resource, id, (previous?.VersionId ?? 0) + 1, method);
        if (previous is { IsDeleted: false } && SameButForVersion(row.Json, previous.Json))
        {
            return previous;
        }

        var index = _indexer.Extract(resource);
        await session.WriteAsync(row, index, ct);
        if (subscriptions is not null)
        {
            await subscriptions.WrittenAsync(session, row, index, resource, ct);
        }

        var saved = new StoredResource(row.ResourceType, id, row.VersionId, VersionKeys.ToInstant(row.Key), false, row.Json, method);
        foreach (var rule in _rules)
        {
            await rule.WrittenAsync(session, this, resource, previous, ct);
        }

        return saved;
    }

    private static ReadOnlySpan<byte> VersionIdStart => "\"meta\":{\"versionId\":\""u8;

    private static ReadOnlySpan<byte> LastUpdatedStart => "\",\"lastUpdated\":\""u8;

    /// <summary>
    /// Whether an update would write what is stored already: the two serialisations differ at most in the root's
    /// <c>meta.versionId</c> and <c>meta.lastUpdated</c>. Such an update writes no version (as HAPI and the Microsoft
    /// server do), so an unchanged resource sent again (a nightly sync, a replayed message, a resumed import) adds no
    /// history, notifies no Subscription and does not show in <c>_since</c>; the answer is the stored version. Both
    /// are this serialiser's output, whose root begins <c>{"resourceType":…,"id":…,"meta":{"versionId":…,"lastUpdated":…</c>
    /// (element order); a quote inside a string value is escaped, so that text cannot occur earlier.
    /// </summary>
    private static bool SameButForVersion(ReadOnlySpan<byte> written, ReadOnlySpan<byte> stored)
    {
        static bool Split(ReadOnlySpan<byte> json, out ReadOnlySpan<byte> head, out ReadOnlySpan<byte> tail)
        {
            head = tail = default;
            var meta = json.IndexOf(VersionIdStart);
            if (meta < 0)
            {
                return false;
            }

            var afterVersion = json[(meta + VersionIdStart.Length)..];
            var updated = afterVersion.IndexOf(LastUpdatedStart);
            if (updated < 0)
            {
                return false;
            }

            var instant = afterVersion[(updated + LastUpdatedStart.Length)..];
            var end = instant.IndexOf((byte)'"');
            head = json[..(meta + VersionIdStart.Length)];
            tail = end < 0 ? default : instant[end..];
            return end >= 0;
        }

        return Split(written, out var writtenHead, out var writtenTail) && Split(stored, out var storedHead, out var storedTail)
            && writtenHead.SequenceEqual(storedHead) && writtenTail.SequenceEqual(storedTail);
    }

    /// <summary>The business rules a version must pass (see <see cref="IWriteRule"/>); a bulk load checks them before <see cref="Prepare"/>.</summary>
    public async System.Threading.Tasks.Task CheckRulesAsync(IWriteSession session, Resource resource, StoredResource? previous, CancellationToken ct)
    {
        EnsureStorable(resource);
        foreach (var rule in _rules)
        {
            await rule.CheckAsync(session, resource, previous, ct);
        }
    }

    /// <summary>
    /// Parameters carry an operation's input and output and are not kept on the RESTful interface (R4 parameters.html);
    /// a transaction or batch Bundle is processed at <c>POST [base]</c>, and stored it would be a request never run.
    /// </summary>
    private static void EnsureStorable(Resource resource)
    {
        if (resource is Parameters)
        {
            throw new FhirException(System.Net.HttpStatusCode.BadRequest, OperationOutcome.IssueType.NotSupported,
                "Parameters is not stored: it carries the input and output of operations.", "Parameters");
        }

        if (resource is Bundle { Type: Bundle.BundleType.Transaction or Bundle.BundleType.Batch } bundle)
        {
            throw new FhirException(System.Net.HttpStatusCode.BadRequest, OperationOutcome.IssueType.NotSupported,
                $"A {(bundle.Type == Bundle.BundleType.Transaction ? "transaction" : "batch")} Bundle is not stored: POST it to the base url ([base]) to have it processed.",
                "Bundle.type");
        }
    }

    /// <summary>The rules' checks without what they set up for a write (<c>$validate</c>, which writes nothing).</summary>
    public async System.Threading.Tasks.Task ValidateRulesAsync(IWriteSession session, Resource resource, StoredResource? previous, CancellationToken ct)
    {
        EnsureStorable(resource);
        foreach (var rule in _rules)
        {
            await rule.ValidateAsync(session, resource, previous, ct);
        }
    }

    /// <summary>The rules a delete must pass (see <see cref="IWriteRule.CheckDeleteAsync"/>); also for <c>$validate</c> in delete mode.</summary>
    public async System.Threading.Tasks.Task CheckDeleteRulesAsync(IWriteSession session, StoredResource current, CancellationToken ct)
    {
        foreach (var rule in _rules)
        {
            await rule.CheckDeleteAsync(session, current, ct);
        }
    }

    /// <summary>
    /// Stamps and serialises a version and extracts its index rows without writing them: <see cref="SaveAsync"/>
    /// hands the result to a write session, a bulk load (<see cref="IBulkLoader"/>) many results at once.
    /// </summary>
    public (VersionRow Row, SearchIndexEntries Index) Prepare(Resource resource, string id, int version, string method) =>
        (Stamp(resource, id, version, method), _indexer.Extract(resource));

    /// <summary>
    /// Writes first versions made by <see cref="Prepare"/> (of <paramref name="resources"/>, in the same order) by the
    /// store's bulk path (<see cref="IWriteSession.LoadAsync"/>), then adds the notifications they owe to active
    /// Subscriptions to the outbox, in the same transaction, as <see cref="SaveAsync"/> does for one version.
    /// </summary>
    public async System.Threading.Tasks.Task LoadAsync(IWriteSession session, IReadOnlyList<BulkResource> load, IReadOnlyList<Resource> resources, CancellationToken ct)
    {
        await session.LoadAsync(load, ct);
        if (subscriptions is not null)
        {
            await subscriptions.LoadedAsync(session, load, resources, ct);
        }
    }

    /// <summary>Stamps id, versionId and lastUpdated into the resource and serialises it once, to the bytes reads return.</summary>
    private VersionRow Stamp(Resource resource, string id, int version, string method)
    {
        var key = VersionKeys.Next(clock);
        resource.Id = id;
        resource.Meta ??= new Meta();
        resource.Meta.VersionId = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        resource.Meta.LastUpdated = VersionKeys.ToInstant(key);
        return new VersionRow(resource.TypeName, id, version, key, method, false, serializers.ToJsonBytes(resource));
    }

    public async Task<StoredResource> DeleteAsync(IWriteSession session, StoredResource current, CancellationToken ct)
    {
        await CheckDeleteRulesAsync(session, current, ct);

        var key = VersionKeys.Next(clock);
        var version = current.VersionId + 1;
        var row = new VersionRow(current.ResourceType, current.Id, version, key, "DELETE", true, []);
        await session.WriteAsync(row, SearchIndexEntries.Empty, ct);
        if (subscriptions is not null)
        {
            await subscriptions.WrittenAsync(session, row, SearchIndexEntries.Empty, null, ct);
        }

        return new StoredResource(current.ResourceType, current.Id, version, VersionKeys.ToInstant(key), true, [], "DELETE");
    }

    public static string NewId() => Guid.CreateVersion7().ToString();

    public static string IdLock(string resourceType, string id) => $"id:{resourceType}/{id}";

    public const string CriteriaLockPrefix = "if:";

    public static string CriteriaLock(string resourceType, SearchCriteria criteria) => CriteriaLockPrefix + criteria.Canonical(resourceType);
}
