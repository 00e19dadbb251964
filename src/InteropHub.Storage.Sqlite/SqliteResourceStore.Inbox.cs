using System.Data.Common;
using System.Security.Cryptography;
using InteropHub.Fhir.Storage;
using Microsoft.Data.Sqlite;

namespace InteropHub.Storage.Sqlite;

/// <summary>The adapters' durable inbox on SQLite (table <c>inbox_message</c>, Schema/0101_inbox.sql).</summary>
public sealed partial class SqliteResourceStore : IInboxStore
{
    private const string InboxColumns = "id, source, message_id, content_hash, received_at, content_type, body, status, attempts, outcome, processed_at";

    public async Task<(InboxMessage Message, bool Duplicate)> AcceptAsync(string source, string messageId, string contentType, byte[] body, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(body));
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using (var pragma = connection.CreateCommand())
            {
                // The acknowledgement promises the message is safe: make the commit durable.
                pragma.CommandText = "PRAGMA synchronous = FULL";
                await pragma.ExecuteNonQueryAsync(ct);
            }

            await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);

            await using (var find = connection.CreateCommand())
            {
                find.Transaction = tx;
                // Each key through its own index (as one OR, SQLite reads every message of the source).
                find.CommandText = $"""
                    SELECT {InboxColumns} FROM inbox_message WHERE id = (SELECT min(id) FROM (
                        SELECT id FROM inbox_message WHERE source = @s AND message_id = @m
                        UNION ALL
                        SELECT id FROM inbox_message WHERE source = @s AND content_hash = @h))
                    """;
                find.Parameters.AddWithValue("@s", source);
                find.Parameters.AddWithValue("@m", messageId);
                find.Parameters.AddWithValue("@h", hash);
                await using var reader = await find.ExecuteReaderAsync(ct);
                if (await reader.ReadAsync(ct))
                {
                    return (ReadInbox(reader), true);
                }
            }

            await using var insert = connection.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = $"""
                INSERT INTO inbox_message (source, message_id, content_hash, received_at, content_type, body, status, attempts)
                VALUES (@s, @m, @h, @at, @ct, @b, 0, 0) RETURNING {InboxColumns}
                """;
            insert.Parameters.AddWithValue("@s", source);
            insert.Parameters.AddWithValue("@m", messageId);
            insert.Parameters.AddWithValue("@h", hash);
            insert.Parameters.AddWithValue("@at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("@ct", contentType);
            insert.Parameters.AddWithValue("@b", body);
            InboxMessage stored;
            await using (var reader = await insert.ExecuteReaderAsync(ct))
            {
                await reader.ReadAsync(ct);
                stored = ReadInbox(reader);
            }

            await tx.CommitAsync(ct);
            return (stored, false);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<InboxMessage?> GetAsync(long id, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {InboxColumns} FROM inbox_message WHERE id = @id";
        command.Parameters.AddWithValue("@id", id);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadInbox(reader) : null;
    }

    public async Task<IReadOnlyList<InboxMessage>> ListAsync(InboxStatus status, string? source, long? afterId, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {InboxColumns} FROM inbox_message WHERE status = @st AND id > @after{(source is null ? "" : " AND source = @src")} ORDER BY id LIMIT @n";
        command.Parameters.AddWithValue("@st", (int)status);
        if (source is not null)
        {
            command.Parameters.AddWithValue("@src", source);
        }

        command.Parameters.AddWithValue("@after", afterId ?? 0);
        command.Parameters.AddWithValue("@n", limit);
        var messages = new List<InboxMessage>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            messages.Add(ReadInbox(reader));
        }

        return messages;
    }

    /// <summary>Marks a message done; also run inside a write session (<see cref="IWriteSession.CompleteInboxAsync"/>).</summary>
    private static async Task CompleteAsync(SqliteConnection connection, SqliteTransaction? transaction, long id, InboxStatus status, string? outcome,
        CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE inbox_message SET status = @st, outcome = @o, attempts = attempts + 1, processed_at = @at WHERE id = @id";
        command.Parameters.AddWithValue("@st", (int)status);
        command.Parameters.AddWithValue("@o", (object?)outcome ?? DBNull.Value);
        command.Parameters.AddWithValue("@at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("@id", id);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Stores a message already done, inside a write session (<see cref="IWriteSession.AddInboxAsync"/>): a plain insert,
    /// so a message id the source used before fails on the unique key. Returns the new id.
    /// </summary>
    private static async Task<long> AddAsync(SqliteConnection connection, SqliteTransaction transaction, string source, string messageId,
        string contentType, byte[] body, InboxStatus status, string? outcome, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO inbox_message (source, message_id, content_hash, received_at, content_type, body, status, attempts, outcome, processed_at)
            VALUES (@s, @m, @h, @at, @ct, @b, @st, 1, @o, @at) RETURNING id
            """;
        command.Parameters.AddWithValue("@s", source);
        command.Parameters.AddWithValue("@m", messageId);
        command.Parameters.AddWithValue("@h", Convert.ToHexStringLower(SHA256.HashData(body)));
        command.Parameters.AddWithValue("@at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("@ct", contentType);
        command.Parameters.AddWithValue("@b", body);
        command.Parameters.AddWithValue("@st", (int)status);
        command.Parameters.AddWithValue("@o", (object?)outcome ?? DBNull.Value);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task CompleteAsync(long id, InboxStatus status, string? outcome, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await CompleteAsync(connection, null, id, status, outcome, ct);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<IReadOnlyList<InboxCounts>> CountsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT source, COUNT(*), SUM(CASE WHEN status = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN status = 2 THEN 1 ELSE 0 END)
            FROM inbox_message GROUP BY source ORDER BY source
            """;
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
        (InboxStatus)reader.GetInt32(7),
        reader.GetInt32(8),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        reader.IsDBNull(10) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(10)));
}
