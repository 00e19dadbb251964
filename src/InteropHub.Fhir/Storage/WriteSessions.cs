using System.Data.Common;
using InteropHub.Fhir.Errors;

namespace InteropHub.Fhir.Storage;

/// <summary>
/// Runs a unit of work in one write session and commits it. When the database aborts the transaction to break a
/// deadlock or a serialisation conflict, the whole unit runs again on a new session: the abort rolled everything
/// back, so a re-run is safe as long as the work rebuilds its state from its inputs on each attempt.
/// </summary>
public static class WriteSessions
{
    public const int MaxAttempts = 5;

    public static async Task<T> RunAsync<T>(this IResourceStore store, Func<IWriteSession, Task<T>> work, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var session = await store.BeginWriteAsync(ct);
                var result = await work(session);
                await session.CommitAsync(ct);
                return result;
            }
            catch (DbException e) when (IsTransient(e))
            {
                if (attempt == MaxAttempts)
                {
                    throw new WriteConflictException(
                        $"The write conflicted with concurrent writes {MaxAttempts} times in a row and was rolled back; send it again.");
                }

                // A short random pause, growing with each attempt, so the transactions that collided do not collide again.
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20) * attempt), ct);
            }
        }
    }

    /// <summary>
    /// PostgreSQL's serialization_failure (40001), deadlock_detected (40P01) and lock_not_available (55P03, a
    /// lock given up: <see cref="IWriteSession.LockAllOrGiveUpAsync"/>) (errcodes-appendix): the transaction was
    /// rolled back as a whole and may simply be run again. Stores that never raise them (SQLite has one writer) are
    /// unaffected. A <c>lock_timeout</c> an operator sets on the hub's role or database raises 55P03 too: such a write is
    /// tried again as well, and answered 409 once every attempt timed out.
    /// </summary>
    public static bool IsTransient(Exception e) => e is DbException { SqlState: "40001" or "40P01" or "55P03" };
}
