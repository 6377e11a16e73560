-- Batches a texter can send now: each campaign contact carries its
-- contact's time zone facts (the same JSON as contacts.zone: zone, other
-- zone, state, area code state, source), so that texting hours can be
-- checked once per distinct zone instead of once per contact, and the
-- contacts of the zones open now found by index however many contacts of
-- closed zones come first in phone order.
ALTER TABLE campaign_contacts ADD COLUMN zone TEXT NOT NULL DEFAULT '{"source":"unknown"}';
UPDATE campaign_contacts SET zone = (
    SELECT c.zone FROM contacts c
     WHERE c.list_id = campaign_contacts.list_id AND c.line = campaign_contacts.line
);

-- A texter's contacts per zone, in phone order: the texter's queue, and
-- with texter_id IS NULL the unassigned ones that assignment hands out
-- (the zones open now first, then the soonest to open).
CREATE INDEX campaign_contacts_by_texter_zone
    ON campaign_contacts (campaign_id, texter_id, zone, phone);

-- Per-campaign batch rules (both NULL: off). max_contacts_held: the most
-- contacts a texter may hold that still wait for their first message;
-- max_replies_waiting: a texter with more conversations needing a reply
-- gets no new batch.
ALTER TABLE campaigns ADD COLUMN max_contacts_held INTEGER;
ALTER TABLE campaigns ADD COLUMN max_replies_waiting INTEGER;
