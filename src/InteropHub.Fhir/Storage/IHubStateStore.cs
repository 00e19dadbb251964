namespace InteropHub.Fhir.Storage;

/// <summary>
/// Small named values the hub's background jobs keep across restarts, in the hub's database (table <c>hub_state</c>),
/// e.g. which recognition catalogue version results have last been re-tagged for.
/// </summary>
public interface IHubStateStore
{
    /// <summary>The value, or null when it was never written.</summary>
    Task<string?> ReadStateAsync(string name, CancellationToken ct);

    Task WriteStateAsync(string name, string value, CancellationToken ct);
}
