-- hub_state's key compares byte-wise, so its primary key serves the prefix scans too and ix_hub_state_name_c goes:
-- a township row writes its state row into one B-tree instead of two. Equality is unchanged (the database's
-- collations are deterministic); the table is rewritten once.
ALTER TABLE hub_state ALTER COLUMN name TYPE text COLLATE "C";
DROP INDEX ix_hub_state_name_c;
