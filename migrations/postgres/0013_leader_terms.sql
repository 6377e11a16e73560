-- Fencing for background roles that one process leads at a time (the
-- dispatcher). Each new leader raises its role's term; an append fenced with
-- an older term is refused inside the writer's transaction, so a former
-- leader that has not yet noticed its loss cannot start another send.
CREATE TABLE leader_terms (
    role TEXT PRIMARY KEY,
    term BIGINT NOT NULL
);
