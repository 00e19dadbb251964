-- Bulk import jobs ($import and the import command). progress is rewritten in the transaction of each batch it
-- describes, so a restart continues after the last committed batch. state: 0 running, 1 completed, 2 failed, 3 cancelled.
CREATE TABLE import_job (
    id          text     PRIMARY KEY,
    state       smallint NOT NULL,
    request     text     NOT NULL,
    progress    text     NOT NULL,
    error       text,
    created_at  bigint   NOT NULL
);
CREATE INDEX ix_import_job_state ON import_job (state, created_at);

-- The lines of an import's inputs that were not imported (input = index in the request, line 1-based).
CREATE TABLE import_error (
    job_id   text    NOT NULL REFERENCES import_job (id) ON DELETE CASCADE,
    input    integer NOT NULL,
    line     bigint  NOT NULL,
    message  text    NOT NULL,
    PRIMARY KEY (job_id, input, line)
);
