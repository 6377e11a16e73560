-- Assignment of campaign contacts to texters.
--
-- stream_version: the last version of the campaign-{id} stream this read
-- model has applied. The assignment command picks unassigned phones from
-- campaign_contacts and appends under an exact stream version; it may only
-- do so when this row says the read model is at that very version, or two
-- requests could hand out the same contact.
ALTER TABLE campaigns ADD COLUMN stream_version BIGINT;
ALTER TABLE campaigns ADD COLUMN assignment_batch_size BIGINT NOT NULL DEFAULT 100;

-- Campaigns projected before this migration: their version is the last one
-- of their stream among the events the projector has applied (up to its
-- checkpoint).
UPDATE campaigns SET stream_version = (
    SELECT MAX(e.version) FROM events e
     WHERE e.stream_id = 'campaign-' || campaigns.campaign_id::text
       AND e.position <= (SELECT position FROM checkpoints WHERE name = 'campaigns')
);

-- Picking the next unassigned phones in phone order must not scan the
-- assigned ones first.
CREATE INDEX campaign_contacts_unassigned ON campaign_contacts (campaign_id, phone)
    WHERE texter_id IS NULL;
-- A texter's contacts (release, reassignment, per-texter counts).
CREATE INDEX campaign_contacts_by_texter ON campaign_contacts (campaign_id, texter_id, phone);
