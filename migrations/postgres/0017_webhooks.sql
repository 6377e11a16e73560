-- Outbound webhooks: each organization's subscriptions and the record of
-- every delivery. A subscription's checkpoint is the last log position it
-- has delivered (or did not want); the worker resumes after it, so a crash
-- re-sends at most what was delivered but not yet recorded, never skips.
CREATE TABLE webhook_subscriptions (
    webhook_id    UUID PRIMARY KEY,
    org_id        UUID NOT NULL,
    url           TEXT NOT NULL,
    event_types   TEXT NOT NULL,     -- JSON array of type names; [] = every type
    description   TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    sealed_secret TEXT NOT NULL,     -- the signing secret, sealed with the server key
    failing_since TIMESTAMPTZ,        -- set when the retry window ran out (and enabled went false)
    checkpoint    BIGINT  NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_subscriptions_by_org ON webhook_subscriptions (org_id, webhook_id);

-- One row per event (or ping) sent to one subscription, with every attempt
-- (time, status, latency, error, a short excerpt of the answer) as JSON.
CREATE TABLE webhook_deliveries (
    delivery_id     UUID PRIMARY KEY,
    webhook_id      UUID NOT NULL,
    org_id          UUID NOT NULL,
    kind            TEXT NOT NULL,     -- event | ping
    message_id      UUID NOT NULL,     -- the webhook-id header: the event's id, or the ping's
    position        BIGINT,            -- the event's log position; NULL for a ping
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL,     -- pending | succeeded | failed
    attempts        TEXT NOT NULL,
    attempt_count   INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, delivery_id);
