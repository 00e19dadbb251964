-- A reference row is local (target type and id) or a URL, never both, so each lookup index keeps only the rows of
-- its kind: writing a reference then updates two B-trees (its lookup index and the rid index) instead of three.
-- Searches name the index's condition (target_id <> '' or url <> '') so the planner can use it.
DROP INDEX ix_search_reference;
CREATE INDEX ix_search_reference ON search_reference (resource_type, param, target_id, target_type, rid) WHERE target_id <> '';
DROP INDEX ix_search_reference_url;
CREATE INDEX ix_search_reference_url ON search_reference (resource_type, param, url, rid) WHERE url <> '';
