-- The event log: one append-only, totally ordered table.
--
-- `position` is not an identity column: identities commit out of order under
-- concurrent writers (and leave gaps on rollback), so a projector following
-- positions could skip an event forever. textbank's writer takes a
-- transaction-scoped advisory lock and assigns MAX(position) + 1 under it, so
-- positions are gap-free and become visible in order. See docs/adr.
CREATE TABLE events (
    position       BIGINT      PRIMARY KEY,      -- global order, from 1
    event_id       UUID        NOT NULL UNIQUE,  -- UUIDv7, the idempotency key
    stream_id      TEXT        NOT NULL,
    version        BIGINT      NOT NULL,         -- 0-based within the stream
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,         -- org, actor, correlation…
    recorded_at    TIMESTAMPTZ NOT NULL,
    prev_hash      BYTEA       NOT NULL,         -- hash of the stream's previous event
    hash           BYTEA       NOT NULL,         -- SHA-256 chain link, see docs/adr
    UNIQUE (stream_id, version)
);

-- The log is evidence: rows are never changed or removed by the application.
-- (The hash chain catches anyone who drops this trigger and edits anyway.)
CREATE FUNCTION events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_are_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

CREATE TRIGGER events_are_never_truncated
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Projector checkpoints: the last position each read model has applied,
-- saved in the same transaction as the read model's rows.
CREATE TABLE checkpoints (
    name       TEXT        PRIMARY KEY,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
