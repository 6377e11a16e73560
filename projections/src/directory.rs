//! Read model "directory": organizations, members and API keys, from the
//! `org-*` streams. Authentication looks keys up here by hash on every request.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::org::OrgEvent;
use textbank_domain::{ApiKeyId, DomainEvent, MemberId, OrgId, Role};
use textbank_store::{Database, StoreError, StoreResult, StoreTx, execute, on_reader};
use uuid::Uuid;

use crate::batch::Batch;
use crate::runner::{ProjectionError, Projector};

pub struct Directory;

#[async_trait]
impl Projector for Directory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orgs", "members", "api_keys"]
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for event in batch.events() {
            if !event.stream_id.as_str().starts_with("org-") {
                continue;
            }
            let parsed = OrgEvent::from_parts(&event.event_type, &event.data).map_err(|err| {
                ProjectionError::Apply {
                    projector: "directory",
                    position: event.position,
                    reason: err.to_string(),
                }
            })?;
            let (Some(org_event), Some(org_id)) = (parsed, event.metadata.org_id) else {
                continue;
            };
            apply_one(tx, Uuid::from(org_id), &org_event, event.recorded_at).await?;
        }
        Ok(())
    }
}

async fn apply_one(
    tx: &mut StoreTx,
    org: Uuid,
    event: &OrgEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    // ON CONFLICT DO NOTHING: a rebuild may replay what a table already has.
    match event {
        OrgEvent::OrgCreated { name, .. } => {
            execute!(
                tx,
                "INSERT INTO orgs (org_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                org,
                name,
                at
            );
        }
        OrgEvent::MemberAdded {
            member_id,
            name,
            email,
            role,
        } => {
            execute!(
                tx,
                "INSERT INTO members (member_id, org_id, name, email, role, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                Uuid::from(*member_id),
                org,
                name,
                email,
                role.as_str(),
                at
            );
        }
        OrgEvent::ApiKeyIssued {
            key_id,
            key_hash,
            role,
            member_id,
            label,
            issued_by_key,
            issued_by_member,
        } => {
            execute!(
                tx,
                "INSERT INTO api_keys (key_id, org_id, key_hash, role, member_id, label, created_at,
                     issued_by_key, issued_by_member)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                Uuid::from(*key_id),
                org,
                key_hash,
                role.as_str(),
                member_id.map(Uuid::from),
                label,
                at,
                issued_by_key.map(Uuid::from),
                issued_by_member.map(Uuid::from)
            );
        }
        OrgEvent::ApiKeyRevoked { key_id } => {
            let sql = "UPDATE api_keys SET revoked_at = $1
                        WHERE key_id = $2 AND org_id = $3 AND revoked_at IS NULL";
            execute!(tx, sql, at, Uuid::from(*key_id), org);
        }
        OrgEvent::PasswordResetIssued { member_id } => {
            let sql =
                "UPDATE members SET password_reset_at = $1 WHERE member_id = $2 AND org_id = $3";
            execute!(tx, sql, at, Uuid::from(*member_id), org);
        }
        OrgEvent::CarrierConfigured { .. }
        | OrgEvent::CarrierSettingsChanged { .. }
        | OrgEvent::CarrierRemoved { .. }
        | OrgEvent::WebhookSubscribed { .. }
        | OrgEvent::WebhookChanged { .. }
        | OrgEvent::WebhookSecretRotated { .. }
        | OrgEvent::WebhookRemoved { .. }
        | OrgEvent::TagDefined { .. }
        | OrgEvent::TagChanged { .. }
        | OrgEvent::TagDeleted { .. } => {}
    }
    Ok(())
}

fn role(text: &str) -> StoreResult<Role> {
    text.parse()
        .map_err(|err| StoreError::Corrupt(format!("directory: {err}")))
}

/// An API key that authenticates (not revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveKey {
    pub key_id: ApiKeyId,
    pub org_id: OrgId,
    pub role: Role,
    pub member_id: Option<MemberId>,
}

pub async fn active_key_by_hash(db: &Database, key_hash: &str) -> StoreResult<Option<ActiveKey>> {
    let row: Option<(Uuid, Uuid, String, Option<Uuid>)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT key_id, org_id, role, member_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(pool)
        .await?
    });
    row.map(|(key_id, org_id, role_name, member_id)| {
        Ok(ActiveKey {
            key_id: ApiKeyId::from_uuid(key_id),
            org_id: OrgId::from_uuid(org_id),
            role: role(&role_name)?,
            member_id: member_id.map(MemberId::from_uuid),
        })
    })
    .transpose()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub member_id: MemberId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub added_at: DateTime<Utc>,
    /// When a password reset for them was last issued (an invite while
    /// they had a password).
    pub password_reset_at: Option<DateTime<Utc>>,
}

/// member_id, name, email, role, added_at, password_reset_at
type MemberRow = (
    Uuid,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

pub async fn members(db: &Database, org: OrgId) -> StoreResult<Vec<MemberView>> {
    let rows: Vec<MemberRow> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT member_id, name, email, role, added_at, password_reset_at FROM members
              WHERE org_id = $1 ORDER BY added_at, member_id",
        )
        .bind(Uuid::from(org))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(
            |(member_id, name, email, role_name, added_at, password_reset_at)| {
                Ok(MemberView {
                    member_id: MemberId::from_uuid(member_id),
                    name,
                    email,
                    role: role(&role_name)?,
                    added_at,
                    password_reset_at,
                })
            },
        )
        .collect()
}

pub async fn member(
    db: &Database,
    org: OrgId,
    member: MemberId,
) -> StoreResult<Option<MemberView>> {
    Ok(members(db, org)
        .await?
        .into_iter()
        .find(|m| m.member_id == member))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub key_id: ApiKeyId,
    pub role: Role,
    pub member_id: Option<MemberId>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key (or web session) and member that minted it; none for keys
    /// made at the command line or before issuers were recorded.
    pub issued_by_key_id: Option<ApiKeyId>,
    pub issued_by_member_id: Option<MemberId>,
}

/// key_id, role, member_id, label, created_at, revoked_at, issued_by_key,
/// issued_by_member
type KeyRow = (
    Uuid,
    String,
    Option<Uuid>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
    Option<Uuid>,
);

pub async fn keys(db: &Database, org: OrgId) -> StoreResult<Vec<KeyView>> {
    let rows: Vec<KeyRow> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT key_id, role, member_id, label, created_at, revoked_at, issued_by_key,
                    issued_by_member
               FROM api_keys WHERE org_id = $1 ORDER BY created_at, key_id",
        )
        .bind(Uuid::from(org))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(
            |(key_id, role_name, member_id, label, created_at, revoked_at, by_key, by_member)| {
                Ok(KeyView {
                    key_id: ApiKeyId::from_uuid(key_id),
                    role: role(&role_name)?,
                    member_id: member_id.map(MemberId::from_uuid),
                    label,
                    created_at,
                    revoked_at,
                    issued_by_key_id: by_key.map(ApiKeyId::from_uuid),
                    issued_by_member_id: by_member.map(MemberId::from_uuid),
                })
            },
        )
        .collect()
}

pub async fn org_name(db: &Database, org: OrgId) -> StoreResult<Option<String>> {
    Ok(on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT name FROM orgs WHERE org_id = $1")
            .bind(Uuid::from(org))
            .fetch_optional(pool)
            .await?
    }))
}

/// (member, org) of every member whose email is this one, ignoring case
/// (`email` already lowercased): the same person may belong to several orgs.
pub async fn members_with_email(db: &Database, email: &str) -> StoreResult<Vec<(MemberId, OrgId)>> {
    let rows: Vec<(Uuid, Uuid)> = on_reader!(db, |pool| {
        sqlx::query_as("SELECT member_id, org_id FROM members WHERE lower(email) = $1")
            .bind(email)
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(member, org)| (MemberId::from_uuid(member), OrgId::from_uuid(org)))
        .collect())
}

/// Every organization: (id, name).
pub async fn orgs(db: &Database) -> StoreResult<Vec<(OrgId, String)>> {
    let rows: Vec<(Uuid, String)> = on_reader!(db, |pool| {
        sqlx::query_as("SELECT org_id, name FROM orgs")
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(org, name)| (OrgId::from_uuid(org), name))
        .collect())
}
