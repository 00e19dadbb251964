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
