-- Named values read by prefix (the counters of unmapped codes among a row per township record): a byte-order index,
-- so that a prefix is a range scan whatever the database's collation.
CREATE INDEX ix_hub_state_name_c ON hub_state (name COLLATE "C");
