namespace InteropHub.Fhir.Storage;

/// <summary>
/// Small named values the hub's background jobs keep across restarts, in the hub's database (table <c>hub_state</c>),
/// e.g. which recognition catalogue version results have last been re-tagged for, or the <c>updated_at</c> of each
/// township row applied. A write session writes them in its own transaction (<see cref="IWriteSession.WriteStatesAsync"/>).
/// </summary>
public interface IHubStateStore
{
    /// <summary>The value, or null when it was never written.</summary>
    Task<string?> ReadStateAsync(string name, CancellationToken ct);

    Task WriteStateAsync(string name, string value, CancellationToken ct);

    /// <summary>The values of those of <paramref name="names"/> that were written, in one query.</summary>
    Task<IReadOnlyDictionary<string, string>> ReadStatesAsync(IReadOnlyCollection<string> names, CancellationToken ct);

    /// <summary>The values whose names start with <paramref name="prefix"/> (e.g. counters of one kind).</summary>
    Task<IReadOnlyDictionary<string, string>> ReadStatesStartingWithAsync(string prefix, CancellationToken ct);
}
