-- Conversation handling (ADR 0033): who holds a conversation now, its
-- tags and its escalation, as the inbox lists them.
--
-- holder: texter (in texter_id's inbox), pool (released to the campaign's
-- pool; texter_id is the last texter) or escalated (in the staff's
-- escalation queue, with escalation_reason).
-- previous_texter_id, holder_position: who held it before the last change
-- of holder, and the batch position of that change; a texter's live inbox
-- stream tells that texter the conversation is gone.
-- tags: JSON array of {"tag_id","name"} as applied.
ALTER TABLE inbox_conversations
    ADD COLUMN holder TEXT NOT NULL DEFAULT 'texter',
    ADD COLUMN previous_texter_id UUID,
    ADD COLUMN holder_position BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN escalation_reason TEXT,
    ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

-- The escalation queue and the pool: few rows, newest first.
CREATE INDEX inbox_conversations_unheld ON inbox_conversations (org_id, holder, last_position)
    WHERE holder <> 'texter';
