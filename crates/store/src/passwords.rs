//! Members' passwords (`member_passwords`): argon2id hashes, one per member,
//! each email held by at most one member.

use chrono::{DateTime, Utc};
use textbank_domain::{MemberId, OrgId};
use uuid::Uuid;

use crate::error::StoreResult;
use crate::macros::optional_id;
use crate::{Database, StoreTx};

/// The password set for an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    pub member_id: MemberId,
    pub org_id: OrgId,
    /// The argon2 hash in PHC string form.
    pub password_hash: String,
}

pub async fn is_set(db: &Database, member_id: MemberId) -> StoreResult<bool> {
    let found: Option<i32> = crate::on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT 1 FROM member_passwords WHERE member_id = $1")
            .bind(Uuid::from(member_id))
            .fetch_optional(pool)
            .await?
    });
    Ok(found.is_some())
}

/// The password for an email (already lowercased by the caller).
pub async fn by_email(db: &Database, email: &str) -> StoreResult<Option<StoredPassword>> {
    let row: Option<(Uuid, Uuid, String)> = crate::on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT member_id, org_id, password_hash FROM member_passwords WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(pool)
        .await?
    });
    Ok(
        row.map(|(member_id, org_id, password_hash)| StoredPassword {
            member_id: MemberId::from_uuid(member_id),
            org_id: OrgId::from_uuid(org_id),
            password_hash,
        }),
    )
}

/// The member whose password is stored under an email, read in `tx`.
pub async fn holder(tx: &mut StoreTx, email: &str) -> StoreResult<Option<MemberId>> {
    let sql = "SELECT member_id FROM member_passwords WHERE email = $1";
    Ok(optional_id!(on_tx!(tx), sql, email).map(MemberId::from_uuid))
}

/// Sets (or replaces) a member's password and the email it signs in with.
pub async fn upsert(
    tx: &mut StoreTx,
    password: &StoredPassword,
    email: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    crate::execute!(
        tx,
        "INSERT INTO member_passwords (member_id, org_id, email, password_hash, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (member_id) DO UPDATE SET email = excluded.email,
             password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        Uuid::from(password.member_id),
        Uuid::from(password.org_id),
        email,
        &password.password_hash,
        at
    );
    Ok(())
}
