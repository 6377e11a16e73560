-- Read model "lists": uploaded contact lists with their provenance, their
-- contacts and the rows they rejected, projected from the list-* streams.
CREATE TABLE lists (
    list_id       BLOB PRIMARY KEY,
    org_id        BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    consent_basis TEXT    NOT NULL,
    uploaded_by   TEXT    NOT NULL,  -- JSON actor
    uploaded_at   TEXT    NOT NULL,
    file_sha256   TEXT    NOT NULL,
    file_bytes    INTEGER NOT NULL,
    columns       TEXT    NOT NULL,  -- JSON array, as written in the header
    phone_column  TEXT    NOT NULL,
    custom_fields TEXT    NOT NULL,  -- JSON array of template field names
    status        TEXT    NOT NULL,  -- importing | complete
    rows          INTEGER,
    imported      INTEGER,
    rejected      TEXT,              -- JSON object: reason -> count
    completed_at  TEXT
);
CREATE INDEX lists_by_org ON lists (org_id, uploaded_at);

CREATE TABLE contacts (
    list_id     BLOB    NOT NULL,
    phone       TEXT    NOT NULL,    -- E.164
    org_id      BLOB    NOT NULL,
    line        INTEGER NOT NULL,
    first_name  TEXT    NOT NULL,
    last_name   TEXT    NOT NULL,
    zip         TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    time_zone   TEXT,                -- IANA name, when known
    zone        TEXT    NOT NULL,    -- JSON: zone, source, state…
    fields      TEXT    NOT NULL,    -- JSON object of custom fields
    -- File order: inserts append at the end of the index instead of landing
    -- at random phone numbers; phones are unique per list by construction
    -- (the importer drops duplicates).
    PRIMARY KEY (list_id, line)
);

CREATE TABLE list_rejections (
    list_id   BLOB    NOT NULL,
    line      INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    raw_phone TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    PRIMARY KEY (list_id, line)
);
