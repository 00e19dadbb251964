using System.Net;
using System.Net.Sockets;
using InteropHub.Adapters.His.Acks;
using InteropHub.Adapters.His.Mllp;
using InteropHub.Adapters.His.Parsing;
using InteropHub.Adapters.Ingest;

namespace InteropHub.Server.Adapters;

/// <summary><c>InteropHub:Mllp</c>.</summary>
public sealed class MllpOptions
{
    /// <summary>The TCP port; 0 disables the listener.</summary>
    public int Port { get; set; } = 2575;

    public int MaxConnections { get; set; } = 64;

    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>A connection silent for this long is closed, so slow or dead clients cannot hold a slot forever.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// The HIS's MLLP interface (his-hl7v2.md, MLLP release 1): one frame per message, answered with one framed ACK
/// after the message is committed to the inbox. Split and concatenated frames are handled by the decoder;
/// garbage between frames and oversize frames are answered AR without dropping the connection; connections are
/// bounded in number and idle time.
/// </summary>
public sealed class MllpListener(MllpOptions options, IngestPipeline pipeline, TimeProvider clock, ILogger<MllpListener> logger) : BackgroundService
{
    private TcpListener? _listener;

    /// <summary>The port actually bound (differs from the option when it was a free port chosen by the OS).</summary>
    public int? BoundPort { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Port <= 0)
        {
            return;
        }

        _listener = new TcpListener(IPAddress.Any, options.Port);
        try
        {
            _listener.Start();
        }
        catch (SocketException e)
        {
            // The FHIR API stays up; only the MLLP interface is missing, and the log says why.
            logger.LogError(e, "MLLP listener could not bind port {Port}; HL7 v2 over MLLP is unavailable (InteropHub:Mllp:Port).", options.Port);
            return;
        }

        BoundPort = ((IPEndPoint)_listener.LocalEndpoint).Port;
        logger.LogInformation("MLLP listener on port {Port}.", BoundPort);
        using var slots = new SemaphoreSlim(options.MaxConnections, options.MaxConnections);
        var connections = new List<Task>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await slots.WaitAsync(stoppingToken);
                var client = await _listener.AcceptTcpClientAsync(stoppingToken);
                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(Task.Run(async () =>
                {
                    try
                    {
                        await ServeAsync(client, stoppingToken);
                    }
                    finally
                    {
                        slots.Release();
                    }
                }, CancellationToken.None));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _listener.Stop();
            await Task.WhenAll(connections);
        }
    }

    private async Task ServeAsync(TcpClient client, CancellationToken stoppingToken)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var mllp = new MllpStream(stream, options.MaxMessageBytes);
            while (true)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                idle.CancelAfter(options.IdleTimeout);
                var frame = await mllp.ReadAsync(idle.Token);
                if (frame is null)
                {
                    return;
                }

                byte[] ack;
                try
                {
                    ack = frame.Kind switch
                    {
                        MllpFrameKind.Message => (await pipeline.ReceiveHl7Async(frame.Bytes.ToArray(), stoppingToken)).Ack,
                        // The kept start of the frame names the message when its MSH is readable: MSA-2 answers it.
                        _ => MllpRefusal.Ack(MllpRefusal.Refuse(frame, options.MaxMessageBytes), clock.GetLocalNow()),
                    };
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The inbox could not store it: AR tells the sender to keep the message and retry (§7).
                    logger.LogWarning(e, "An MLLP message could not be stored.");
                    ack = Reject($"暂时无法保存消息: {e.Message}", 207);
                }

                await mllp.WriteAsync(ack, stoppingToken);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // A client that disconnects, stalls past the idle timeout or is cut at shutdown has been answered for
            // every message it completed; nothing is lost by closing.
            logger.LogDebug(e, "MLLP connection closed.");
        }
    }

    private byte[] Reject(string detail, int errorCode)
    {
        var issue = new InteropHub.Adapters.His.HisIssue(InteropHub.Adapters.RejectionReason.Malformed, null, detail,
            InteropHub.Adapters.His.IssueSeverity.Error, errorCode);
        return Hl7Ack.Encode(Hl7Ack.Build(null, AckCode.AR, [issue], Hl7Ack.NewControlId(null), clock.GetLocalNow()), null);
    }

    public override void Dispose()
    {
        _listener?.Dispose();
        base.Dispose();
    }
}
