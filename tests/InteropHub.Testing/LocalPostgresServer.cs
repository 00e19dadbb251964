using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace InteropHub.Testing;

/// <summary>
/// A PostgreSQL cluster of the test process's own: <c>initdb</c> into a fresh temp folder, the postmaster on a free
/// loopback port with its Unix sockets in that folder, stopped and deleted when the test process exits. Settings
/// favour speed over durability (fsync off): the data is thrown away anyway.
/// </summary>
internal sealed class LocalPostgresServer
{
    /// <summary>
    /// Runs the postmaster and cleans up after the test process. ProcessExit handlers are not enough: the test
    /// runner kills its test host moments after the run (and a crash or a kill skips them entirely), so this loop
    /// waits until the test process is gone, then stops the postmaster (immediate shutdown) if it still runs and
    /// removes the folder, a second or so later. Where there is no /proc to watch, the postmaster runs unwatched.
    /// A postmaster that ends early (e.g. its port was taken) leaves its exit code in postmaster.exited.
    /// Arguments: test process id, cluster folder, then the postmaster command line.
    /// </summary>
    private const string WatchdogScript = """
        exec </dev/null >>"$2/postgres.log" 2>&1
        parent=$1
        dir=$2
        shift 2
        if [ ! -d /proc/self ]; then
            exec "$@"
        fi
        ( "$@"; echo "$?" >"$dir/postmaster.exited" ) &
        while [ -d "/proc/$parent" ]; do
            sleep 1
        done
        if [ -f "$dir/data/postmaster.pid" ]; then
            kill -QUIT "$(head -n 1 "$dir/data/postmaster.pid")" 2>/dev/null
        fi
        wait
        rm -rf "$dir"
        """;

    private const int StartAttempts = 3;

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _root;
    private readonly Process _watchdog;

    private LocalPostgresServer(string root, Process watchdog, int port)
    {
        _root = root;
        _watchdog = watchdog;
        AdminConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = IPAddress.Loopback.ToString(),
            Port = port,
            Username = "postgres",
            Database = "postgres",
            IncludeErrorDetail = true,
        }.ConnectionString;
    }

    public string AdminConnectionString { get; }

    private string DataDirectory => Path.Combine(_root, "data");

    private string LogPath => Path.Combine(_root, "postgres.log");

    private string PostmasterPidPath => Path.Combine(DataDirectory, "postmaster.pid");

    private string ExitedMarkerPath => Path.Combine(_root, "postmaster.exited");

    public static async Task<LocalPostgresServer> StartAsync()
    {
        var bin = await PostgresBinaries.FindAsync();

        // initdb and postgres refuse to run as root; the Debian package creates the postgres system user for them.
        var runner = new ProcessRunner(Environment.UserName == "root" ? "postgres" : null);
        var root = Directory.CreateTempSubdirectory("interophub-pg-").FullName;
        try
        {
            if (runner.RunAsUser is { } user)
            {
                await ChownAsync(root, user);
            }

            var data = Path.Combine(root, "data");
            var (exitCode, output) = await runner.RunAsync(Path.Combine(bin, "initdb"),
                ["-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], TimeSpan.FromMinutes(2));
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"initdb failed (exit code {exitCode}):\n{output}");
            }

            // The free port is probed, then bound by the postmaster a moment later; another process may take it in
            // between, so a start that fails is retried on a new port.
            for (var attempt = 1; ; attempt++)
            {
                File.Delete(Path.Combine(root, "postmaster.exited"));
                var port = FreePort();
                string[] arguments =
                [
                    "-c", WatchdogScript, "interophub-pg-watchdog", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), root,
                    Path.Combine(bin, "postgres"), "-D", data, "-p", port.ToString(CultureInfo.InvariantCulture),
                    "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={root}",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
                ];
                var watchdog = Process.Start(runner.StartInfo("/bin/sh", arguments))
                    ?? throw new InvalidOperationException("Could not start /bin/sh to run the PostgreSQL watchdog.");
                var server = new LocalPostgresServer(root, watchdog, port);
                if (await server.WaitUntilReadyAsync())
                {
                    return server;
                }

                if (attempt == StartAttempts)
                {
                    throw new InvalidOperationException(
                        $"PostgreSQL did not start from {bin} (tried {StartAttempts} ports). Its log:\n{server.ReadLog()}");
                }
            }
        }
        catch
        {
            TryDelete(root);
            throw;
        }
    }

    /// <summary>
    /// Stops the postmaster at once and deletes the folder. Called from ProcessExit, which the test runner may cut
    /// short, so it is quick and best effort: the watchdog finishes the job if this does not.
    /// </summary>
    public void Stop()
    {
        try
        {
            if (ReadPostmasterPid() is { } pid)
            {
                // SIGQUIT is PostgreSQL's immediate shutdown: the data is thrown away, so nothing needs flushing.
                var (exitCode, _) = ProcessRunner.RunAsync(new ProcessStartInfo("kill") { ArgumentList = { "-QUIT", pid } },
                    TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
                var waited = Stopwatch.StartNew();
                while (exitCode == 0 && File.Exists(PostmasterPidPath) && waited.Elapsed < TimeSpan.FromSeconds(5))
                {
                    Thread.Sleep(10);
                }
            }
        }
        finally
        {
            TryDelete(_root);
            _watchdog.Dispose();
        }
    }

    private async Task<bool> WaitUntilReadyAsync()
    {
        var probe = new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false, Timeout = 5 }.ConnectionString;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartTimeout)
        {
            if (_watchdog.HasExited || File.Exists(ExitedMarkerPath))
            {
                return false;
            }

            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync();
                return true;
            }
            catch (NpgsqlException)
            {
                // Not listening yet, or "the database system is starting up".
                await Task.Delay(100);
            }
        }

        throw new TimeoutException($"PostgreSQL did not accept connections within {StartTimeout.TotalSeconds:0} s. Its log:\n{ReadLog()}");
    }

    /// <summary>The first line of postmaster.pid, or null when the postmaster is not running.</summary>
    private string? ReadPostmasterPid()
    {
        try
        {
            using var reader = new StreamReader(PostmasterPidPath);
            var line = reader.ReadLine()?.Trim();
            return string.IsNullOrEmpty(line) ? null : line;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private string ReadLog()
    {
        try
        {
            return File.ReadAllText(LogPath);
        }
        catch (IOException e)
        {
            return $"(no log: {e.Message})";
        }
    }

    private static async Task ChownAsync(string path, string user)
    {
        var info = new ProcessStartInfo("chown") { UseShellExecute = false };
        info.ArgumentList.Add("-R");
        info.ArgumentList.Add($"{user}:");
        info.ArgumentList.Add(path);
        var (exitCode, output) = await ProcessRunner.RunAsync(info, TimeSpan.FromSeconds(30));
        if (exitCode != 0)
        {
            throw PostgresBinaries.Missing(
                $"The tests run as root, and initdb/postgres refuse to, so they run as the '{user}' system user, but `chown` to it failed: {output.Trim()}.");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void TryDelete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort at exit; the watchdog also removes the folder once this process is gone.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }
    }
}
