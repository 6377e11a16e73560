//! Invite links (`member_invites`): single-use tokens, stored by hash, that
//! let a member set their password.

use chrono::{DateTime, Utc};
use textbank_domain::{ApiKeyId, MemberId, OrgId};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::{Database, StoreTx};

/// An invite about to be issued.
#[derive(Debug, Clone)]
pub struct NewInvite<'a> {
    pub token_hash: &'a str,
    pub member_id: MemberId,
    pub org_id: OrgId,
    /// The key (or session) that issued it.
    pub created_by: ApiKeyId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The member had a password when it was issued.
    pub password_reset: bool,
}

/// An invite not used yet (it may have expired: the caller's clock decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedInvite {
    pub org_id: OrgId,
    pub member_id: MemberId,
    pub expires_at: DateTime<Utc>,
    pub password_reset: bool,
}

pub async fn insert(tx: &mut StoreTx, invite: &NewInvite<'_>) -> StoreResult<()> {
    crate::execute!(
        tx,
        "INSERT INTO member_invites
             (token_hash, member_id, org_id, created_by, created_at, expires_at, password_reset)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        invite.token_hash,
        Uuid::from(invite.member_id),
        Uuid::from(invite.org_id),
        Uuid::from(invite.created_by),
        invite.created_at,
        invite.expires_at,
        invite.password_reset
    );
    Ok(())
}

pub async fn unused(db: &Database, token_hash: &str) -> StoreResult<Option<UnusedInvite>> {
    let row: Option<(Uuid, Uuid, DateTime<Utc>, bool)> = crate::on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT org_id, member_id, expires_at, password_reset FROM member_invites
              WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(
        |(org_id, member_id, expires_at, password_reset)| UnusedInvite {
            org_id: OrgId::from_uuid(org_id),
            member_id: MemberId::from_uuid(member_id),
            expires_at,
            password_reset,
        },
    ))
}

/// Marks the invite used; false when it was already used (or never
/// existed), so of two racing acceptances only one gets true.
pub async fn use_up(tx: &mut StoreTx, token_hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let used = crate::execute!(
        tx,
        "UPDATE member_invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        at,
        token_hash
    );
    Ok(used == 1)
}
