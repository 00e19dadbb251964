-- The adapters' durable inbox: raw inbound messages, stored before they are acknowledged.
-- status: 0 received, 1 processed, 2 failed (dead letter).
CREATE TABLE inbox_message (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text     NOT NULL,
    message_id    text     NOT NULL,
    content_hash  text     NOT NULL,
    received_at   bigint   NOT NULL,
    content_type  text     NOT NULL,
    body          bytea    NOT NULL,
    status        smallint NOT NULL,
    attempts      integer  NOT NULL,
    outcome       text,
    processed_at  bigint,
    UNIQUE (source, message_id)
);
CREATE INDEX ix_inbox_hash ON inbox_message (source, content_hash);
CREATE INDEX ix_inbox_status ON inbox_message (status, id);
