-- The indexes PostgreSQL's 0003 reshapes, in SQLite's terms (no INCLUDE: carried columns go last in the key).
-- Token lookups return rows in row-id order whether or not the search names a system, so a rid-first search can
-- stop after its page; probes by row id answer from the index alone. resource needs nothing: rid is its rowid,
-- which every SQLite index carries, so (resource_type, id) already maps logical ids to row ids.
DROP INDEX ix_search_token;
CREATE INDEX ix_search_token ON search_token (resource_type, param, code, rid, system);
DROP INDEX ix_search_token_rid;
CREATE INDEX ix_search_token_rid ON search_token (rid, param, code, system);
DROP INDEX ix_search_date_rid;
CREATE INDEX ix_search_date_rid ON search_date (rid, param, low, high);
DROP INDEX ix_search_reference_rid;
CREATE INDEX ix_search_reference_rid ON search_reference (rid, param, target_type, target_id);
