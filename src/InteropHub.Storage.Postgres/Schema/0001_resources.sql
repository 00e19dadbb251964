-- The logical schema of the SQLite store (see InteropHub.Storage.Sqlite/Schema/0001_resources.sql) in
-- PostgreSQL types. Keys are time-ordered bigints (VersionKeys); content is the final UTF-8 JSON, which
-- PostgreSQL compresses out of line (TOAST) once a row passes about 2 kB.

-- Current versions: one row per logical resource. rid is the key of the first version and never changes,
-- so index rows keep pointing at it across updates; last_key is the key of the current version.
CREATE TABLE resource (
    rid           bigint  NOT NULL PRIMARY KEY,
    resource_type text    NOT NULL,
    id            text    NOT NULL,
    version       integer NOT NULL,
    last_key      bigint  NOT NULL,
    deleted       boolean NOT NULL,
    content       bytea   NOT NULL,
    CONSTRAINT uq_resource_type_id UNIQUE (resource_type, id)
);

-- Every version ever written, deletions included (empty content).
CREATE TABLE resource_history (
    key           bigint  NOT NULL PRIMARY KEY,
    resource_type text    NOT NULL,
    id            text    NOT NULL,
    version       integer NOT NULL,
    method        text    NOT NULL,
    deleted       boolean NOT NULL,
    content       bytea   NOT NULL,
    CONSTRAINT uq_history_type_id_version UNIQUE (resource_type, id, version)
);
CREATE INDEX ix_history_type_key ON resource_history (resource_type, key);

-- Token index rows of the current version, written in the same transaction as the resource.
CREATE TABLE token_index (
    resource_type text   NOT NULL,
    param         text   NOT NULL,
    system        text   NOT NULL,
    code          text   NOT NULL,
    rid           bigint NOT NULL
);
CREATE INDEX ix_token_lookup ON token_index (resource_type, param, code, system, rid);
CREATE INDEX ix_token_rid ON token_index (rid);
