-- Which recipient stream each texter's Idempotency-Key was first used on.
-- A key is checked against its stream's own history there; this table
-- catches the same key reused with a click for another phone, which that
-- stream cannot see (one human click must never send two messages).
CREATE TABLE idempotency_keys (
    org_id          UUID NOT NULL,
    texter_id       UUID NOT NULL,
    idempotency_key TEXT NOT NULL,
    stream_id       TEXT NOT NULL,
    claimed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, texter_id, idempotency_key)
);
