-- _lastUpdated is searched on the resource row's version key (the microsecond the version was written), so it needs
-- an index there instead of a date row per resource: one B-tree entry per version instead of a row in search_date
-- and its three indexes.
CREATE INDEX ix_resource_type_last_key ON resource (resource_type, last_key);
DELETE FROM search_date WHERE param = '_lastUpdated';
