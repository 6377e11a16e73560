-- Read model "campaigns": campaigns with their current script, every script
-- version (messages record the version they were sent from), and the
-- contacts each campaign texts, projected from the campaign-* streams.
CREATE TABLE campaigns (
    campaign_id      BLOB PRIMARY KEY,
    org_id           BLOB    NOT NULL,
    name             TEXT    NOT NULL,
    status           TEXT    NOT NULL,  -- draft | active | paused | archived
    questions        TEXT    NOT NULL,  -- JSON array of {id, text, answers}
    texting_start    TEXT    NOT NULL,  -- HH:MM, recipient's local time
    texting_end      TEXT    NOT NULL,  -- HH:MM, exclusive
    list_ids         TEXT    NOT NULL,  -- JSON array, in attachment order
    script_version   INTEGER NOT NULL,
    initial_message  TEXT    NOT NULL,
    canned_responses TEXT    NOT NULL,  -- JSON array of {title, body}
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
);
CREATE INDEX campaigns_by_org ON campaigns (org_id, created_at);

CREATE TABLE campaign_scripts (
    campaign_id      BLOB    NOT NULL,
    version          INTEGER NOT NULL,
    initial_message  TEXT    NOT NULL,
    canned_responses TEXT    NOT NULL,
    revised_at       TEXT    NOT NULL,
    PRIMARY KEY (campaign_id, version)
);

-- The union of a campaign's lists, one row per phone (the first attached
-- list wins). texter_id is filled by assignment.
CREATE TABLE campaign_contacts (
    campaign_id BLOB NOT NULL,
    phone       TEXT NOT NULL,          -- E.164
    list_id     BLOB NOT NULL,
    org_id      BLOB NOT NULL,
    texter_id   BLOB,
    PRIMARY KEY (campaign_id, phone)
);
CREATE INDEX campaign_contacts_by_org_phone ON campaign_contacts (org_id, phone);
