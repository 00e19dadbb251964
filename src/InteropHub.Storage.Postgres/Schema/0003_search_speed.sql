-- Search at a million resources and more (measured with tests/InteropHub.Benchmarks `search`).
--
-- 1. Statistics the planner needs. Index rows of every type and parameter share one table, and the planner assumes
-- columns independent: P(resource_type = Patient) × P(param = gender) × P(code = female) made "female patients" 32
-- rows instead of 56,668, and it then chose plans that probe tens of thousands of rows one by one. Multi-column
-- statistics (most common value combinations, functional dependencies) give it the real counts per parameter and
-- value, and a larger sample keeps the common codes of a big table in the lists.
CREATE STATISTICS st_search_token (mcv, dependencies) ON resource_type, param, code, system FROM search_token;
CREATE STATISTICS st_search_string (mcv, dependencies) ON resource_type, param FROM search_string;
CREATE STATISTICS st_search_date (mcv, dependencies) ON resource_type, param FROM search_date;
CREATE STATISTICS st_search_number (mcv, dependencies) ON resource_type, param FROM search_number;
CREATE STATISTICS st_search_quantity (mcv, dependencies) ON resource_type, param, code FROM search_quantity;
CREATE STATISTICS st_search_uri (mcv, dependencies) ON resource_type, param FROM search_uri;
CREATE STATISTICS st_search_reference (mcv, dependencies) ON resource_type, param, target_type FROM search_reference;
ALTER STATISTICS st_search_token SET STATISTICS 1000;
ALTER TABLE search_token ALTER COLUMN code SET STATISTICS 1000;
ALTER TABLE search_string ALTER COLUMN norm SET STATISTICS 1000;
ALTER TABLE search_date ALTER COLUMN low SET STATISTICS 1000;
ALTER TABLE search_date ALTER COLUMN high SET STATISTICS 1000;

-- 2. Token lookups return rows in row-id order whether or not the search names a system (gender=female,
-- status=completed), so a rid-first search reads the first page's rows and stops; the system is checked from the index.
DROP INDEX ix_search_token;
CREATE INDEX ix_search_token ON search_token (resource_type, param, code, rid) INCLUDE (system);

-- 3. Probes by row id answer from the index alone. When one condition drives a search and the others are checked
-- per candidate (or the resources are walked in row-id order), each check looks up (rid, param); carrying the
-- compared columns in that index spares a random heap read per candidate.
DROP INDEX ix_search_token_rid;
CREATE INDEX ix_search_token_rid ON search_token (rid, param) INCLUDE (resource_type, code, system);
DROP INDEX ix_search_string_rid;
CREATE INDEX ix_search_string_rid ON search_string (rid, param) INCLUDE (resource_type, norm);
DROP INDEX ix_search_date_rid;
CREATE INDEX ix_search_date_rid ON search_date (rid, param) INCLUDE (resource_type, low, high);
DROP INDEX ix_search_reference_rid;
CREATE INDEX ix_search_reference_rid ON search_reference (rid, param) INCLUDE (resource_type, target_type, target_id);

-- 4. The resource rows a search touches besides the page: chains map target row ids to logical ids, _has maps
-- referenced logical ids to row ids. Both answer from an index.
CREATE INDEX ix_resource_rid_id ON resource (rid) INCLUDE (resource_type, id, deleted);
-- The (type, id) index compares byte-wise like the index tables' columns it is joined with: an index in the
-- database's default collation cannot serve "resource_type = target_type COLLATE C", and the join fell back to
-- hashing every resource of the type.
CREATE INDEX ix_resource_id_rid ON resource (resource_type COLLATE "C", id COLLATE "C") INCLUDE (rid, deleted);
