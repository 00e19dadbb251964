-- Typed search index tables (search.html): one row per indexed value of the current version of a resource,
-- keyed by the resource's rid, replaced in the same transaction as the resource and emptied when it is deleted.
-- param is the search parameter's code (composite components: code$n, reference identifiers: code:identifier,
-- identifier types: code:of-type); grp ties together the component rows of one composite element (0 otherwise).
-- Every lookup index leads with (resource_type, param) and ends in rid; the (rid, param) index serves deletes,
-- _sort and _include.
-- Text columns compare byte-wise (COLLATE "C") so that ordering and prefix ranges agree with SQLite's.
CREATE TABLE search_string (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    norm          text COLLATE "C" NOT NULL,
    exact         text COLLATE "C" NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_string ON search_string (resource_type, param, norm, rid);
CREATE INDEX ix_search_string_rid ON search_string (rid, param);

CREATE TABLE search_token (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    system        text COLLATE "C" NOT NULL,
    code          text COLLATE "C" NOT NULL,
    text          text COLLATE "C" NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_token ON search_token (resource_type, param, code, system, rid);
CREATE INDEX ix_search_token_rid ON search_token (rid, param);

CREATE TABLE search_date (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    low           bigint NOT NULL,
    high          bigint NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_date ON search_date (resource_type, param, low, high, rid);
CREATE INDEX ix_search_date_high ON search_date (resource_type, param, high, rid);
CREATE INDEX ix_search_date_rid ON search_date (rid, param);

CREATE TABLE search_number (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    value         double precision NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_number ON search_number (resource_type, param, value, rid);
CREATE INDEX ix_search_number_rid ON search_number (rid, param);

CREATE TABLE search_quantity (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    system        text COLLATE "C" NOT NULL,
    code          text COLLATE "C" NOT NULL,
    value         double precision NOT NULL,
    canonical_code text COLLATE "C" NOT NULL,
    canonical_value double precision NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_quantity ON search_quantity (resource_type, param, code, value, rid);
CREATE INDEX ix_search_quantity_canonical ON search_quantity (resource_type, param, canonical_code, canonical_value, rid);
CREATE INDEX ix_search_quantity_rid ON search_quantity (rid, param);

CREATE TABLE search_uri (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    uri           text COLLATE "C" NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_uri ON search_uri (resource_type, param, uri, rid);
CREATE INDEX ix_search_uri_rid ON search_uri (rid, param);

CREATE TABLE search_reference (
    rid           bigint NOT NULL,
    resource_type text COLLATE "C" NOT NULL,
    param         text COLLATE "C" NOT NULL,
    target_type   text COLLATE "C" NOT NULL,
    target_id     text COLLATE "C" NOT NULL,
    url           text COLLATE "C" NOT NULL,
    grp           integer NOT NULL
);
CREATE INDEX ix_search_reference ON search_reference (resource_type, param, target_id, target_type, rid);
CREATE INDEX ix_search_reference_url ON search_reference (resource_type, param, url, rid);
CREATE INDEX ix_search_reference_rid ON search_reference (rid, param);

-- The identifier rows of schema 0001 carry over; values of the other parameters appear as resources are written again.
INSERT INTO search_token (rid, resource_type, param, system, code, text, grp)
SELECT rid, resource_type, param, system, code, '', 0 FROM token_index;
DROP TABLE token_index;
