-- Re-index jobs (IReindexStore): resource_types is a comma-separated list, empty for every type; status 0 running,
-- 1 done, 2 failed; cursor is the last rid done, saved in the same transaction as that batch's index rows.
CREATE TABLE reindex_job (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason         text     NOT NULL,
    resource_types text     NOT NULL,
    status         smallint NOT NULL,
    cursor         bigint   NOT NULL,
    done           bigint   NOT NULL,
    total          bigint   NOT NULL,
    created_at     bigint   NOT NULL,
    updated_at     bigint   NOT NULL,
    error          text
);
CREATE INDEX ix_reindex_job_reason ON reindex_job (reason, status);
