-- Read model "audit": the compliance audit, from the recipient-* and
-- texter-* streams. Self-contained tables (no foreign keys, no triggers) so
-- `projections rebuild audit` can fill `{table}_next` copies and swap them
-- in. Lists, campaigns and members are joined at query time.
--
-- One row per message, both directions: the texter's click (or the
-- automated answer, or the voter's text) that created it, then its
-- carrier submission and delivery folded in. `positions` lists every event
-- of the message in log order, so its whole trail can be read back from
-- the log with hashes.
CREATE TABLE audit_messages (
    message_id          UUID PRIMARY KEY,
    org_id              UUID        NOT NULL,
    phone               TEXT        NOT NULL,   -- the voter's number, E.164
    position            BIGINT      NOT NULL,   -- of the event that created the message
    occurred_at         TIMESTAMPTZ NOT NULL,   -- that event's recorded_at (the log's clock)
    positions           TEXT        NOT NULL,   -- comma-separated, in log order
    direction           TEXT,                   -- outbound | inbound
    kind                TEXT,                   -- initial | reply | opt_out_confirmation | opt_in_confirmation | help | inbound
    automated           BOOLEAN,                -- outbound: true = no human click (an automated answer)
    texter_id           UUID,                   -- who clicked; inbound: the conversation's texter
    campaign_id         UUID,
    conversation_id     UUID,                   -- = the message id of the campaign's initial message
    list_id             UUID,                   -- initial messages; others take their conversation's
    key_id              UUID,                   -- API key / session of the click
    body_sha256         TEXT,
    segments            BIGINT,
    script_version      BIGINT,
    token_id            UUID,                   -- the single-use click token that presented the body
    presented_at        TIMESTAMPTZ,
    clicked_at          TIMESTAMPTZ,            -- the texter's client clock
    received_at         TIMESTAMPTZ,            -- the server's clock
    display_to_click_ms BIGINT,                 -- received_at - presented_at
    ip                  TEXT,
    user_agent          TEXT,
    checked_events      BIGINT,                 -- recipient-stream events the opt-out check read (all before the click)
    opted_out           BOOLEAN,                -- opt-out state when it was sent (NULL: not checked)
    hours_allowed       BOOLEAN,
    local_time          TEXT,                   -- the recipient's wall clock, RFC 3339 with offset
    time_zone           TEXT,
    zone_source         TEXT,                   -- zip | area_code | unknown
    hours_window        TEXT,                   -- HH:MM-HH:MM, recipient's time
    keyword             TEXT,                   -- inbound: the keyword it matched
    in_reply_to         TEXT,                   -- automated: the carrier id of the voter's text
    carrier             TEXT,
    carrier_message_id  TEXT,
    our_number          TEXT,                   -- outbound: from; inbound: to
    dispatch_status     TEXT,                   -- started | submitted | failed | unknown | cancelled
    attempts            BIGINT,
    submit_error_code   TEXT,
    submit_error        TEXT,
    delivery_rank       BIGINT,                 -- 0 queued … 2 sent, 3 delivered, 4 undelivered, 5 failed
    delivery_error_code TEXT
);
-- Rows are returned in (occurred_at, position) order. Writes stay
-- append-mostly (a rebuild inserts 200,000 messages): the time index
-- carries texter_id so a texter's rows are found by scanning it without
-- touching the table, and a phone's messages are found through its
-- recipient stream (the log's own index) — indexes on texter or phone
-- would take an insert at a random place per message. See ADR 0013.
CREATE INDEX audit_messages_by_time ON audit_messages (org_id, occurred_at, position, texter_id);
CREATE INDEX audit_messages_by_campaign ON audit_messages (org_id, campaign_id, occurred_at, position);

-- Delivery reports that arrived before the submission naming their carrier
-- id was recorded (a quick carrier): the recipient stream attaches them to
-- the message when the submission comes; queries join them the same way.
CREATE TABLE audit_unmatched_reports (
    org_id              UUID   NOT NULL,
    carrier_message_id  TEXT   NOT NULL,
    phone               TEXT   NOT NULL,
    carrier             TEXT   NOT NULL,
    delivery_rank       BIGINT NOT NULL,
    delivery_error_code TEXT,
    positions           TEXT   NOT NULL,
    PRIMARY KEY (org_id, carrier_message_id, phone)
);

-- Refused send attempts (SendBlocked), with the evidence the refusal saw.
CREATE TABLE audit_blocked (
    attempt_id      UUID PRIMARY KEY,
    org_id          UUID        NOT NULL,
    position        BIGINT      NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    reason          TEXT        NOT NULL,
    detail          TEXT        NOT NULL,
    kind            TEXT        NOT NULL,   -- initial | reply
    texter_id       UUID        NOT NULL,
    key_id          UUID        NOT NULL,
    campaign_id     UUID,
    conversation_id UUID,
    phone           TEXT,                   -- none when the token could not be trusted
    token_id        UUID,
    presented_at    TIMESTAMPTZ,
    clicked_at      TIMESTAMPTZ,
    received_at     TIMESTAMPTZ NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    hours_allowed   BOOLEAN,
    local_time      TEXT,
    time_zone       TEXT,
    zone_source     TEXT,
    hours_window    TEXT
);
CREATE INDEX audit_blocked_by_time ON audit_blocked (org_id, occurred_at, position);
CREATE INDEX audit_blocked_by_reason ON audit_blocked (org_id, reason, occurred_at, position);
CREATE INDEX audit_blocked_by_texter ON audit_blocked (org_id, texter_id, occurred_at, position);
CREATE INDEX audit_blocked_by_campaign ON audit_blocked (org_id, campaign_id, occurred_at, position);
CREATE INDEX audit_blocked_by_phone ON audit_blocked (org_id, phone, occurred_at, position);
