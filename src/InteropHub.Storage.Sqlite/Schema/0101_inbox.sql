-- The adapters' durable inbox: raw inbound messages, stored before they are acknowledged.
-- status: 0 received, 1 processed, 2 failed (dead letter).
CREATE TABLE inbox_message (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    content_hash  TEXT    NOT NULL,
    received_at   INTEGER NOT NULL,
    content_type  TEXT    NOT NULL,
    body          BLOB    NOT NULL,
    status        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    outcome       TEXT,
    processed_at  INTEGER,
    UNIQUE (source, message_id)
);
CREATE INDEX ix_inbox_hash ON inbox_message (source, content_hash);
CREATE INDEX ix_inbox_status ON inbox_message (status, id);
