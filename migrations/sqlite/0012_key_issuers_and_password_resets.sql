-- Who minted each API key (the directory fills these from ApiKeyIssued; keys
-- from before this and keys made at the command line have none), so the
-- audit can name the issuer of the key behind each click.
ALTER TABLE api_keys ADD COLUMN issued_by_key BLOB;
ALTER TABLE api_keys ADD COLUMN issued_by_member BLOB;

-- An invite for a member who already has a password is a password reset:
-- shown as such to the member, and accepting it ends their sessions.
ALTER TABLE member_invites ADD COLUMN password_reset INTEGER NOT NULL DEFAULT 0;  -- 1: a reset

-- When a member's password reset was last issued (PasswordResetIssued), for
-- the member listing.
ALTER TABLE members ADD COLUMN password_reset_at TEXT;
