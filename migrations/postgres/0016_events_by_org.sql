-- The event feed (GET /v1/events) reads one organization's events in log
-- order straight from the log. The expression is the one the feed's query
-- uses, so the index serves it.
CREATE INDEX events_by_org ON events ((metadata->>'org_id'), position);
