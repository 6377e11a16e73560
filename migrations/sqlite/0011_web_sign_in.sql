-- Sign-in for people using the web app: passwords, invite links and browser
-- sessions. Mutable secrets, kept out of the append-only log (ADR 0016).

-- One password per member; an email signs in to one member only.
CREATE TABLE member_passwords (
    member_id     BLOB PRIMARY KEY REFERENCES members (member_id),
    org_id        BLOB NOT NULL REFERENCES orgs (org_id),
    email         TEXT NOT NULL UNIQUE,   -- lower-cased
    password_hash TEXT NOT NULL,          -- argon2id, PHC string format
    updated_at    TEXT NOT NULL
);

-- Invite links that let a member set their password; used once.
CREATE TABLE member_invites (
    token_hash TEXT PRIMARY KEY,          -- hex SHA-256 of the link's token
    member_id  BLOB NOT NULL REFERENCES members (member_id),
    org_id     BLOB NOT NULL REFERENCES orgs (org_id),
    created_by BLOB NOT NULL,               -- the key or session that made it
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

-- Browser sessions: the cookie holds the secret, this table its hash. Rows
-- stay after sign-out (ended_at) as the record of who signed in when.
CREATE TABLE web_sessions (
    session_hash TEXT PRIMARY KEY,
    session_id   BLOB NOT NULL UNIQUE,      -- the key id of everything the session does
    org_id       BLOB NOT NULL REFERENCES orgs (org_id),
    member_id    BLOB NOT NULL REFERENCES members (member_id),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    ended_at     TEXT
);
CREATE INDEX web_sessions_by_member ON web_sessions (member_id);
