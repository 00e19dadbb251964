using InteropHub.Fhir.Storage;
using InteropHub.Storage.Sql;
using Npgsql;

namespace InteropHub.Storage.Postgres;

/// <summary>The subscription outbox on PostgreSQL (table <c>subscription_outbox</c>, Schema/0201_subscription_outbox.sql).</summary>
public sealed partial class PostgresResourceStore : ISubscriptionOutbox
{
    public event EventHandler? NotificationsCommitted;

    /// <summary>A write session's outbox rows, inserted in the order given: the sequence follows it.</summary>
    internal static NpgsqlBatchCommand AddNotificationsCommand(IReadOnlyList<(string Subscription, VersionRow Version)> rows)
    {
        var command = new NpgsqlBatchCommand("""
            INSERT INTO subscription_outbox (subscription_id, resource_type, resource_id, version)
            SELECT u.s, u.t, u.id, u.v FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[]) WITH ORDINALITY AS u (s, t, id, v, n) ORDER BY u.n
            """);
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. rows.Select(r => r.Subscription)]));
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. rows.Select(r => r.Version.ResourceType)]));
        command.Parameters.Add(PostgresWriteSession.Positional<string[]>([.. rows.Select(r => r.Version.Id)]));
        command.Parameters.Add(PostgresWriteSession.Positional<int[]>([.. rows.Select(r => r.Version.VersionId)]));
        return command;
    }

    public async Task<IReadOnlyList<string>> OutboxSubscriptionsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(OutboxSql.Subscriptions);
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
        await using var command = _dataSource.CreateCommand(OutboxSql.Read);
        command.Parameters.Add(new NpgsqlParameter<string>("s", subscriptionId));
        command.Parameters.Add(new NpgsqlParameter<int>("n", limit));
        var entries = new List<OutboxEntry>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            entries.Add(new OutboxEntry(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt32(4)));
        }

        return entries;
    }

    public async Task RemoveFromOutboxAsync(long sequence, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(OutboxSql.Remove);
        command.Parameters.Add(new NpgsqlParameter<long>("seq", sequence));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task ClearOutboxAsync(string subscriptionId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(OutboxSql.Clear);
        command.Parameters.Add(new NpgsqlParameter<string>("s", subscriptionId));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<bool> ClaimDeliveryAsync(string subscriptionId, string owner, DateTimeOffset until, DateTimeOffset now, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(OutboxSql.Claim);
        command.Parameters.Add(new NpgsqlParameter<string>("s", subscriptionId));
        command.Parameters.Add(new NpgsqlParameter<string>("o", owner));
        command.Parameters.Add(new NpgsqlParameter<long>("u", until.ToUnixTimeMilliseconds()));
        command.Parameters.Add(new NpgsqlParameter<long>("now", now.ToUnixTimeMilliseconds()));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task ReleaseDeliveryAsync(string owner, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(OutboxSql.Release);
        command.Parameters.Add(new NpgsqlParameter<string>("o", owner));
        await command.ExecuteNonQueryAsync(ct);
    }

    private void OnNotificationsCommitted() => NotificationsCommitted?.Invoke(this, EventArgs.Empty);
}
