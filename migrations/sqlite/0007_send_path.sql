-- The send path.
--
-- campaign_contacts.line: the contact's row in its list, so the texter's
-- queue can join contacts by primary key (contacts has no phone index: it
-- would slow every list import for one lookup per queued contact).
ALTER TABLE campaign_contacts ADD COLUMN line INTEGER;
UPDATE campaign_contacts SET line = (
    SELECT c.line FROM contacts c
     WHERE c.list_id = campaign_contacts.list_id AND c.phone = campaign_contacts.phone
);

-- Read model "conversations": one row per campaign and phone, opened by the
-- campaign's initial message (the id is that message's). The queue leaves
-- these contacts out; replies and opt-outs find their phone here.
CREATE TABLE conversations (
    conversation_id BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL,
    campaign_id     BLOB NOT NULL,
    phone           TEXT NOT NULL,   -- E.164
    texter_id       BLOB NOT NULL,
    started_at      TEXT NOT NULL,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX conversations_by_texter ON conversations (org_id, texter_id, started_at);

-- Carrier configuration per organization. Not event-sourced: it holds
-- credentials, sealed with the server key (AES-256-GCM), which must never
-- reach the event log. Changes are recorded as CarrierConfigured events
-- without the secrets.
CREATE TABLE carrier_accounts (
    org_id        BLOB PRIMARY KEY,
    carrier       TEXT NOT NULL,   -- sim | twilio | telnyx
    settings      TEXT NOT NULL,   -- JSON, no secrets
    sealed_secret TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Sending numbers are unique across organizations: a webhook names the
-- number, and the number names the organization whose key verifies it.
CREATE TABLE sending_numbers (
    number TEXT PRIMARY KEY,       -- E.164
    org_id BLOB NOT NULL
);
CREATE INDEX sending_numbers_by_org ON sending_numbers (org_id);
