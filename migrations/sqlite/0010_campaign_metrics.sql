-- Read model "campaign_metrics": a manager's campaign figures, projected from
-- the campaign-* streams (lifecycle, lists attached, assignments) and the
-- recipient-* streams (clicks, refusals, dispatch, delivery reports, replies,
-- opt-outs, survey answers). Figures are counters the projector adds to once
-- per batch, so a query reads a handful of rows however large the campaign.
-- Every table stands alone (no foreign keys, no triggers): a rebuild fills
-- `{table}_next` copies and swaps them in. Definitions of each figure:
-- projections/src/campaign_metrics.rs.
--
-- The counter columns, the same in the three counter tables:
--   assigned          contacts now assigned to a texter (assigned - released)
--   messaged          initial messages clicked (one per contact reached)
--   replies_sent      texter replies clicked in conversations
--   delivered         initial messages whose final carrier status is delivered
--   failed            initial messages that failed (final failed/undelivered,
--                     or latest submission refused)
--   replied           conversations with at least one reply from the voter
--   replies_received  every reply from voters
--   opted_out         conversations in which an opt-out was recorded
--   blocked           refused send attempts
--   timed_clicks      initial messages with a display-to-click time (the
--                     count the median's middle row is found from)

CREATE TABLE campaign_metrics_campaigns (
    campaign_id      BLOB PRIMARY KEY,
    org_id           BLOB    NOT NULL,
    name             TEXT    NOT NULL,
    status           TEXT    NOT NULL,   -- draft | active | paused | archived ('' before CampaignCreated)
    created_at       TEXT    NOT NULL,
    -- The campaign's contacts: its lists' union, one per phone, counted
    -- when lists are attached (from campaign_contacts, see the projector).
    contacts         INTEGER NOT NULL DEFAULT 0,
    assigned         INTEGER NOT NULL DEFAULT 0,
    messaged         INTEGER NOT NULL DEFAULT 0,
    replies_sent     INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    replied          INTEGER NOT NULL DEFAULT 0,
    replies_received INTEGER NOT NULL DEFAULT 0,
    opted_out        INTEGER NOT NULL DEFAULT 0,
    blocked          INTEGER NOT NULL DEFAULT 0,
    timed_clicks     INTEGER NOT NULL DEFAULT 0
);
-- The overview: an org's campaigns, newest first.
CREATE INDEX campaign_metrics_campaigns_by_org ON campaign_metrics_campaigns (org_id, created_at);

-- The same counters per texter of a campaign (the conversation's texter;
-- for clicks and refusals, whoever clicked).
CREATE TABLE campaign_metrics_texters (
    campaign_id      BLOB    NOT NULL,
    texter_id        BLOB    NOT NULL,
    assigned         INTEGER NOT NULL DEFAULT 0,
    messaged         INTEGER NOT NULL DEFAULT 0,
    replies_sent     INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    replied          INTEGER NOT NULL DEFAULT 0,
    replies_received INTEGER NOT NULL DEFAULT 0,
    opted_out        INTEGER NOT NULL DEFAULT 0,
    blocked          INTEGER NOT NULL DEFAULT 0,
    timed_clicks     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, texter_id)
) WITHOUT ROWID;

-- The same counters per UTC hour in which each thing was recorded
-- (hour = epoch seconds of the hour's start). Day buckets add hours up.
CREATE TABLE campaign_metrics_hours (
    campaign_id      BLOB    NOT NULL,
    hour             INTEGER NOT NULL,
    assigned         INTEGER NOT NULL DEFAULT 0,
    messaged         INTEGER NOT NULL DEFAULT 0,
    replies_sent     INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    replied          INTEGER NOT NULL DEFAULT 0,
    replies_received INTEGER NOT NULL DEFAULT 0,
    opted_out        INTEGER NOT NULL DEFAULT 0,
    blocked          INTEGER NOT NULL DEFAULT 0,
    timed_clicks     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, hour)
) WITHOUT ROWID;

-- Failed initial messages by error code (the carrier's, or the submission
-- refusal's; 'unknown' when a failure report carried none).
CREATE TABLE campaign_metrics_failures (
    campaign_id BLOB    NOT NULL,
    code        TEXT    NOT NULL,
    messages    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, code)
) WITHOUT ROWID;

-- Refused send attempts by reason (BlockReason codes).
CREATE TABLE campaign_metrics_blocked (
    campaign_id BLOB    NOT NULL,
    reason      TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, reason)
) WITHOUT ROWID;

-- Conversations whose current answer to a question is this answer.
CREATE TABLE campaign_metrics_answers (
    campaign_id   BLOB    NOT NULL,
    question_id   TEXT    NOT NULL,
    answer        TEXT    NOT NULL,
    conversations INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, question_id, answer)
) WITHOUT ROWID;

-- One row per conversation, keyed by its initial message: what delivery
-- reports (which name the message) and replies, opt-outs and answers (which
-- name the conversation) are attributed through, and what a later event
-- must know to count once (the outcome already counted and the hour it was
-- counted in; whether a reply or an opt-out was already counted).
CREATE TABLE campaign_metrics_conversations (
    message_id      BLOB    PRIMARY KEY,
    conversation_id BLOB    NOT NULL UNIQUE,
    campaign_id     BLOB    NOT NULL,
    texter_id       BLOB    NOT NULL,
    started_us      INTEGER NOT NULL,  -- the click's recorded_at, µs since the epoch
    display_ms      INTEGER,           -- presented → click received (server clock)
    final_status    TEXT,              -- delivered | failed | undelivered; never changes once set
    error_code      TEXT,              -- of the final failure report
    submit_failure  TEXT,              -- code of the latest submission refusal, until a new attempt starts
    outcome_hour    INTEGER,           -- hour the current outcome (delivered/failed) was counted in
    first_reply_ms  INTEGER,           -- first voter reply's recorded_at - started_us, in ms
    opted_out       INTEGER NOT NULL   -- an opt-out was counted for it
) WITHOUT ROWID;
-- Exact medians: the middle row of each range, found by OFFSET.
CREATE INDEX campaign_metrics_conversations_display
    ON campaign_metrics_conversations (campaign_id, texter_id, display_ms)
    WHERE display_ms IS NOT NULL;
CREATE INDEX campaign_metrics_conversations_first_reply
    ON campaign_metrics_conversations (campaign_id, first_reply_ms)
    WHERE first_reply_ms IS NOT NULL;

-- Display-to-click times per whole second, per texter: where a texter's
-- median lies, so the exact value is read from that second on (OFFSET
-- within one second's rows) instead of skipping half the texter's rows.
CREATE TABLE campaign_metrics_display_seconds (
    campaign_id BLOB    NOT NULL,
    texter_id   BLOB    NOT NULL,
    second      INTEGER NOT NULL,   -- floor(display_ms / 1000)
    clicks      INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, texter_id, second)
) WITHOUT ROWID;

-- The current answer of each conversation to each question (a later answer
-- replaces it, moving the count).
CREATE TABLE campaign_metrics_survey (
    conversation_id BLOB NOT NULL,
    question_id     TEXT NOT NULL,
    campaign_id     BLOB NOT NULL,
    answer          TEXT NOT NULL,
    PRIMARY KEY (conversation_id, question_id)
) WITHOUT ROWID;

-- Final delivery reports that arrived before their message's submission
-- was recorded (the report names only the carrier's id); applied when the
-- submission with that id comes, as the recipient aggregate does.
CREATE TABLE campaign_metrics_early_reports (
    carrier_message_id TEXT    NOT NULL,
    org_id             BLOB    NOT NULL,
    status             TEXT    NOT NULL,
    error_code         TEXT,
    recorded_hour      INTEGER NOT NULL,
    PRIMARY KEY (carrier_message_id, org_id)
) WITHOUT ROWID;
