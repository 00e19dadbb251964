using Hl7.Fhir.Model;
using InteropHub.Fhir.Storage;

namespace InteropHub.Fhir.Resources;

/// <summary>
/// A business rule checked before a version is written, inside the write transaction, so it sees the state the
/// write will replace (e.g. the referral state machine). A rule refuses by throwing a <see cref="Errors.FhirException"/>.
/// Rules run before the version is stamped and serialised, so a rule may also amend <c>next</c> (e.g. a meta.tag the
/// hub derives from the resource), and what it sets is what is stored.
/// </summary>
public interface IWriteRule
{
    System.Threading.Tasks.Task CheckAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct);

    /// <summary>The check alone, for <c>$validate</c>: what <see cref="CheckAsync"/> refuses, without what it sets up for the write.</summary>
    System.Threading.Tasks.Task ValidateAsync(IWriteSession session, Resource next, StoredResource? previous, CancellationToken ct) =>
        CheckAsync(session, next, previous, ct);

    /// <summary>Checked before <paramref name="current"/> is deleted; a rule that forbids the delete throws.</summary>
    System.Threading.Tasks.Task CheckDeleteAsync(IWriteSession session, StoredResource current, CancellationToken ct) => System.Threading.Tasks.Task.CompletedTask;

    /// <summary>
    /// After <paramref name="written"/> was stored as a new version, in the same transaction: what the rule writes because
    /// of it, with <paramref name="writer"/> (so those versions pass the rules too), e.g. a referral's request following
    /// its Task. Not called when the write changed nothing.
    /// </summary>
    System.Threading.Tasks.Task WrittenAsync(IWriteSession session, VersionWriter writer, Resource written, StoredResource? previous, CancellationToken ct) =>
        System.Threading.Tasks.Task.CompletedTask;
}

/// <summary>
/// Who is calling, as far as the hub knows: until authentication exists, the <c>X-Organization: Organization/{id}</c>
/// header of the request (set by the server for the length of the request).
/// </summary>
public static class CallerContext
{
    private static readonly AsyncLocal<string?> Current = new();

    private static readonly AsyncLocal<bool> Http = new();

    /// <summary>The caller's organisation as a reference (<c>Organization/QX2100012</c>), or null when unknown.</summary>
    public static string? Organization
    {
        get => Current.Value;
        set => Current.Value = value;
    }

    /// <summary>
    /// Whether the write comes from an HTTP client (which can name its organisation) rather than from the hub itself
    /// (an adapter, a background job), whose writes carry no caller.
    /// </summary>
    public static bool OverHttp
    {
        get => Http.Value;
        set => Http.Value = value;
    }
}
