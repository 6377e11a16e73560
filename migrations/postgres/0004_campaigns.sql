-- Read model "campaigns": campaigns with their current script, every script
-- version (messages record the version they were sent from), and the
-- contacts each campaign texts, projected from the campaign-* streams.
CREATE TABLE campaigns (
    campaign_id      UUID PRIMARY KEY,
    org_id           UUID    NOT NULL,
    name             TEXT    NOT NULL,
    status           TEXT    NOT NULL,  -- draft | active | paused | archived
    questions        TEXT    NOT NULL,  -- JSON array of {id, text, answers}
    texting_start    TEXT    NOT NULL,  -- HH:MM, recipient's local time
    texting_end      TEXT    NOT NULL,  -- HH:MM, exclusive
    list_ids         TEXT    NOT NULL,  -- JSON array, in attachment order
    script_version   BIGINT  NOT NULL,
    initial_message  TEXT    NOT NULL,
    canned_responses TEXT    NOT NULL,  -- JSON array of {title, body}
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaigns_by_org ON campaigns (org_id, created_at);

CREATE TABLE campaign_scripts (
    campaign_id      UUID    NOT NULL,
    version          BIGINT  NOT NULL,
    initial_message  TEXT    NOT NULL,
    canned_responses TEXT    NOT NULL,
    revised_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, version)
);

-- The union of a campaign's lists, one row per phone (the first attached
-- list wins). texter_id is filled by assignment.
CREATE TABLE campaign_contacts (
    campaign_id UUID NOT NULL,
    phone       TEXT NOT NULL,          -- E.164
    list_id     UUID NOT NULL,
    org_id      UUID NOT NULL,
    texter_id   UUID,
    PRIMARY KEY (campaign_id, phone)
);
CREATE INDEX campaign_contacts_by_org_phone ON campaign_contacts (org_id, phone);
