-- Outbound webhooks: each organization's subscriptions and the record of
-- every delivery. A subscription's checkpoint is the last log position it
-- has delivered (or did not want); the worker resumes after it, so a crash
-- re-sends at most what was delivered but not yet recorded, never skips.
CREATE TABLE webhook_subscriptions (
    webhook_id    BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL,
    url           TEXT NOT NULL,
    event_types   TEXT NOT NULL,     -- JSON array of type names; [] = every type
    description   TEXT NOT NULL,
    enabled       INTEGER NOT NULL,  -- 0 or 1
    sealed_secret TEXT NOT NULL,     -- the signing secret, sealed with the server key
    failing_since TEXT,              -- set when the retry window ran out (and enabled went 0)
    checkpoint    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX webhook_subscriptions_by_org ON webhook_subscriptions (org_id, webhook_id);

-- One row per event (or ping) sent to one subscription, with every attempt
-- (time, status, latency, error, a short excerpt of the answer) as JSON.
CREATE TABLE webhook_deliveries (
    delivery_id     BLOB PRIMARY KEY,
    webhook_id      BLOB NOT NULL,
    org_id          BLOB NOT NULL,
    kind            TEXT NOT NULL,     -- event | ping
    message_id      BLOB NOT NULL,     -- the webhook-id header: the event's id, or the ping's
    position        INTEGER,           -- the event's log position; NULL for a ping
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL,     -- pending | succeeded | failed
    attempts        TEXT NOT NULL,
    attempt_count   INTEGER NOT NULL,
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, delivery_id);
