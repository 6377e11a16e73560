//! Read model "campaigns": campaigns with their current script, every script
//! version, and `campaign_contacts` — the union of a campaign's lists, one
//! row per phone, with the texter it is assigned to — from the `campaign-*`
//! streams. Contacts are copied from the lists read model when lists are
//! attached. Each campaign row records the stream version it reflects, so the
//! assignment command can pick phones from a read model exactly as current as
//! the version it appends under.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use textbank_domain::campaign::{CampaignEvent, CampaignStatus};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::{CampaignId, ListId, MemberId, OrgId};
use textbank_store::{Database, StoreError, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

use crate::batch::Batch;
use crate::contact_copies::{self, ContactCopyProgress};
use crate::runner::{ProjectionError, Projector, aggregate_event};

pub struct Campaigns;

#[async_trait]
impl Projector for Campaigns {
    fn name(&self) -> &'static str {
        "campaigns"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "campaigns",
            "campaign_scripts",
            "campaign_contacts",
            "campaign_list_copies",
        ]
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for event in batch.events() {
            let Some((campaign, parsed)) =
                aggregate_event::<CampaignEvent>("campaigns", "campaign-", event)?
            else {
                continue;
            };
            let fail = |reason: String| ProjectionError::Apply {
                projector: "campaigns",
                position: event.position,
                reason,
            };
            if let Some(CampaignEvent::ListsAttached { list_ids }) = &parsed {
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
            if let Some(campaign_event) = &parsed {
                if needs_every_contact(campaign_event) {
                    contact_copies::finish(tx, campaign).await?;
                }
                apply_one(tx, campaign, campaign_event, event.recorded_at).await?;
            }
            // Every event of the stream counts, even one of a type this code
            // does not know: assignment waits for this exact version.
            set_stream_version(tx, campaign, event.version).await?;
        }
        Ok(())
    }
}

/// Events applied only once the campaign's contacts are all in place:
/// assignments name copied phones, and launching opens every contact.
fn needs_every_contact(event: &CampaignEvent) -> bool {
    matches!(
        event,
        CampaignEvent::ContactsAssigned { .. }
            | CampaignEvent::ContactsReleased { .. }
            | CampaignEvent::CampaignLaunched {}
            | CampaignEvent::CampaignResumed {}
    )
}

async fn set_stream_version(tx: &mut StoreTx, campaign: Uuid, version: u64) -> StoreResult<()> {
    let version = i64::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("campaign {campaign}: version {version}")))?;
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE campaigns SET stream_version = $1 WHERE campaign_id = $2")
            .bind(version)
            .bind(campaign)
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

/// Sets `texter_id` of the phones: to `assign` for those still unassigned,
/// or back to NULL for those held by `release`. The conditions make each
/// event a transition, so a replay can never move a contact that another
/// texter holds.
async fn set_texter(
    tx: &mut StoreTx,
    campaign: Uuid,
    texter: Uuid,
    phones: &[PhoneNumber],
    assign: bool,
) -> StoreResult<()> {
    // Domain events carry at most PHONES_PER_EVENT phones; chunk anyway so
    // no statement exceeds the engines' bind limits.
    for chunk in phones.chunks(1_000) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = if assign {
            format!(
                "UPDATE campaign_contacts SET texter_id = $1
                  WHERE campaign_id = $2 AND texter_id IS NULL AND phone IN ({})",
                placeholders.join(", ")
            )
        } else {
            format!(
                "UPDATE campaign_contacts SET texter_id = NULL
                  WHERE texter_id = $1 AND campaign_id = $2 AND phone IN ({})",
                placeholders.join(", ")
            )
        };
        on_tx!(tx, |conn| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(texter)
                .bind(campaign);
            for phone in chunk {
                query = query.bind(phone.as_str());
            }
            query.execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
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
            assignment_batch_size,
            batch_rules,
            ..
        } => {
            let questions = to_json(questions)?;
            on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO campaigns (campaign_id, org_id, name, status, questions, texting_start, texting_end,
                                            list_ids, script_version, initial_message, canned_responses,
                                            created_at, updated_at, assignment_batch_size,
                                            max_contacts_held, max_replies_waiting)
                     VALUES ($1, $2, $3, 'draft', $4, $5, $6, '[]', 0, '', '[]', $7, $7, $8, $9, $10)
                     ON CONFLICT DO NOTHING",
                )
                .bind(campaign)
                .bind(Uuid::from(*org_id))
                .bind(name)
                .bind(&questions)
                .bind(hhmm(texting_hours.start()))
                .bind(hhmm(texting_hours.end()))
                .bind(at)
                .bind(i64::from(*assignment_batch_size))
                .bind(batch_rules.max_contacts_held.map(i64::from))
                .bind(batch_rules.max_replies_waiting.map(i64::from))
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
        CampaignEvent::SettingsChanged {
            name,
            texting_hours,
            assignment_batch_size,
            batch_rules,
        } => on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE campaigns SET name = $1, texting_start = $2, texting_end = $3,
                                      assignment_batch_size = $4, updated_at = $5,
                                      max_contacts_held = $7, max_replies_waiting = $8
                  WHERE campaign_id = $6",
            )
            .bind(name)
            .bind(hhmm(texting_hours.start()))
            .bind(hhmm(texting_hours.end()))
            .bind(i64::from(*assignment_batch_size))
            .bind(at)
            .bind(campaign)
            .bind(batch_rules.max_contacts_held.map(i64::from))
            .bind(batch_rules.max_replies_waiting.map(i64::from))
            .execute(conn)
            .await
            .map(|_| ())?
        }),
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
        CampaignEvent::ContactsAssigned { texter_id, phones } => {
            set_texter(tx, campaign, Uuid::from(*texter_id), phones, true).await?
        }
        CampaignEvent::ContactsReleased { texter_id, phones } => {
            set_texter(tx, campaign, Uuid::from(*texter_id), phones, false).await?
        }
    }
    Ok(())
}

/// Records the lists and copies their contacts (see [`contact_copies`]),
/// list by list in order, so for a phone on two lists the first list's row
/// is the one kept.
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
    let new: Vec<ListId> = list_ids
        .iter()
        .filter(|list| !attached.contains(list))
        .copied()
        .collect();
    contact_copies::attach(tx, campaign, &new).await?;
    attached.extend(new);
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TextingHoursView {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScriptView {
    pub version: u32,
    pub initial_message: String,
    pub canned_responses: Value,
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    pub campaign_id: CampaignId,
    pub name: String,
    pub status: String,
    pub questions: Value,
    pub texting_hours: TextingHoursView,
    pub list_ids: Vec<ListId>,
    pub script: ScriptView,
    /// Contacts a texter gets per self-service request.
    pub assignment_batch_size: u32,
    /// The most contacts a texter may hold that still wait for their first
    /// message; `null`: no limit.
    pub max_contacts_held: Option<u32>,
    /// A texter with more conversations than this needing a reply gets no
    /// new batch until they answer; `null`: no such rule.
    pub max_replies_waiting: Option<u32>,
    /// Contacts the campaign can text (see [`reachable_contact_count`]).
    pub contacts: u64,
    /// How far the copy of large lists' contacts into the campaign has got;
    /// `null` once every contact is in place. Until then `contacts` counts
    /// those copied so far, and the campaign cannot launch or be assigned.
    pub contacts_copying: Option<ContactCopyProgress>,
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
    i64,
    Option<i64>,
    Option<i64>,
);

const CAMPAIGN_COLUMNS: &str = "SELECT campaign_id, name, status, questions, texting_start, texting_end, list_ids, \
     script_version, initial_message, canned_responses, created_at, updated_at, assignment_batch_size, \
     max_contacts_held, max_replies_waiting FROM campaigns";

async fn view(db: &Database, row: CampaignRow) -> StoreResult<CampaignView> {
    fn json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
        serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("campaigns: {err}")))
    }
    let campaign_id = CampaignId::from_uuid(row.0);
    // Read before the count: a copy seen finished here is complete in the
    // count read after it (the other order could pair a finished copy with
    // a count taken while it ran).
    let contacts_copying = contact_copies::progress(db, campaign_id).await?;
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
        assignment_batch_size: u32::try_from(row.12).map_err(|_| {
            StoreError::Corrupt(format!("campaigns.assignment_batch_size: {}", row.12))
        })?,
        max_contacts_held: row.13.and_then(|max| u32::try_from(max).ok()),
        max_replies_waiting: row.14.and_then(|max| u32::try_from(max).ok()),
        contacts: reachable_contact_count(db, campaign_id).await?,
        contacts_copying,
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

/// The campaign's contacts that may be texted: its lists' contacts (already
/// deduplicated) minus the numbers opted out of the organization (the
/// `opt_outs` read model).
const REACHABLE_CONTACTS: &str = "FROM campaign_contacts WHERE campaign_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM opt_outs \
                      WHERE opt_outs.org_id = campaign_contacts.org_id \
                        AND opt_outs.phone = campaign_contacts.phone)";

/// How many contacts the campaign can text (see [`REACHABLE_CONTACTS`]).
pub async fn reachable_contact_count(db: &Database, campaign: CampaignId) -> StoreResult<u64> {
    let count: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) {REACHABLE_CONTACTS}"
        )))
        .bind(Uuid::from(campaign))
        .fetch_one(pool)
        .await?
    });
    Ok(count.max(0) as u64)
}

/// The campaign-stream version the campaign's row reflects; `None` for a
/// campaign the read model does not have (yet).
pub async fn stream_version(db: &Database, campaign: CampaignId) -> StoreResult<Option<u64>> {
    let version: Option<Option<i64>> = on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT stream_version FROM campaigns WHERE campaign_id = $1")
            .bind(Uuid::from(campaign))
            .fetch_optional(pool)
            .await?
    });
    Ok(version.flatten().and_then(|v| u64::try_from(v).ok()))
}

fn phones(rows: Vec<String>) -> StoreResult<Vec<PhoneNumber>> {
    rows.iter()
        .map(|phone| {
            PhoneNumber::from_e164(phone)
                .map_err(|err| StoreError::Corrupt(format!("campaign_contacts.phone: {err}")))
        })
        .collect()
}

/// The distinct zones (`contacts.zone` JSON) of the campaign's unassigned
/// contacts, found by a loose index scan: one index probe per zone, however
/// many contacts each has.
pub async fn unassigned_zones(db: &Database, campaign: CampaignId) -> StoreResult<Vec<String>> {
    let zones: Vec<Option<String>> = on_reader!(db, |pool| {
        sqlx::query_scalar(
            "WITH RECURSIVE z(zone) AS (
                 SELECT MIN(zone) FROM campaign_contacts
                  WHERE campaign_id = $1 AND texter_id IS NULL
                 UNION ALL
                 SELECT (SELECT MIN(zone) FROM campaign_contacts
                          WHERE campaign_id = $1 AND texter_id IS NULL AND zone > z.zone)
                   FROM z WHERE z.zone IS NOT NULL
             )
             SELECT zone FROM z",
        )
        .bind(Uuid::from(campaign))
        .fetch_all(pool)
        .await?
    });
    Ok(zones.into_iter().flatten().collect())
}

/// Up to `limit` reachable, unassigned phones of the campaign in `zone`, in
/// phone order (a deterministic choice within the zone).
pub async fn unassigned_phones_in_zone(
    db: &Database,
    campaign: CampaignId,
    zone: &str,
    limit: u32,
) -> StoreResult<Vec<PhoneNumber>> {
    let rows: Vec<String> = on_reader!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT phone {REACHABLE_CONTACTS} AND texter_id IS NULL AND zone = $2
              ORDER BY phone LIMIT $3"
        )))
        .bind(Uuid::from(campaign))
        .bind(zone)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    phones(rows)
}

/// Up to `limit` (all for `None`) of the texter's phones that may go back to
/// the pool, in phone order. Every assigned contact qualifies today; once
/// messages exist, contacts already texted must stay with their texter and
/// are to be excluded here.
pub async fn releasable_phones(
    db: &Database,
    campaign: CampaignId,
    texter: MemberId,
    limit: Option<u32>,
) -> StoreResult<Vec<PhoneNumber>> {
    let rows: Vec<String> = on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT phone FROM campaign_contacts WHERE campaign_id = $1 AND texter_id = $2
              ORDER BY phone LIMIT $3",
        )
        .bind(Uuid::from(campaign))
        .bind(Uuid::from(texter))
        .bind(limit.map_or(i64::MAX, i64::from))
        .fetch_all(pool)
        .await?
    });
    phones(rows)
}

/// Who holds how many of a campaign's contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentCounts {
    /// Per texter, in texter id order.
    pub assigned: Vec<(MemberId, u64)>,
    /// Reachable contacts nobody holds yet.
    pub unassigned: u64,
}

pub async fn assignment_counts(
    db: &Database,
    campaign: CampaignId,
) -> StoreResult<AssignmentCounts> {
    let rows: Vec<(Uuid, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT texter_id, COUNT(*) FROM campaign_contacts
              WHERE campaign_id = $1 AND texter_id IS NOT NULL
              GROUP BY texter_id ORDER BY texter_id",
        )
        .bind(Uuid::from(campaign))
        .fetch_all(pool)
        .await?
    });
    let unassigned: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) {REACHABLE_CONTACTS} AND texter_id IS NULL"
        )))
        .bind(Uuid::from(campaign))
        .fetch_one(pool)
        .await?
    });
    Ok(AssignmentCounts {
        assigned: rows
            .into_iter()
            .map(|(texter, count)| (MemberId::from_uuid(texter), count.max(0) as u64))
            .collect(),
        unassigned: unassigned.max(0) as u64,
    })
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
