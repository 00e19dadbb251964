using System.Data.Common;
using System.Security.Cryptography;
using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>The adapters' durable inbox on PostgreSQL (table <c>inbox_message</c>, Schema/0101_inbox.sql).</summary>
public sealed partial class PostgresResourceStore : IInboxStore
{
    private const string InboxColumns = "id, source, message_id, content_hash, received_at, content_type, body, status, attempts, outcome, processed_at";

    public async Task<(InboxMessage Message, bool Duplicate)> AcceptAsync(string source, string messageId, string contentType, byte[] body, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(body));
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        // Two copies of one message arriving together (a retrying sender) must not both be stored: they share the
        // message id or the content, and each is locked (in one order), so different messages are stored side by side.
        await using (var lockMessage = new NpgsqlCommand(
            "SELECT pg_advisory_xact_lock(u.k) FROM unnest(@keys) WITH ORDINALITY AS u (k, n) ORDER BY u.n", connection, tx))
        {
            var keys = new[] { AdvisoryLockKeys.For($"inbox:{source}:id:{messageId}"), AdvisoryLockKeys.For($"inbox:{source}:hash:{hash}") };
            lockMessage.Parameters.Add(new NpgsqlParameter<long[]>("keys", [.. keys.Distinct().Order()]));
            await lockMessage.ExecuteNonQueryAsync(ct);
        }

        await using (var find = new NpgsqlCommand(
            $"SELECT {InboxColumns} FROM inbox_message WHERE source = @s AND (message_id = @m OR content_hash = @h) ORDER BY id LIMIT 1", connection, tx))
        {
            find.Parameters.Add(new NpgsqlParameter<string>("s", source));
            find.Parameters.Add(new NpgsqlParameter<string>("m", messageId));
            find.Parameters.Add(new NpgsqlParameter<string>("h", hash));
            await using var reader = await find.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                return (ReadInbox(reader), true);
            }
        }

        InboxMessage stored;
        await using (var insert = new NpgsqlCommand($"""
            INSERT INTO inbox_message (source, message_id, content_hash, received_at, content_type, body, status, attempts)
            VALUES (@s, @m, @h, @at, @ct, @b, 0, 0) RETURNING {InboxColumns}
            """, connection, tx))
        {
            insert.Parameters.Add(new NpgsqlParameter<string>("s", source));
            insert.Parameters.Add(new NpgsqlParameter<string>("m", messageId));
            insert.Parameters.Add(new NpgsqlParameter<string>("h", hash));
            insert.Parameters.Add(new NpgsqlParameter<long>("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            insert.Parameters.Add(new NpgsqlParameter<string>("ct", contentType));
            insert.Parameters.Add(new NpgsqlParameter<byte[]>("b", body));
            await using var reader = await insert.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            stored = ReadInbox(reader);
        }

        await tx.CommitAsync(ct);
        return (stored, false);
    }

    public async Task<InboxMessage?> GetAsync(long id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {InboxColumns} FROM inbox_message WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadInbox(reader) : null;
    }

    public async Task<IReadOnlyList<InboxMessage>> ListAsync(InboxStatus status, long? afterId, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {InboxColumns} FROM inbox_message WHERE status = @st AND id > @after ORDER BY id LIMIT @n");
        command.Parameters.Add(new NpgsqlParameter<short>("st", (short)status));
        command.Parameters.Add(new NpgsqlParameter<long>("after", afterId ?? 0));
        command.Parameters.Add(new NpgsqlParameter<int>("n", limit));
        var messages = new List<InboxMessage>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            messages.Add(ReadInbox(reader));
        }

        return messages;
    }

    public async Task CompleteAsync(long id, InboxStatus status, string? outcome, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "UPDATE inbox_message SET status = @st, outcome = @o, attempts = attempts + 1, processed_at = @at WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<short>("st", (short)status));
        command.Parameters.Add(new NpgsqlParameter("o", (object?)outcome ?? DBNull.Value));
        command.Parameters.Add(new NpgsqlParameter<long>("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<InboxCounts>> CountsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT source, count(*), count(*) FILTER (WHERE status = 1), count(*) FILTER (WHERE status = 2)
            FROM inbox_message GROUP BY source ORDER BY source
            """);
        var counts = new List<InboxCounts>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            counts.Add(new InboxCounts(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
        }

        return counts;
    }

    private static InboxMessage ReadInbox(DbDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetString(3),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
        reader.GetString(5),
        (byte[])reader.GetValue(6),
        (InboxStatus)reader.GetInt16(7),
        reader.GetInt32(8),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        reader.IsDBNull(10) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(10)));
}
