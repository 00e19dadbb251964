namespace InteropHub.Storage.Sql;

/// <summary>The subscription outbox statements (table <c>subscription_outbox</c>, Schema/0201), the same on both stores.</summary>
public static class OutboxSql
{
    public const string Insert =
        "INSERT INTO subscription_outbox (subscription_id, resource_type, resource_id, version) VALUES (@s, @t, @id, @v)";

    public const string Subscriptions = "SELECT DISTINCT subscription_id FROM subscription_outbox";

    public const string Read =
        "SELECT seq, subscription_id, resource_type, resource_id, version FROM subscription_outbox WHERE subscription_id = @s ORDER BY seq LIMIT @n";

    public const string Remove = "DELETE FROM subscription_outbox WHERE seq = @seq";

    public const string Clear = "DELETE FROM subscription_outbox WHERE subscription_id = @s";

    /// <summary>Takes or renews the claim on a subscription's delivery: one row changes when it is free, expired or already ours.</summary>
    public const string Claim = """
        INSERT INTO subscription_delivery (subscription_id, owner, claimed_until) VALUES (@s, @o, @u)
        ON CONFLICT (subscription_id) DO UPDATE SET owner = excluded.owner, claimed_until = excluded.claimed_until
        WHERE subscription_delivery.owner = excluded.owner OR subscription_delivery.claimed_until < @now
        """;

    public const string Release = "DELETE FROM subscription_delivery WHERE owner = @o";
}
