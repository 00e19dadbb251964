using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using InteropHub.Adapters.His.Mllp;
using Npgsql;
using NpgsqlTypes;

/// <summary>
/// The floor of the <c>hl7</c> benchmark, run as a child process (<c>hl7-floor --mllp-port P</c>): an MLLP listener
/// that stores each message durably before its ACK and does nothing else: one INSERT and COMMIT per message into a
/// table without index, and an ACK built from the message's MSH-10. The hub does the same plus parsing, mapping and
/// its transaction, so its rate over the floor's, measured in the same run, says how far it is from what this machine
/// can do that hour. <c>/ready</c> answers once the listener runs.
/// </summary>
internal static class Hl7Floor
{
    public const string ConnectionVariable = "INTEROPHUB_HL7_FLOOR_POSTGRES";

    public static void Run(string[] args)
    {
        var port = int.Parse(args[Array.IndexOf(args, "--mllp-port") + 1], CultureInfo.InvariantCulture);
        using var dataSource = NpgsqlDataSource.Create(Environment.GetEnvironmentVariable(ConnectionVariable)
            ?? throw new InvalidOperationException($"{ConnectionVariable} is not set."));
        using (var create = dataSource.CreateCommand("CREATE TABLE IF NOT EXISTS floor_message (received timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)"))
        {
            create.ExecuteNonQuery();
        }

        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync();
                _ = Task.Run(() => ServeAsync(client, dataSource));
            }
        });

        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/ready", () => Results.Ok());
        app.Run();
    }

    private static async Task ServeAsync(TcpClient client, NpgsqlDataSource dataSource)
    {
        using (client)
        {
            var mllp = new MllpStream(client.GetStream(), 1 << 20);
            while (await mllp.ReadAsync(CancellationToken.None) is { } frame)
            {
                await using (var insert = dataSource.CreateCommand("INSERT INTO floor_message (body) VALUES ($1)"))
                {
                    insert.Parameters.Add(new NpgsqlParameter { Value = frame.Bytes.ToArray(), NpgsqlDbType = NpgsqlDbType.Bytea });
                    await insert.ExecuteNonQueryAsync();
                }

                await mllp.WriteAsync(Ack(frame.Bytes.Span), CancellationToken.None);
            }
        }
    }

    /// <summary>MSH and MSA|AA naming the message's control id (MSH-10), the message's own delimiters assumed standard.</summary>
    private static byte[] Ack(ReadOnlySpan<byte> message)
    {
        var msh = Encoding.UTF8.GetString(message[..Math.Max(0, message.IndexOf((byte)'\r'))]).Split('|');
        var controlId = msh.Length > 9 ? msh[9] : "";
        return Encoding.UTF8.GetBytes($"MSH|^~\\&|FLOOR|FLOOR|||{DateTime.UtcNow:yyyyMMddHHmmss}||ACK|{controlId}|P|2.5\rMSA|AA|{controlId}\r");
    }
}
