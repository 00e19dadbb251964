using System.Collections.Specialized;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace InteropHub.Server.Tests;

/// <summary>A notification a <see cref="Receiver"/> accepted.</summary>
public sealed record Notification(string Method, string Path, NameValueCollection Headers, string? ContentType, byte[] Body);

/// <summary>
/// A subscriber endpoint (Kestrel on a free local port): answers each request with the status <see cref="Answer"/>
/// gives for its attempt number (1, 2, …; a negative status resets the connection without an answer), records what
/// it accepted, and can be taken down and brought up again on the same port.
/// </summary>
public sealed class Receiver : IAsyncDisposable
{
    private readonly Channel<Notification> _accepted = Channel.CreateUnbounded<Notification>();
    private readonly Channel<int> _attempts = Channel.CreateUnbounded<int>();
    private WebApplication? _app;
    private int _attempt;

    private Receiver(int port) => Port = port;

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/hook";

    public Func<int, int> Answer { get; set; } = _ => 200;

    /// <summary>How many requests the receiver has seen, answered or not.</summary>
    public int Attempts => Volatile.Read(ref _attempt);

    public static async Task<Receiver> StartAsync()
    {
        var receiver = new Receiver(FreePort());
        await receiver.UpAsync();
        return receiver;
    }

    public async Task UpAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, Port));
        _app = builder.Build();
        _app.Run(HandleAsync);
        await _app.StartAsync();
    }

    /// <summary>Stops listening: connections to the port are refused until <see cref="UpAsync"/>.</summary>
    public async Task DownAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>The next accepted notification, waiting up to 30 s.</summary>
    public async Task<Notification> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await _accepted.Reader.ReadAsync(timeout.Token);
    }

    public async Task<List<Notification>> NextAsync(int count)
    {
        var notifications = new List<Notification>();
        for (var i = 0; i < count; i++)
        {
            notifications.Add(await NextAsync());
        }

        return notifications;
    }

    /// <summary>Waits (up to 30 s) until the receiver has seen <paramref name="count"/> requests, answered or not.</summary>
    public async Task AttemptedAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await _attempts.Reader.ReadAsync(timeout.Token) < count)
        {
        }
    }

    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public ValueTask DisposeAsync() => new(DownAsync());

    private async Task HandleAsync(HttpContext context)
    {
        var attempt = Interlocked.Increment(ref _attempt);
        var status = Answer(attempt);
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        if (status < 0)
        {
            context.Abort();
        }
        else
        {
            if (status is >= 200 and < 300)
            {
                var headers = new NameValueCollection();
                foreach (var (name, values) in context.Request.Headers)
                {
                    headers.Add(name, values.ToString());
                }

                _accepted.Writer.TryWrite(new Notification(context.Request.Method, context.Request.Path, headers, context.Request.ContentType, body.ToArray()));
            }

            context.Response.StatusCode = status;
        }

        _attempts.Writer.TryWrite(attempt);
    }
}
