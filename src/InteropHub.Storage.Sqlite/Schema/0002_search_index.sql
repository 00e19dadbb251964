-- Typed search index tables (search.html): one row per indexed value of the current version of a resource,
-- keyed by the resource's rid, replaced in the same transaction as the resource and emptied when it is deleted.
-- param is the search parameter's code (composite components: code$n, reference identifiers: code:identifier,
-- identifier types: code:of-type); grp ties together the component rows of one composite element (0 otherwise).
-- Every lookup index leads with (resource_type, param) and ends in rid; the (rid, param) index serves deletes,
-- _sort and _include.
CREATE TABLE search_string (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    norm          TEXT    NOT NULL,
    exact         TEXT    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_string ON search_string (resource_type, param, norm, rid);
CREATE INDEX ix_search_string_rid ON search_string (rid, param);

CREATE TABLE search_token (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    system        TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_token ON search_token (resource_type, param, code, system, rid);
CREATE INDEX ix_search_token_rid ON search_token (rid, param);

CREATE TABLE search_date (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    low           INTEGER NOT NULL,
    high          INTEGER NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_date ON search_date (resource_type, param, low, high, rid);
CREATE INDEX ix_search_date_high ON search_date (resource_type, param, high, rid);
CREATE INDEX ix_search_date_rid ON search_date (rid, param);

CREATE TABLE search_number (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    value         REAL    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_number ON search_number (resource_type, param, value, rid);
CREATE INDEX ix_search_number_rid ON search_number (rid, param);

CREATE TABLE search_quantity (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    system        TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    value         REAL    NOT NULL,
    canonical_code TEXT    NOT NULL,
    canonical_value REAL    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_quantity ON search_quantity (resource_type, param, code, value, rid);
CREATE INDEX ix_search_quantity_canonical ON search_quantity (resource_type, param, canonical_code, canonical_value, rid);
CREATE INDEX ix_search_quantity_rid ON search_quantity (rid, param);

CREATE TABLE search_uri (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    uri           TEXT    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_uri ON search_uri (resource_type, param, uri, rid);
CREATE INDEX ix_search_uri_rid ON search_uri (rid, param);

CREATE TABLE search_reference (
    rid           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    target_type   TEXT    NOT NULL,
    target_id     TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    grp           INTEGER NOT NULL
);
CREATE INDEX ix_search_reference ON search_reference (resource_type, param, target_id, target_type, rid);
CREATE INDEX ix_search_reference_url ON search_reference (resource_type, param, url, rid);
CREATE INDEX ix_search_reference_rid ON search_reference (rid, param);

-- The identifier rows of schema 0001 carry over; values of the other parameters appear as resources are written again.
INSERT INTO search_token (rid, resource_type, param, system, code, text, grp)
SELECT rid, resource_type, param, system, code, '', 0 FROM token_index;
DROP TABLE token_index;
