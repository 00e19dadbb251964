-- The multi-column statistics of search_token keep their most-common-value list (the real count of each common
-- parameter and code) and drop the functional dependencies. Built over the 300,000-row sample of statistics target
-- 1000, the dependencies cost 11 of the 15 seconds an analysis of a million resources' search_token took, and
-- autovacuum repeats that analysis every time the table grows by a tenth: while a database fills, a core spent most
-- of its time there. The searches of tests/InteropHub.Benchmarks `search` at a million resources kept their plans and
-- their times without them.
DROP STATISTICS st_search_token;
CREATE STATISTICS st_search_token (mcv) ON resource_type, param, code, system FROM search_token;
ALTER STATISTICS st_search_token SET STATISTICS 1000;
