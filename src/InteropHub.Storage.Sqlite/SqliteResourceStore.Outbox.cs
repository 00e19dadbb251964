using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;

namespace InteropHub.Storage.Sqlite;

/// <summary>The subscription outbox on SQLite (table <c>subscription_outbox</c>, Schema/0201_subscription_outbox.sql).</summary>
public sealed partial class SqliteResourceStore : ISubscriptionOutbox
{
    public event EventHandler? NotificationsCommitted;

    public async Task<IReadOnlyList<string>> OutboxSubscriptionsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = OutboxSql.Subscriptions;
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }

    public async Task<IReadOnlyList<OutboxEntry>> ReadOutboxAsync(string subscriptionId, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = OutboxSql.Read;
        command.Parameters.AddWithValue("@s", subscriptionId);
        command.Parameters.AddWithValue("@n", limit);
        var entries = new List<OutboxEntry>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            entries.Add(new OutboxEntry(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
        }

        return entries;
    }

    public Task RemoveFromOutboxAsync(long sequence, CancellationToken ct) => ExecuteWriteAsync(OutboxSql.Remove, ct, ("@seq", sequence));

    public Task ClearOutboxAsync(string subscriptionId, CancellationToken ct) => ExecuteWriteAsync(OutboxSql.Clear, ct, ("@s", subscriptionId));

    public async Task<bool> ClaimDeliveryAsync(string subscriptionId, string owner, DateTimeOffset until, DateTimeOffset now, CancellationToken ct) =>
        await ExecuteWriteAsync(OutboxSql.Claim, ct, ("@s", subscriptionId), ("@o", owner), ("@u", until.ToUnixTimeMilliseconds()),
            ("@now", now.ToUnixTimeMilliseconds())) == 1;

    public Task ReleaseDeliveryAsync(string owner, CancellationToken ct) => ExecuteWriteAsync(OutboxSql.Release, ct, ("@o", owner));

    private void OnNotificationsCommitted() => NotificationsCommitted?.Invoke(this, EventArgs.Empty);

    private async Task<int> ExecuteWriteAsync(string sql, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }

            return await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }
}
