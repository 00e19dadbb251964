using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace InteropHub.Testing;

/// <summary>
/// A .NET program started as a child process on a free loopback port (the hub's own binary for crash tests and
/// benchmarks), ready once <c>readyPath</c> answers 2xx. Disposing kills it.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;

    private ChildProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The process id, e.g. to read its peak memory from /proc.</summary>
    public int Pid => _process.Id;

    /// <param name="dll">The program's dll; started as <c>dotnet dll [arguments] --urls http://127.0.0.1:port</c>.</param>
    /// <param name="environment">Configuration as environment variables (e.g. <c>InteropHub__Storage__Provider</c>).</param>
    public static async Task<ChildProcess> StartAsync(string dll, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?> environment, string readyPath, Action<string>? errorOutput = null)
    {
        var port = FreePort();
        var url = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet", [dll, .. arguments, "--urls", url])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {dll}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                errorOutput?.Invoke(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var child = new ChildProcess(process, new Uri(url));
        using var probe = new HttpClient { BaseAddress = child.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                var code = process.ExitCode;
                child.Dispose();
                throw new InvalidOperationException($"{Path.GetFileName(dll)} exited with code {code} while starting");
            }

            try
            {
                using var response = await probe.GetAsync(new Uri(readyPath, UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return child;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Listening but not answering yet.
            }

            await Task.Delay(100);
        }

        child.Dispose();
        throw new TimeoutException($"{Path.GetFileName(dll)} did not answer {readyPath} within 60 s");
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing, like a power cut of the process.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
