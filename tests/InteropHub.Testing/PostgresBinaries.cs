using System.ComponentModel;
using System.Diagnostics;

namespace InteropHub.Testing;

/// <summary>Finds the folder holding <c>initdb</c> and <c>postgres</c>.</summary>
internal static class PostgresBinaries
{
    public const string BinVariable = "INTEROPHUB_PG_BIN";

    public static async Task<string> FindAsync()
    {
        var configured = Environment.GetEnvironmentVariable(BinVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return HasServer(configured)
                ? configured
                : throw Missing($"{BinVariable} is '{configured}', but that folder holds no initdb and postgres.");
        }

        // Debian and Ubuntu install each major version side by side and put only the client tools on PATH.
        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            var newest = Directory.GetDirectories(debian)
                .Select(d => (Bin: Path.Combine(d, "bin"), Version: ParseVersion(Path.GetFileName(d))))
                .Where(c => c.Version is not null && HasServer(c.Bin))
                .OrderByDescending(c => c.Version)
                .Select(c => c.Bin)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        var fromPgConfig = await PgConfigBinDirAsync();
        if (fromPgConfig is not null && HasServer(fromPgConfig))
        {
            return fromPgConfig;
        }

        throw Missing("No PostgreSQL server binaries (initdb, postgres) were found in /usr/lib/postgresql/*/bin nor in `pg_config --bindir`.");
    }

    public static InvalidOperationException Missing(string what) => new(
        what + " The PostgreSQL store tests need a PostgreSQL server and are never skipped. Either install it "
        + "(Debian/Ubuntu: `apt-get install postgresql`; the tests start their own throwaway cluster from its binaries "
        + $"and need no running service), or set {BinVariable} to the folder holding initdb and postgres, or set "
        + $"{PostgresCluster.ConnectionStringVariable} to the connection string of a server on which the tests may create "
        + "databases (e.g. Host=127.0.0.1;Port=5432;Username=postgres;Password=secret).");

    private static bool HasServer(string bin) =>
        File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "postgres"));

    private static Version? ParseVersion(string name) =>
        Version.TryParse(name.Contains('.', StringComparison.Ordinal) ? name : name + ".0", out var version) ? version : null;

    private static async Task<string?> PgConfigBinDirAsync()
    {
        try
        {
            var info = new ProcessStartInfo("pg_config", "--bindir") { UseShellExecute = false };
            var (exitCode, output) = await ProcessRunner.RunAsync(info, TimeSpan.FromSeconds(10));
            return exitCode == 0 ? output.Trim() : null;
        }
        catch (Win32Exception)
        {
            // pg_config is not on PATH.
            return null;
        }
    }
}
