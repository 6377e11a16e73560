-- Read model "inbox": one row per conversation, as its texter's inbox
-- lists it, projected from the recipient streams (messages both ways,
-- opt-outs) and the texter streams (ConversationRead).
--
-- Contact names are not stored: they are joined at query time from the
-- campaign's list row (campaign_contacts -> contacts), so a page of 50 costs
-- 150 primary-key lookups and this table stays self-contained.
--
-- last_position: the log position of the latest message, the order of the
-- inbox (newest activity first). Each message is one event of one
-- conversation, so it is unique and a cursor over it alone is stable.
-- updated_position: the last position of the batch that last changed the
-- row; live streams ask for rows changed after the position they have seen.
CREATE TABLE inbox_conversations (
    conversation_id  BLOB PRIMARY KEY,
    org_id           BLOB    NOT NULL,
    campaign_id      BLOB    NOT NULL,
    texter_id        BLOB    NOT NULL,
    phone            TEXT    NOT NULL,   -- E.164
    started_at       TEXT    NOT NULL,
    last_body        TEXT    NOT NULL,   -- a preview: the first 200 characters
    last_direction   TEXT    NOT NULL,   -- outbound | inbound
    last_at          TEXT    NOT NULL,
    last_position    INTEGER NOT NULL,
    -- The latest message is the voter's and no opt-out keyword.
    awaiting_reply   INTEGER NOT NULL,
    -- awaiting_reply, unless the number has opted out of the org.
    needs_reply      INTEGER NOT NULL,
    opted_out        INTEGER NOT NULL,
    -- Inbound messages since the texter last marked it read (read_position).
    unread           INTEGER NOT NULL,
    read_position    INTEGER NOT NULL,
    updated_position INTEGER NOT NULL
);
-- A texter's inbox, the org's, a campaign's: each walked newest first.
CREATE INDEX inbox_conversations_texter ON inbox_conversations (org_id, texter_id, last_position);
CREATE INDEX inbox_conversations_org ON inbox_conversations (org_id, last_position);
CREATE INDEX inbox_conversations_campaign ON inbox_conversations (org_id, campaign_id, last_position);
-- The same for status=needs_reply: few rows, so small partial indexes.
CREATE INDEX inbox_conversations_texter_needs_reply ON inbox_conversations (org_id, texter_id, last_position)
    WHERE needs_reply;
CREATE INDEX inbox_conversations_org_needs_reply ON inbox_conversations (org_id, last_position)
    WHERE needs_reply;
CREATE INDEX inbox_conversations_campaign_needs_reply ON inbox_conversations (org_id, campaign_id, last_position)
    WHERE needs_reply;
-- Live streams: rows changed after a position (always the newest few).
CREATE INDEX inbox_conversations_changes ON inbox_conversations (updated_position, conversation_id);
-- An opt-out or opt-in applies to every conversation with the number.
CREATE INDEX inbox_conversations_phone ON inbox_conversations (phone);
