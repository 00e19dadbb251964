-- Current versions: one row per logical resource. rid is the key of the first version and never changes,
-- so index rows keep pointing at it across updates; last_key is the key of the current version.
CREATE TABLE resource (
    rid           INTEGER PRIMARY KEY,
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    last_key      INTEGER NOT NULL,
    deleted       INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    UNIQUE (resource_type, id)
);

-- Every version ever written, deletions included (empty content). key is time-ordered (see VersionKeys).
CREATE TABLE resource_history (
    key           INTEGER PRIMARY KEY,
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    method        TEXT    NOT NULL,
    deleted       INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    UNIQUE (resource_type, id, version)
);
CREATE INDEX ix_history_type_key ON resource_history (resource_type, key);

-- Token index rows of the current version, written in the same transaction as the resource.
CREATE TABLE token_index (
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    system        TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    rid           INTEGER NOT NULL
);
CREATE INDEX ix_token_lookup ON token_index (resource_type, param, code, system, rid);
CREATE INDEX ix_token_rid ON token_index (rid);
