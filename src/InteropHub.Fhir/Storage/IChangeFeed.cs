namespace InteropHub.Fhir.Storage;

/// <summary>
/// Implemented by stores that other processes may write to (PostgreSQL behind several hub instances), so that an
/// in-process cache learns about every committed change, whoever made it.
/// </summary>
public interface IChangeFeed
{
    /// <summary>Runs until cancelled, reconnecting after failures, and reports to <paramref name="listener"/>.</summary>
    Task ListenAsync(IChangeListener listener, CancellationToken ct);
}

public interface IChangeListener
{
    /// <summary>Listening (again): changes from now on will be reported; earlier ones may have been missed.</summary>
    void Connected();

    /// <summary>A change to <c>Type/id</c> was committed.</summary>
    void Changed(string resourceType, string id);

    /// <summary>The feed is down: changes are not being reported until the next <see cref="Connected"/>.</summary>
    void Lost();
}
