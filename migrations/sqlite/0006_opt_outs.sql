-- Read model "opt_outs": the numbers each organization may not text, from
-- OptOutRecorded / OptInRecorded on the recipient-* streams. List imports
-- reject these numbers and campaigns leave them out; the send path checks
-- the recipient stream itself, never only this table.
CREATE TABLE opt_outs (
    org_id       BLOB NOT NULL,
    phone        TEXT NOT NULL,   -- E.164
    source       TEXT NOT NULL,
    opted_out_at TEXT NOT NULL,
    PRIMARY KEY (org_id, phone)
);
