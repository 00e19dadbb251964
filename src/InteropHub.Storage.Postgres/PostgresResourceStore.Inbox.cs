using System.Data.Common;
using System.Security.Cryptography;
using InteropHub.Fhir.Storage;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>The adapters' durable inbox on PostgreSQL (table <c>inbox_message</c>, Schema/0101_inbox.sql).</summary>
public sealed partial class PostgresResourceStore : IInboxStore
{
    private const string InboxColumns = "id, source, message_id, content_hash, received_at, content_type, body, status, attempts, outcome, processed_at";

    /// <summary>
    /// One statement, so one round trip: the stored copy when the message id or the content is known, else the new
    /// row. Two copies of one message arriving together share the message id: the unique key makes the second insert
    /// do nothing (after the first commits), and the second attempt finds the first copy. The earlier copy is looked
    /// up by each key's own index, then read by id: asked as one <c>OR</c> with <c>ORDER BY id LIMIT 1</c>, the
    /// planner could walk the primary key from the oldest message, a scan of the whole inbox for every new message.
    /// </summary>
    public async Task<(InboxMessage Message, bool Duplicate)> AcceptAsync(string source, string messageId, string contentType, byte[] body, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(body));
        for (var attempt = 1; ; attempt++)
        {
            await using var command = _dataSource.CreateCommand($"""
                WITH candidates AS MATERIALIZED (
                    SELECT id FROM inbox_message WHERE source = @s AND message_id = @m
                    UNION ALL
                    SELECT id FROM inbox_message WHERE source = @s AND content_hash = @h),
                found AS (
                    SELECT {InboxColumns} FROM inbox_message WHERE id = (SELECT min(id) FROM candidates)),
                inserted AS (
                    INSERT INTO inbox_message (source, message_id, content_hash, received_at, content_type, body, status, attempts)
                    SELECT @s, @m, @h, @at, @ct, @b, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM found)
                    ON CONFLICT (source, message_id) DO NOTHING
                    RETURNING {InboxColumns})
                SELECT {InboxColumns}, true FROM found UNION ALL SELECT {InboxColumns}, false FROM inserted
                """);
            command.Parameters.Add(new NpgsqlParameter<string>("s", source));
            command.Parameters.Add(new NpgsqlParameter<string>("m", messageId));
            command.Parameters.Add(new NpgsqlParameter<string>("h", hash));
            command.Parameters.Add(new NpgsqlParameter<long>("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
            command.Parameters.Add(new NpgsqlParameter<string>("ct", contentType));
            command.Parameters.Add(new NpgsqlParameter<byte[]>("b", body));
            await using var reader = await command.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct))
            {
                return (ReadInbox(reader), reader.GetBoolean(11));
            }

            if (attempt == 3)
            {
                throw new InvalidOperationException($"The inbox neither stored nor found message {source}/{messageId}.");
            }
        }
    }

    public async Task<InboxMessage?> GetAsync(long id, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {InboxColumns} FROM inbox_message WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadInbox(reader) : null;
    }

    public async Task<IReadOnlyList<InboxMessage>> ListAsync(InboxStatus status, string? source, long? afterId, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"SELECT {InboxColumns} FROM inbox_message WHERE status = @st AND id > @after{(source is null ? "" : " AND source = @src")} ORDER BY id LIMIT @n");
        command.Parameters.Add(new NpgsqlParameter<short>("st", (short)status));
        if (source is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<string>("src", source));
        }

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
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(CompleteCommand(id, status, outcome));
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Marks a message done; also sent inside a write session (<see cref="IWriteSession.CompleteInboxAsync"/>).</summary>
    internal static NpgsqlBatchCommand CompleteCommand(long id, InboxStatus status, string? outcome)
    {
        var command = new NpgsqlBatchCommand("UPDATE inbox_message SET status = @st, outcome = @o, attempts = attempts + 1, processed_at = @at WHERE id = @id");
        command.Parameters.Add(new NpgsqlParameter<short>("st", (short)status));
        command.Parameters.Add(new NpgsqlParameter("o", (object?)outcome ?? DBNull.Value));
        command.Parameters.Add(new NpgsqlParameter<long>("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        command.Parameters.Add(new NpgsqlParameter<long>("id", id));
        return command;
    }

    /// <summary>
    /// Stores a message already done, inside a write session (<see cref="IWriteSession.AddInboxAsync"/>): a plain insert,
    /// so a message id the source used before fails the transaction on the unique key. Its one result is the new id.
    /// </summary>
    internal static NpgsqlBatchCommand AddCommand(string source, string messageId, string contentType, byte[] body, InboxStatus status, string? outcome)
    {
        var command = new NpgsqlBatchCommand($"""
            INSERT INTO inbox_message (source, message_id, content_hash, received_at, content_type, body, status, attempts, outcome, processed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $4) RETURNING id AS {AddedInboxId}
            """);
        command.Parameters.Add(PostgresWriteSession.Positional(source));
        command.Parameters.Add(PostgresWriteSession.Positional(messageId));
        command.Parameters.Add(PostgresWriteSession.Positional(Convert.ToHexStringLower(SHA256.HashData(body))));
        command.Parameters.Add(PostgresWriteSession.Positional(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        command.Parameters.Add(PostgresWriteSession.Positional(contentType));
        command.Parameters.Add(PostgresWriteSession.Positional(body));
        command.Parameters.Add(PostgresWriteSession.Positional((short)status));
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)outcome ?? DBNull.Value });
        return command;
    }

    /// <summary>The name of <see cref="AddCommand"/>'s result column, by which the commit finds it among the results of its round trip.</summary>
    internal const string AddedInboxId = "added_inbox_id";

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
