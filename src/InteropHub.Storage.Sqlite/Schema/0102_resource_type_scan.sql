-- Bulk export and type-wide scans walk one type in row-id order.
CREATE INDEX ix_resource_type_rid ON resource (resource_type, rid);
