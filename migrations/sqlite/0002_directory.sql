-- Read model "directory": organizations, members and API keys, projected
-- from the org-* streams. Authentication reads api_keys on every request.
CREATE TABLE orgs (
    org_id     BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE members (
    member_id BLOB PRIMARY KEY,
    org_id    BLOB NOT NULL REFERENCES orgs (org_id),
    name      TEXT NOT NULL,
    email     TEXT NOT NULL,
    role      TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE api_keys (
    key_id     BLOB PRIMARY KEY,
    org_id     BLOB NOT NULL REFERENCES orgs (org_id),
    key_hash   TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the key; the key is never stored
    role       TEXT NOT NULL,
    member_id  BLOB REFERENCES members (member_id),
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT                    -- set once revoked; such keys no longer authenticate
);
CREATE INDEX api_keys_by_org ON api_keys (org_id);
