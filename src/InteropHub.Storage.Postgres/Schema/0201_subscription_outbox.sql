-- The subscription outbox: one row per notification owed to a rest-hook Subscription, inserted in the transaction
-- that wrote the matching version and removed once the subscriber answered 2xx. seq orders a subscription's rows.
CREATE TABLE subscription_outbox (
    seq             bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text    NOT NULL,
    resource_type   text    NOT NULL,
    resource_id     text    NOT NULL,
    version         integer NOT NULL
);
CREATE INDEX ix_subscription_outbox ON subscription_outbox (subscription_id, seq);

-- Which hub instance delivers a subscription's rows, and until when (Unix ms): one instance at a time, so rows go out
-- in order and are not sent by two instances at once. An instance renews its claim while it delivers, drops it at shutdown.
CREATE TABLE subscription_delivery (
    subscription_id text    PRIMARY KEY,
    owner           text    NOT NULL,
    claimed_until   bigint  NOT NULL
);
