//! Read model "campaigns": campaigns with their current script, every script
//! version, and `campaign_contacts` — the union of a campaign's lists, one
//! row per phone — from the `campaign-*` streams. Contacts are copied from
//! the lists read model when lists are attached.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use textbank_domain::campaign::{CampaignEvent, CampaignStatus};
use textbank_domain::{CampaignId, DomainEvent, ListId, OrgId};
use textbank_store::{Database, RecordedEvent, StoreError, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

pub struct Campaigns;

#[async_trait]
impl Projector for Campaigns {
    fn name(&self) -> &'static str {
        "campaigns"
    }

    async fn apply(
        &self,
        tx: &mut StoreTx,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            let Some(campaign) = event.stream_id.as_str().strip_prefix("campaign-") else {
                continue;
            };
            let fail = |reason: String| ProjectionError::Apply {
                projector: "campaigns",
                position: event.position,
                reason,
            };
            let campaign: Uuid = campaign
                .parse()
                .map_err(|err| fail(format!("stream id: {err}")))?;
            let Some(campaign_event) = CampaignEvent::from_parts(&event.event_type, &event.data)
                .map_err(|err| fail(err.to_string()))?
            else {
                continue;
            };
            if let CampaignEvent::ListsAttached { list_ids } = &campaign_event {
                // Lists are attached only once complete, but the lists read
                // model is a separate projector: during a rebuild it may lag
                // behind this one. Copying from a half-projected list would
                // lose contacts for good, so fail the batch and let the runner
                // retry once the lists projector has caught up.
                for list in list_ids {
                    if !list_is_projected(tx, Uuid::from(*list)).await? {
                        return Err(fail(format!(
                            "list {list} is not yet complete in the lists read model"
                        )));
                    }
                }
            }
            apply_one(tx, campaign, &campaign_event, event.recorded_at).await?;
        }
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::InvalidInput(err.to_string()))
}

fn hhmm(time: chrono::NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

async fn list_is_projected(tx: &mut StoreTx, list: Uuid) -> StoreResult<bool> {
    let status: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT status FROM lists WHERE list_id = $1")
            .bind(list)
            .fetch_optional(conn)
            .await?
    });
    Ok(status.as_deref() == Some("complete"))
}

async fn set_status(
    tx: &mut StoreTx,
    campaign: Uuid,
    status: CampaignStatus,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE campaigns SET status = $1, updated_at = $2 WHERE campaign_id = $3")
            .bind(status.as_str())
            .bind(at)
            .bind(campaign)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

async fn apply_one(
    tx: &mut StoreTx,
    campaign: Uuid,
    event: &CampaignEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    match event {
        CampaignEvent::CampaignCreated {
            org_id,
            name,
            questions,
            texting_hours,
            ..
        } => {
            let questions = to_json(questions)?;
            on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO campaigns (campaign_id, org_id, name, status, questions, texting_start, texting_end,
                                            list_ids, script_version, initial_message, canned_responses,
                                            created_at, updated_at)
                     VALUES ($1, $2, $3, 'draft', $4, $5, $6, '[]', 0, '', '[]', $7, $7)
                     ON CONFLICT DO NOTHING",
                )
                .bind(campaign)
                .bind(Uuid::from(*org_id))
                .bind(name)
                .bind(&questions)
                .bind(hhmm(texting_hours.start()))
                .bind(hhmm(texting_hours.end()))
                .bind(at)
                .execute(conn)
                .await
                .map(|_| ())?
            })
        }
        CampaignEvent::ScriptRevised {
            version,
            initial_message,
            canned_responses,
        } => {
            let canned = to_json(canned_responses)?;
            let version = i64::from(*version);
            on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO campaign_scripts (campaign_id, version, initial_message, canned_responses, revised_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(campaign)
                .bind(version)
                .bind(initial_message)
                .bind(&canned)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE campaigns SET script_version = $1, initial_message = $2, canned_responses = $3,
                                          updated_at = $4
                      WHERE campaign_id = $5 AND script_version < $1",
                )
                .bind(version)
                .bind(initial_message)
                .bind(&canned)
                .bind(at)
                .bind(campaign)
                .execute(conn)
                .await
                .map(|_| ())?
            })
        }
        CampaignEvent::ListsAttached { list_ids } => {
            attach_lists(tx, campaign, list_ids, at).await?
        }
        CampaignEvent::CampaignLaunched {} | CampaignEvent::CampaignResumed {} => {
            set_status(tx, campaign, CampaignStatus::Active, at).await?
        }
        CampaignEvent::CampaignPaused {} => {
            set_status(tx, campaign, CampaignStatus::Paused, at).await?
        }
        CampaignEvent::CampaignArchived {} => {
            set_status(tx, campaign, CampaignStatus::Archived, at).await?
        }
    }
    Ok(())
}

/// Records the lists and copies their contacts, list by list in order, so
/// for a phone on two lists the first list's row is the one kept.
async fn attach_lists(
    tx: &mut StoreTx,
    campaign: Uuid,
    list_ids: &[ListId],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let current: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT list_ids FROM campaigns WHERE campaign_id = $1")
            .bind(campaign)
            .fetch_optional(conn)
            .await?
    });
    let current = current.ok_or_else(|| {
        StoreError::Corrupt(format!("lists attached to unknown campaign {campaign}"))
    })?;
    let mut attached: Vec<ListId> = serde_json::from_str(&current)
        .map_err(|err| StoreError::Corrupt(format!("campaigns.list_ids: {err}")))?;
    for list in list_ids {
        if attached.contains(list) {
            continue;
        }
        attached.push(*list);
        on_tx!(tx, |conn| {
            // The WHERE clause also settles SQLite's parsing ambiguity
            // between INSERT … SELECT and an upsert clause.
            sqlx::query(
                "INSERT INTO campaign_contacts (campaign_id, phone, list_id, org_id)
                 SELECT $1, phone, list_id, org_id FROM contacts WHERE list_id = $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(campaign)
            .bind(Uuid::from(*list))
            .execute(conn)
            .await
            .map(|_| ())?
        });
    }
    let attached = to_json(&attached)?;
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE campaigns SET list_ids = $1, updated_at = $2 WHERE campaign_id = $3")
            .bind(&attached)
            .bind(at)
            .bind(campaign)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct TextingHoursView {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScriptView {
    pub version: u32,
    pub initial_message: String,
    pub canned_responses: Value,
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub campaign_id: CampaignId,
    pub name: String,
    pub status: String,
    pub questions: Value,
    pub texting_hours: TextingHoursView,
    pub list_ids: Vec<ListId>,
    pub script: ScriptView,
    /// Contacts the campaign can text (see [`reachable_contact_count`]).
    pub contacts: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type CampaignRow = (
    Uuid,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

const CAMPAIGN_COLUMNS: &str = "SELECT campaign_id, name, status, questions, texting_start, texting_end, list_ids, \
     script_version, initial_message, canned_responses, created_at, updated_at FROM campaigns";

async fn view(db: &Database, row: CampaignRow) -> StoreResult<CampaignView> {
    fn json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
        serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("campaigns: {err}")))
    }
    let campaign_id = CampaignId::from_uuid(row.0);
    Ok(CampaignView {
        campaign_id,
        name: row.1,
        status: row.2,
        questions: json(&row.3)?,
        texting_hours: TextingHoursView {
            start: row.4,
            end: row.5,
        },
        list_ids: json(&row.6)?,
        script: ScriptView {
            version: u32::try_from(row.7).unwrap_or(0),
            initial_message: row.8,
            canned_responses: json(&row.9)?,
        },
        contacts: reachable_contact_count(db, campaign_id).await?,
        created_at: row.10,
        updated_at: row.11,
    })
}

/// The org's campaigns, newest first.
pub async fn campaigns(db: &Database, org: OrgId) -> StoreResult<Vec<CampaignView>> {
    let rows: Vec<CampaignRow> = on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CAMPAIGN_COLUMNS} WHERE org_id = $1 ORDER BY created_at DESC, campaign_id DESC"
        )))
        .bind(Uuid::from(org))
        .fetch_all(pool)
        .await?
    });
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(view(db, row).await?);
    }
    Ok(views)
}

/// One campaign of the org; `None` for another org's, as for a missing one.
pub async fn campaign(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
) -> StoreResult<Option<CampaignView>> {
    let row: Option<CampaignRow> = on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{CAMPAIGN_COLUMNS} WHERE org_id = $1 AND campaign_id = $2"
        )))
        .bind(Uuid::from(org))
        .bind(Uuid::from(campaign))
        .fetch_optional(pool)
        .await?
    });
    match row {
        Some(row) => Ok(Some(view(db, row).await?)),
        None => Ok(None),
    }
}

/// How many contacts the campaign can text: its lists' union, deduplicated
/// by phone (the table's key), minus the numbers opted out of the org.
///
/// This is the one query where the opt-out exclusion belongs. Opt-outs are
/// not recorded yet (they arrive with the send path); until then nothing is
/// excluded and the count is the deduplicated union. When they arrive, add
/// `AND phone NOT IN (SELECT phone FROM opt_outs WHERE org_id = …)` here.
pub async fn reachable_contact_count(db: &Database, campaign: CampaignId) -> StoreResult<u64> {
    let count: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = $1")
            .bind(Uuid::from(campaign))
            .fetch_one(pool)
            .await?
    });
    Ok(count.max(0) as u64)
}

/// A contact's template values, for rendering a sample message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleContact {
    pub first_name: String,
    pub last_name: String,
    pub fields: BTreeMap<String, String>,
}

/// The first contact (in file order) of a list, if it has any.
pub async fn first_contact(db: &Database, list: ListId) -> StoreResult<Option<SampleContact>> {
    let row: Option<(String, String, String)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT first_name, last_name, fields FROM contacts WHERE list_id = $1 ORDER BY line LIMIT 1",
        )
        .bind(Uuid::from(list))
        .fetch_optional(pool)
        .await?
    });
    row.map(|(first_name, last_name, fields)| {
        Ok(SampleContact {
            first_name,
            last_name,
            fields: serde_json::from_str(&fields)
                .map_err(|err| StoreError::Corrupt(format!("contacts.fields: {err}")))?,
        })
    })
    .transpose()
}
