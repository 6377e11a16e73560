//! Browser sessions (`web_sessions`): mutable secrets kept out of the event
//! log (ADR 0016), looked up by the hash of the cookie's secret.

use chrono::{DateTime, Utc};
use textbank_domain::{MemberId, OrgId, Role};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::{Database, StoreTx};

/// A session about to be opened.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub session_hash: &'a str,
    pub session_id: Uuid,
    pub org_id: OrgId,
    pub member_id: MemberId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// An open session with its member as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMember {
    pub session_id: Uuid,
    pub org_id: OrgId,
    pub member_id: MemberId,
    pub expires_at: DateTime<Utc>,
    pub role: Role,
    pub name: String,
    pub org_name: String,
}

pub async fn insert(tx: &mut StoreTx, session: &NewSession<'_>) -> StoreResult<()> {
    crate::execute!(
        tx,
        "INSERT INTO web_sessions
             (session_hash, session_id, org_id, member_id, created_at, expires_at, ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        session.session_hash,
        session.session_id,
        Uuid::from(session.org_id),
        Uuid::from(session.member_id),
        session.created_at,
        session.expires_at,
        session.ip,
        session.user_agent
    );
    Ok(())
}

/// The session with this hash, unless it was ended (expiry is the caller's
/// to judge, by its clock). Joined with the directory's members and orgs in
/// one query, so a session of a member who is gone finds nothing.
pub async fn member_of(db: &Database, session_hash: &str) -> StoreResult<Option<SessionMember>> {
    type Row = (Uuid, Uuid, Uuid, DateTime<Utc>, String, String, String);
    let row: Option<Row> = crate::on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT s.session_id, s.org_id, s.member_id, s.expires_at, m.role, m.name, o.name
               FROM web_sessions s
               JOIN members m ON m.member_id = s.member_id
               JOIN orgs o ON o.org_id = s.org_id
              WHERE s.session_hash = $1 AND s.ended_at IS NULL",
        )
        .bind(session_hash)
        .fetch_optional(pool)
        .await?
    });
    row.map(
        |(session_id, org_id, member_id, expires_at, role, name, org_name)| {
            Ok(SessionMember {
                session_id,
                org_id: OrgId::from_uuid(org_id),
                member_id: MemberId::from_uuid(member_id),
                expires_at,
                role: role
                    .parse()
                    .map_err(|err| StoreError::Corrupt(format!("members: {err}")))?,
                name,
                org_name,
            })
        },
    )
    .transpose()
}

/// Ends the session with this hash (signing out).
pub async fn end(tx: &mut StoreTx, session_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
    crate::execute!(
        tx,
        "UPDATE web_sessions SET ended_at = $1 WHERE session_hash = $2 AND ended_at IS NULL",
        at,
        session_hash
    );
    Ok(())
}

/// Ends every open session of a member (their password changed).
pub async fn end_all_of(
    tx: &mut StoreTx,
    member_id: MemberId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    crate::execute!(
        tx,
        "UPDATE web_sessions SET ended_at = $1 WHERE member_id = $2 AND ended_at IS NULL",
        at,
        Uuid::from(member_id)
    );
    Ok(())
}
