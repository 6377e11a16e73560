-- Large lists attached to a campaign are copied into campaign_contacts in
-- the background, a range of list lines per transaction, so that creating
-- a campaign over a million contacts answers at once and no transaction
-- holds the write lock for the whole copy (ADR 0035). One row per list
-- whose copy is not finished; the row goes when its last line is copied.
CREATE TABLE campaign_list_copies (
    campaign_id    BLOB NOT NULL,
    list_id        BLOB NOT NULL,
    -- Attachment order within the campaign: a phone on two lists keeps the
    -- first list's row, so a campaign's lists are copied one after another.
    seq            BIGINT NOT NULL,
    copied_through BIGINT NOT NULL,   -- the last list line copied (0: none)
    last_line      BIGINT NOT NULL,   -- the list's last line when attached
    PRIMARY KEY (campaign_id, list_id)
);
CREATE INDEX campaign_list_copies_in_order ON campaign_list_copies (campaign_id, seq);
