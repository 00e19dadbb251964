-- The subscription outbox: one row per notification owed to a rest-hook Subscription, inserted in the transaction
-- that wrote the matching version and removed once the subscriber answered 2xx. seq orders a subscription's rows.
CREATE TABLE subscription_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT    NOT NULL,
    resource_type   TEXT    NOT NULL,
    resource_id     TEXT    NOT NULL,
    version         INTEGER NOT NULL
);
CREATE INDEX ix_subscription_outbox ON subscription_outbox (subscription_id, seq);

-- Which hub instance delivers a subscription's rows, and until when (Unix ms): one instance at a time, so rows go out
-- in order and are not sent by two instances at once. An instance renews its claim while it delivers, drops it at shutdown.
CREATE TABLE subscription_delivery (
    subscription_id TEXT    PRIMARY KEY,
    owner           TEXT    NOT NULL,
    claimed_until   INTEGER NOT NULL
);
