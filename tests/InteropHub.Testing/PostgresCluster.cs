using System.Collections.Concurrent;
using System.Text;
using Npgsql;

namespace InteropHub.Testing;

/// <summary>
/// One PostgreSQL server per test process, started lazily on first use and shared by every test: the server named
/// by <c>INTEROPHUB_TEST_POSTGRES</c> when set, otherwise a throwaway cluster started from the machine's PostgreSQL
/// binaries (see <see cref="LocalPostgresServer"/>). Tests isolate themselves with <see cref="CreateDatabaseAsync"/>.
/// A missing PostgreSQL is an exception that says how to install it, never a skipped test.
/// </summary>
public static class PostgresCluster
{
    /// <summary>A connection string to an existing server on which the tests may create databases.</summary>
    public const string ConnectionStringVariable = "INTEROPHUB_TEST_POSTGRES";

    private static readonly Lazy<Task<Server>> Shared = new(() => Task.Run(StartAsync), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Creates a fresh, uniquely named, empty database and returns a connection string to it.</summary>
    /// <param name="prefix">Readable start of the database name (e.g. the test class); sanitised to [a-z0-9_].</param>
    public static async Task<string> CreateDatabaseAsync(string? prefix = null, CancellationToken ct = default)
    {
        var server = await Shared.Value.WaitAsync(ct);
        var name = DatabaseName(prefix);
        await using (var connection = new NpgsqlConnection(server.AdminConnectionString))
        {
            await connection.OpenAsync(ct);
            // The name is built from [a-z0-9_] only, so quoting it is enough (CREATE DATABASE takes no parameters).
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(ct);
        }

        server.Created.Enqueue(name);
        return new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// Drops a database made by <see cref="CreateDatabaseAsync"/>, closing any connection still open to it. Test
    /// classes call this when they finish: exit handlers may not get to run (see <see cref="LocalPostgresServer"/>),
    /// and a server named by <c>INTEROPHUB_TEST_POSTGRES</c> is not thrown away with the process.
    /// </summary>
    public static async Task DropDatabaseAsync(string connectionString, CancellationToken ct = default)
    {
        var server = await Shared.Value.WaitAsync(ct);
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        if (name is null || !server.Created.Contains(name))
        {
            throw new ArgumentException($"Database '{name}' was not created by {nameof(CreateDatabaseAsync)}; only those are dropped.", nameof(connectionString));
        }

        await using var connection = new NpgsqlConnection(server.AdminConnectionString);
        await connection.OpenAsync(ct);
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync(ct);
    }

    private static async Task<Server> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable(ConnectionStringVariable);
        Server server;
        if (!string.IsNullOrWhiteSpace(configured))
        {
            server = new Server(configured, null);
        }
        else
        {
            var local = await LocalPostgresServer.StartAsync();
            server = new Server(local.AdminConnectionString, local);
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Shutdown();
        return server;
    }

    private static string DatabaseName(string? prefix)
    {
        var name = new StringBuilder();
        foreach (var c in (string.IsNullOrWhiteSpace(prefix) ? "test" : prefix).ToLowerInvariant())
        {
            name.Append(c is >= 'a' and <= 'z' or >= '0' and <= '9' ? c : '_');
            if (name.Length == 40)
            {
                break;
            }
        }

        // PostgreSQL names are at most 63 bytes: 40 + '_' + 16 hex characters fit.
        return name.Append('_').Append(Guid.NewGuid().ToString("N").AsSpan(0, 16)).ToString();
    }

    private sealed class Server(string adminConnectionString, LocalPostgresServer? local)
    {
        public string AdminConnectionString { get; } = adminConnectionString;

        public ConcurrentQueue<string> Created { get; } = new();

        public void Shutdown()
        {
            NpgsqlConnection.ClearAllPools();
            if (local is not null)
            {
                // The whole cluster goes, with every database in it.
                local.Stop();
                return;
            }

            DropCreatedDatabases();
        }

        /// <summary>On a server that is not ours, drop what the tests created (best effort: the process is exiting).</summary>
        private void DropCreatedDatabases()
        {
            try
            {
                using var connection = new NpgsqlConnection(AdminConnectionString);
                connection.Open();
                foreach (var name in Created)
                {
                    using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
                    drop.ExecuteNonQuery();
                }
            }
            catch (NpgsqlException)
            {
                // Leftover test databases are harmless; failing the exit would hide the test results.
            }
        }
    }
}
