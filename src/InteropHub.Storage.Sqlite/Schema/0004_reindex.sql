-- Re-index jobs (IReindexStore): resource_types is a comma-separated list, empty for every type; status 0 running,
-- 1 done, 2 failed; cursor is the last rid done, saved in the same transaction as that batch's index rows.
CREATE TABLE reindex_job (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    reason         TEXT    NOT NULL,
    resource_types TEXT    NOT NULL,
    status         INTEGER NOT NULL,
    cursor         INTEGER NOT NULL,
    done           INTEGER NOT NULL,
    total          INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    error          TEXT
);
CREATE INDEX ix_reindex_job_reason ON reindex_job (reason, status);
