-- One row that /ready rewrites to learn whether the database takes writes:
-- a full disk or a read-only volume still answers reads.
CREATE TABLE write_probe (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    probes BIGINT NOT NULL
);
INSERT INTO write_probe (id, probes) VALUES (1, 0);
