-- The event log: one append-only, totally ordered table.
--
-- `position` is assigned by textbank's single writer inside a
-- BEGIN IMMEDIATE transaction as MAX(position) + 1, so it is gap-free and
-- commits in order: a reader that follows positions never skips an event.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,          -- global order, from 1
    event_id       BLOB    NOT NULL UNIQUE,      -- UUIDv7, the idempotency key
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,             -- 0-based within the stream
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,             -- canonical JSON
    metadata       TEXT    NOT NULL,             -- canonical JSON: org, actor, correlation…
    recorded_at    TEXT    NOT NULL,             -- RFC 3339, UTC, microseconds
    prev_hash      BLOB    NOT NULL,             -- hash of the stream's previous event
    hash           BLOB    NOT NULL,             -- SHA-256 chain link, see docs/adr
    UNIQUE (stream_id, version)
);

-- The log is evidence: rows are never changed or removed by the application.
-- (The hash chain catches anyone who drops these triggers and edits anyway.)
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- Projector checkpoints: the last position each read model has applied,
-- saved in the same transaction as the read model's rows.
CREATE TABLE checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
