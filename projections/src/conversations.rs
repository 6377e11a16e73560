//! Read model "conversations": one row per campaign and phone, opened by the
//! campaign's initial message, from `MessageSendClicked` on the recipient
//! streams. Also the send path's lookups: a texter's queue (assigned
//! contacts without a conversation, not opted out) and the campaign facts a
//! click is checked against.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use textbank_domain::campaign::{CampaignStatus, CannedResponse, Question, parse_texting_hours};
use textbank_domain::message::{ClickRecord, MessageKind};
use textbank_domain::recipient::{NO_CARRIER, RecipientEvent};
use textbank_domain::texting_hours::TextingWindow;
use textbank_domain::timezone::ContactZone;
use textbank_domain::{CampaignId, ConversationId, ListId, MemberId, OrgId};
use textbank_store::{Database, StoreError, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

use crate::batch::Batch;
use crate::runner::{ProjectionError, Projector};
use textbank_store::sql::{for_engine, placeholders};

pub struct Conversations;

#[async_trait]
impl Projector for Conversations {
    fn name(&self) -> &'static str {
        "conversations"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["conversations"]
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let mut opened = Vec::new();
        for item in batch.recipient_events("conversations") {
            let (event, parsed) = item?;
            match (parsed, event.metadata.org_id) {
                (RecipientEvent::MessageSendClicked(click), Some(org))
                    if click.evidence.kind == MessageKind::Initial =>
                {
                    opened.push((&**click, Uuid::from(org), event.recorded_at));
                }
                // A first message that never reached any carrier did not
                // message the contact: its conversation goes, so the contact
                // is in its texter's queue again (see the recipient
                // aggregate). Written in log order with the openings.
                (
                    RecipientEvent::MessageSubmitFailed {
                        message_id, code, ..
                    },
                    _,
                ) if code == NO_CARRIER => {
                    open_conversations(tx, &std::mem::take(&mut opened)).await?;
                    let id = Uuid::from(*message_id);
                    on_tx!(tx, |conn| {
                        sqlx::query("DELETE FROM conversations WHERE conversation_id = $1")
                            .bind(id)
                            .execute(conn)
                            .await
                            .map(|_| ())
                            .map_err(StoreError::from)?
                    });
                }
                _ => {}
            }
        }
        open_conversations(tx, &opened).await?;
        Ok(())
    }
}

type Opened<'a> = (&'a ClickRecord, Uuid, DateTime<Utc>);

/// Inserts the conversations the clicks opened: one statement per few
/// hundred, not one per click.
async fn open_conversations(
    tx: &mut StoreTx,
    opened: &[Opened<'_>],
) -> Result<(), ProjectionError> {
    for chunk in opened.chunks(500) {
        let sql = for_engine(
            tx,
            format!(
                "INSERT INTO conversations (conversation_id, org_id, campaign_id, phone, texter_id, started_at)
                 VALUES {} ON CONFLICT DO NOTHING",
                placeholders(chunk.len(), 6)
            ),
        );
        on_tx!(tx, |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for (click, org, started_at) in chunk {
                query = query
                    .bind(Uuid::from(click.conversation_id))
                    .bind(*org)
                    .bind(Uuid::from(click.campaign_id))
                    .bind(click.phone.as_str())
                    .bind(Uuid::from(click.evidence.texter_id))
                    .bind(*started_at);
            }
            query
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(StoreError::from)?
        });
    }
    Ok(())
}

/// A conversation's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    pub phone: String,
    pub texter_id: MemberId,
    pub started_at: DateTime<Utc>,
}

/// One conversation of the org; `None` for another org's, as for a missing one.
pub async fn conversation(
    db: &Database,
    org: OrgId,
    id: ConversationId,
) -> StoreResult<Option<ConversationRow>> {
    let row: Option<(Uuid, String, Uuid, DateTime<Utc>)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT campaign_id, phone, texter_id, started_at FROM conversations
              WHERE org_id = $1 AND conversation_id = $2",
        )
        .bind(Uuid::from(org))
        .bind(Uuid::from(id))
        .fetch_optional(pool)
        .await?
    });
    Ok(
        row.map(|(campaign, phone, texter, started_at)| ConversationRow {
            conversation_id: id,
            campaign_id: CampaignId::from_uuid(campaign),
            phone,
            texter_id: MemberId::from_uuid(texter),
            started_at,
        }),
    )
}

/// What a click and a queue are checked against: the campaign's state,
/// window and current script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendingCampaign {
    pub status: CampaignStatus,
    pub window: TextingWindow,
    pub script_version: u32,
    pub initial_message: String,
    pub canned_responses: Vec<CannedResponse>,
    pub questions: Vec<Question>,
    /// Who the phone is assigned to, when a phone was asked about.
    pub assigned_to: Option<MemberId>,
}

/// The campaign (of `org`) and, if `phone` is given, its assignee for it.
pub async fn sending_campaign(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
    phone: Option<&str>,
) -> StoreResult<Option<SendingCampaign>> {
    type Row = (
        String,
        String,
        String,
        i64,
        String,
        String,
        String,
        Option<Uuid>,
    );
    let row: Option<Row> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT c.status, c.texting_start, c.texting_end, c.script_version, c.initial_message,
                    c.canned_responses, c.questions, cc.texter_id
               FROM campaigns c
               LEFT JOIN campaign_contacts cc ON cc.campaign_id = c.campaign_id AND cc.phone = $3
              WHERE c.org_id = $1 AND c.campaign_id = $2",
        )
        .bind(Uuid::from(org))
        .bind(Uuid::from(campaign))
        .bind(phone.unwrap_or(""))
        .fetch_optional(pool)
        .await?
    });
    let Some((status, start, end, version, initial, canned, questions, texter)) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str, err: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("campaigns.{what} of {campaign}: {err}"))
    };
    Ok(Some(SendingCampaign {
        status: CampaignStatus::parse(&status)
            .ok_or_else(|| corrupt("status", &format!("unknown status {status:?}")))?,
        window: parse_texting_hours(&start, &end).map_err(|err| corrupt("texting_hours", &err))?,
        script_version: u32::try_from(version).map_err(|err| corrupt("script_version", &err))?,
        initial_message: initial,
        canned_responses: serde_json::from_str(&canned)
            .map_err(|err| corrupt("canned_responses", &err))?,
        questions: serde_json::from_str(&questions).map_err(|err| corrupt("questions", &err))?,
        assigned_to: texter.map(MemberId::from_uuid),
    }))
}

/// A contact waiting for the campaign's initial message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedContact {
    pub phone: String,
    pub list_id: ListId,
    pub first_name: String,
    pub last_name: String,
    pub zone: ContactZone,
    pub fields: BTreeMap<String, String>,
}

/// The texter's assigned contacts still waiting for the campaign's first
/// message (no conversation, not opted out), counted per zone
/// (`contacts.zone` JSON): texting hours are checked once per zone.
pub async fn queue_zones(
    db: &Database,
    campaign: CampaignId,
    texter: MemberId,
) -> StoreResult<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT cc.zone, COUNT(*) FROM campaign_contacts cc
              WHERE cc.campaign_id = $1 AND cc.texter_id = $2
                AND NOT EXISTS (SELECT 1 FROM conversations cv
                                 WHERE cv.campaign_id = cc.campaign_id AND cv.phone = cc.phone)
                AND NOT EXISTS (SELECT 1 FROM opt_outs o
                                 WHERE o.org_id = cc.org_id AND o.phone = cc.phone)
              GROUP BY cc.zone",
        )
        .bind(Uuid::from(campaign))
        .bind(Uuid::from(texter))
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(zone, count)| (zone, u64::try_from(count).unwrap_or(0)))
        .collect())
}

/// The texter's next assigned contacts in `zone` (phone order, after
/// `after`) that have no conversation in the campaign and have not opted
/// out.
pub async fn queue_candidates(
    db: &Database,
    campaign: CampaignId,
    texter: MemberId,
    zone: &str,
    after: &str,
    limit: u32,
) -> StoreResult<Vec<QueuedContact>> {
    let rows: Vec<(String, Uuid, String, String, String, String)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT cc.phone, cc.list_id, ct.first_name, ct.last_name, ct.zone, ct.fields
               FROM campaign_contacts cc
               JOIN contacts ct ON ct.list_id = cc.list_id AND ct.line = cc.line
              WHERE cc.campaign_id = $1 AND cc.texter_id = $2 AND cc.zone = $3 AND cc.phone > $4
                AND NOT EXISTS (SELECT 1 FROM conversations cv
                                 WHERE cv.campaign_id = cc.campaign_id AND cv.phone = cc.phone)
                AND NOT EXISTS (SELECT 1 FROM opt_outs o
                                 WHERE o.org_id = cc.org_id AND o.phone = cc.phone)
              ORDER BY cc.phone
              LIMIT $5",
        )
        .bind(Uuid::from(campaign))
        .bind(Uuid::from(texter))
        .bind(zone)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(queued_contact).collect()
}

/// How many of a campaign's contacts `texter` has sent the initial message.
pub async fn texter_sent(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
    texter: MemberId,
) -> StoreResult<u64> {
    let count: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversations
              WHERE org_id = $1 AND texter_id = $2 AND campaign_id = $3",
        )
        .bind(Uuid::from(org))
        .bind(Uuid::from(texter))
        .bind(Uuid::from(campaign))
        .fetch_one(pool)
        .await?
    });
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The contact a campaign's conversation is with (the campaign's list row).
pub async fn conversation_contact(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
    phone: &str,
) -> StoreResult<Option<QueuedContact>> {
    let row: Option<(String, Uuid, String, String, String, String)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT cc.phone, cc.list_id, ct.first_name, ct.last_name, ct.zone, ct.fields
               FROM campaign_contacts cc
               JOIN contacts ct ON ct.list_id = cc.list_id AND ct.line = cc.line
              WHERE cc.org_id = $1 AND cc.campaign_id = $2 AND cc.phone = $3",
        )
        .bind(Uuid::from(org))
        .bind(Uuid::from(campaign))
        .bind(phone)
        .fetch_optional(pool)
        .await?
    });
    row.map(queued_contact).transpose()
}

fn queued_contact(
    (phone, list, first_name, last_name, zone, fields): (
        String,
        Uuid,
        String,
        String,
        String,
        String,
    ),
) -> StoreResult<QueuedContact> {
    let corrupt = |err: serde_json::Error| StoreError::Corrupt(format!("contacts: {err}"));
    Ok(QueuedContact {
        phone,
        list_id: ListId::from_uuid(list),
        first_name,
        last_name,
        zone: serde_json::from_str(&zone).map_err(corrupt)?,
        fields: serde_json::from_str(&fields).map_err(corrupt)?,
    })
}
