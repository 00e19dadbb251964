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

    public Task RemoveFromOutboxAsync(long sequence, CancellationToken ct) => ExecuteWriteAsync(OutboxSql.Remove, "@seq", sequence, ct);

    public Task ClearOutboxAsync(string subscriptionId, CancellationToken ct) => ExecuteWriteAsync(OutboxSql.Clear, "@s", subscriptionId, ct);

    private void OnNotificationsCommitted() => NotificationsCommitted?.Invoke(this, EventArgs.Empty);

    private async Task ExecuteWriteAsync(string sql, string name, object value, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue(name, value);
            await command.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            _writer.Release();
        }
    }
}
