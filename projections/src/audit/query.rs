//! Queries of the audit read model: message search (a page, one message, or
//! every row streamed for the export), refused attempts with counts per
//! reason, a texter's clicks for the cadence analysis, what the org's lists
//! and campaigns hold of one phone, and which event streams are the org's.
//!
//! Every search orders by (occurred_at, position) and filters on an index
//! prefix of that order. List provenance, names and early delivery reports
//! are joined here, at query time, so the projector writes each message
//! once and never looks anything up.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{Database as SqlxDatabase, Encode, QueryBuilder, Type};
use textbank_domain::message::DeliveryStatus;
use textbank_domain::{ApiKeyId, CampaignId, ConversationId, ListId, MemberId, MessageId, OrgId};
use textbank_store::{Database, StoreError, StoreResult, on_reader};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::fold::delivery_status;

/// What to search messages by; the org is always the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFilter {
    pub org: OrgId,
    /// E.164.
    pub phone: Option<String>,
    pub texter: Option<MemberId>,
    pub campaign: Option<CampaignId>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

impl MessageFilter {
    pub fn org(org: OrgId) -> Self {
        Self {
            org,
            phone: None,
            texter: None,
            campaign: None,
            from: None,
            to: None,
        }
    }
}

/// Where a page ends: the sort key of its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub occurred_at: DateTime<Utc>,
    pub position: i64,
}

/// One message as the audit shows it (JSON and CSV). Outbound messages are
/// a texter's click (`origin: texter_click`, with all its evidence) or an
/// automated answer to the voter (`origin: automated_reply`, no click);
/// inbound ones are the voter's texts (`origin: voter`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MessageRow {
    pub message_id: MessageId,
    /// The log position of the event that created it.
    pub position: u64,
    pub occurred_at: DateTime<Utc>,
    pub direction: Option<String>,
    /// initial | reply | opt_out_confirmation | opt_in_confirmation | help | inbound
    pub kind: Option<String>,
    /// texter_click | automated_reply | voter
    pub origin: &'static str,
    /// Said of rows that no person clicked.
    pub note: Option<&'static str>,
    pub phone: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub texter_id: Option<MemberId>,
    pub texter_name: Option<String>,
    pub campaign_id: Option<CampaignId>,
    pub campaign_name: Option<String>,
    pub conversation_id: Option<ConversationId>,
    pub body_sha256: Option<String>,
    pub segments: Option<i64>,
    pub script_version: Option<i64>,
    pub presented_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub display_to_click_ms: Option<i64>,
    pub key_id: Option<ApiKeyId>,
    /// Who minted the API key behind the click (from the directory): a key
    /// bound to a texter may have been issued by someone else.
    pub key_issued_by_key_id: Option<ApiKeyId>,
    pub key_issued_by_member_id: Option<MemberId>,
    pub key_issued_by_name: Option<String>,
    pub click_token_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub list_id: Option<ListId>,
    pub list_name: Option<String>,
    pub list_source: Option<String>,
    pub list_consent_basis: Option<String>,
    /// Opt-out state when it was sent; `None`: not checked (HELP answers).
    pub opted_out_at_send: Option<bool>,
    /// How many events of the number's stream that opt-out check read:
    /// every one before the click (0 for a number never texted).
    pub opt_out_checked_events: Option<i64>,
    pub hours_allowed: Option<bool>,
    /// The recipient's wall clock at the click, with its UTC offset.
    pub recipient_local_time: Option<String>,
    pub recipient_time_zone: Option<String>,
    /// zip | area_code | unknown
    pub time_zone_source: Option<String>,
    pub texting_window: Option<String>,
    /// Inbound: the keyword the text matched.
    pub keyword: Option<String>,
    /// Automated: the carrier id of the voter's text it answers.
    pub in_reply_to: Option<String>,
    pub carrier: Option<String>,
    pub carrier_message_id: Option<String>,
    /// started | submitted | failed | unknown | cancelled (outbound).
    pub dispatch_status: Option<String>,
    pub attempts: Option<i64>,
    pub delivery_status: Option<&'static str>,
    /// The carrier's delivery error code, else the submission's.
    pub error_code: Option<String>,
    pub submit_error: Option<String>,
    /// The final word on the message: its delivery status, else how far
    /// dispatch got ("pending" before it started); inbound: "received".
    pub status: String,
    /// The log positions of every event of this message, in order.
    #[serde(skip)]
    pub positions: Vec<u64>,
}

#[derive(sqlx::FromRow)]
struct RawMessage {
    message_id: Uuid,
    phone: String,
    position: i64,
    occurred_at: DateTime<Utc>,
    positions: String,
    direction: Option<String>,
    kind: Option<String>,
    automated: Option<bool>,
    texter_id: Option<Uuid>,
    texter_name: Option<String>,
    campaign_id: Option<Uuid>,
    campaign_name: Option<String>,
    conversation_id: Option<Uuid>,
    list_id: Option<Uuid>,
    list_name: Option<String>,
    list_source: Option<String>,
    list_consent_basis: Option<String>,
    key_id: Option<Uuid>,
    key_issued_by_key: Option<Uuid>,
    key_issued_by_member: Option<Uuid>,
    key_issued_by_name: Option<String>,
    body_sha256: Option<String>,
    segments: Option<i64>,
    script_version: Option<i64>,
    token_id: Option<Uuid>,
    presented_at: Option<DateTime<Utc>>,
    clicked_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    display_to_click_ms: Option<i64>,
    ip: Option<String>,
    user_agent: Option<String>,
    checked_events: Option<i64>,
    opted_out: Option<bool>,
    hours_allowed: Option<bool>,
    local_time: Option<String>,
    time_zone: Option<String>,
    zone_source: Option<String>,
    hours_window: Option<String>,
    keyword: Option<String>,
    in_reply_to: Option<String>,
    carrier: Option<String>,
    carrier_message_id: Option<String>,
    our_number: Option<String>,
    dispatch_status: Option<String>,
    attempts: Option<i64>,
    submit_error_code: Option<String>,
    submit_error: Option<String>,
    delivery_rank: Option<i64>,
    delivery_error_code: Option<String>,
    early_rank: Option<i64>,
    early_error_code: Option<String>,
    early_positions: Option<String>,
}

const MESSAGE_COLUMNS: &str =
    "SELECT m.message_id, m.phone, m.position, m.occurred_at, m.positions,
        m.direction, m.kind, m.automated, m.texter_id, tm.name AS texter_name, m.campaign_id,
        k.name AS campaign_name, m.conversation_id, COALESCE(m.list_id, c.list_id) AS list_id,
        l.name AS list_name, l.source AS list_source, l.consent_basis AS list_consent_basis,
        m.key_id, ak.issued_by_key AS key_issued_by_key,
        ak.issued_by_member AS key_issued_by_member, im.name AS key_issued_by_name, m.body_sha256, m.segments, m.script_version, m.token_id, m.presented_at,
        m.clicked_at, m.received_at, m.display_to_click_ms, m.ip, m.user_agent, m.checked_events,
        m.opted_out, m.hours_allowed, m.local_time, m.time_zone, m.zone_source, m.hours_window,
        m.keyword, m.in_reply_to, m.carrier, m.carrier_message_id, m.our_number, m.dispatch_status,
        m.attempts, m.submit_error_code, m.submit_error, m.delivery_rank, m.delivery_error_code,
        u.delivery_rank AS early_rank, u.delivery_error_code AS early_error_code,
        u.positions AS early_positions";

const MESSAGE_JOINS: &str = "
   -- Replies and automated texts take the list of their conversation's
   -- initial message, whose id is the conversation's.
   LEFT JOIN audit_messages c ON c.message_id = m.conversation_id
   LEFT JOIN lists l ON l.list_id = COALESCE(m.list_id, c.list_id)
   LEFT JOIN members tm ON tm.member_id = m.texter_id
   LEFT JOIN api_keys ak ON ak.key_id = m.key_id
   LEFT JOIN members im ON im.member_id = ak.issued_by_member
   LEFT JOIN campaigns k ON k.campaign_id = m.campaign_id
   LEFT JOIN audit_unmatched_reports u
          ON m.direction = 'outbound' AND u.org_id = m.org_id
         AND u.carrier_message_id = m.carrier_message_id AND u.phone = m.phone";

fn positions(text: &str) -> Vec<u64> {
    text.split(',').filter_map(|p| p.parse().ok()).collect()
}

/// The status after a report that came before the submission (`early`),
/// then the reports attached to the message (`matched`), as the recipient
/// stream folds them: the early one is applied first, and a final status
/// never changes.
fn combine(early: Option<i64>, matched: Option<i64>) -> Option<i64> {
    match (early, matched) {
        (Some(early), _) if early >= 3 => Some(early),
        (_, Some(matched)) if matched >= 3 => Some(matched),
        (early, matched) => early.max(matched),
    }
}

impl RawMessage {
    fn into_row(self) -> MessageRow {
        let rank = combine(self.early_rank, self.delivery_rank);
        let delivery = rank.and_then(delivery_status);
        let delivery_error = if rank.is_some() && rank == self.early_rank {
            self.early_error_code.or(self.delivery_error_code)
        } else {
            self.delivery_error_code
        };
        let inbound = self.direction.as_deref() == Some("inbound");
        let (origin, note) = match (inbound, self.automated) {
            (true, _) => ("voter", None),
            (false, Some(true)) => (
                "automated_reply",
                Some("automated answer to the voter's own text; no person clicked to send it"),
            ),
            (false, _) => ("texter_click", None),
        };
        let (from_number, to_number) = if inbound {
            (Some(self.phone.clone()), self.our_number)
        } else {
            (self.our_number, Some(self.phone.clone()))
        };
        let status = match (inbound, delivery, self.dispatch_status.as_deref()) {
            (true, _, _) => "received".to_owned(),
            (false, Some(status), _) => status.as_str().to_owned(),
            (false, None, Some(dispatch)) => dispatch.to_owned(),
            (false, None, None) => "pending".to_owned(),
        };
        let mut all_positions = positions(&self.positions);
        if let Some(early) = &self.early_positions {
            all_positions.extend(positions(early));
            all_positions.sort_unstable();
        }
        MessageRow {
            message_id: MessageId::from_uuid(self.message_id),
            position: u64::try_from(self.position).unwrap_or(0),
            occurred_at: self.occurred_at,
            direction: self.direction,
            kind: self.kind,
            origin,
            note,
            phone: self.phone,
            from_number,
            to_number,
            texter_id: self.texter_id.map(MemberId::from_uuid),
            texter_name: self.texter_name,
            campaign_id: self.campaign_id.map(CampaignId::from_uuid),
            campaign_name: self.campaign_name,
            conversation_id: self.conversation_id.map(ConversationId::from_uuid),
            body_sha256: self.body_sha256,
            segments: self.segments,
            script_version: self.script_version,
            presented_at: self.presented_at,
            clicked_at: self.clicked_at,
            received_at: self.received_at,
            display_to_click_ms: self.display_to_click_ms,
            key_id: self.key_id.map(ApiKeyId::from_uuid),
            key_issued_by_key_id: self.key_issued_by_key.map(ApiKeyId::from_uuid),
            key_issued_by_member_id: self.key_issued_by_member.map(MemberId::from_uuid),
            key_issued_by_name: self.key_issued_by_name,
            click_token_id: self.token_id,
            ip: self.ip,
            user_agent: self.user_agent,
            list_id: self.list_id.map(ListId::from_uuid),
            list_name: self.list_name,
            list_source: self.list_source,
            list_consent_basis: self.list_consent_basis,
            opted_out_at_send: self.opted_out,
            opt_out_checked_events: self.checked_events,
            hours_allowed: self.hours_allowed,
            recipient_local_time: self.local_time,
            recipient_time_zone: self.time_zone,
            time_zone_source: self.zone_source,
            texting_window: self.hours_window,
            keyword: self.keyword,
            in_reply_to: self.in_reply_to,
            carrier: self.carrier,
            carrier_message_id: self.carrier_message_id,
            dispatch_status: self.dispatch_status,
            attempts: self.attempts,
            delivery_status: delivery.map(DeliveryStatus::as_str),
            error_code: delivery_error.or(self.submit_error_code),
            submit_error: self.submit_error,
            status,
            positions: all_positions,
        }
    }
}

/// The most message ids of one phone looked up by id; a number with more
/// (never seen in practice) is searched by scanning instead.
const MAX_PHONE_IDS: usize = 10_000;

/// The messages of one number, as its recipient stream names them: the
/// phone's own index, the log's (stream_id, version), so the audit table
/// needs none. `None` when there are too many to list.
async fn phone_message_ids(
    db: &Database,
    org: OrgId,
    phone: &str,
) -> StoreResult<Option<Vec<Uuid>>> {
    let stream = format!("recipient-{org}-{phone}");
    let rows: Vec<(Json<serde_json::Value>,)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT data FROM events WHERE stream_id = $1
                AND event_type IN ('MessageSendClicked', 'AutoReplyQueued', 'ReplyReceived')",
        )
        .bind(&stream)
        .fetch_all(pool)
        .await?
    });
    if rows.len() > MAX_PHONE_IDS {
        return Ok(None);
    }
    rows.into_iter()
        .map(|(Json(data),)| {
            data.get("message_id")
                .and_then(serde_json::Value::as_str)
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("a message of {stream} has no id")))
        })
        .collect::<StoreResult<_>>()
        .map(Some)
}

/// What a message search looks up before it runs: the phone's message ids.
struct Resolved {
    phone_ids: Option<Vec<Uuid>>,
}

impl Resolved {
    async fn of(db: &Database, filter: &MessageFilter) -> StoreResult<Self> {
        let phone_ids = match &filter.phone {
            Some(phone) => phone_message_ids(db, filter.org, phone).await?,
            None => None,
        };
        Ok(Self { phone_ids })
    }

    /// A phone filter that matches nothing: no query needed.
    fn is_empty(&self) -> bool {
        self.phone_ids.as_ref().is_some_and(Vec::is_empty)
    }
}

/// The search for `filter` after `after`, ordered, without a limit.
fn message_query<DB>(
    filter: &MessageFilter,
    resolved: &Resolved,
    after: Option<&Cursor>,
) -> QueryBuilder<DB>
where
    DB: SqlxDatabase,
    Uuid: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: for<'q> Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
{
    let mut query = QueryBuilder::new(MESSAGE_COLUMNS);
    query.push(" FROM ");
    if let Some(ids) = &resolved.phone_ids {
        // The phone's few messages are looked up by id. A CROSS JOIN fixes
        // the join order on SQLite, whose planner would otherwise walk the
        // time index (it yields the ORDER BY) across every message.
        query.push("(VALUES ");
        let mut list = query.separated(", ");
        for id in ids {
            list.push("(");
            list.push_bind_unseparated(*id);
            list.push_unseparated(")");
        }
        query.push(") AS ids CROSS JOIN ");
    }
    query.push("audit_messages m");
    query.push(MESSAGE_JOINS);
    query.push(" WHERE m.org_id = ");
    query.push_bind(Uuid::from(filter.org));
    if resolved.phone_ids.is_some() {
        query.push(" AND m.message_id = ids.column1");
    }
    if let Some(phone) = &filter.phone {
        query.push(" AND m.phone = ").push_bind(phone.clone());
    }
    if let Some(texter) = filter.texter {
        query
            .push(" AND m.texter_id = ")
            .push_bind(Uuid::from(texter));
    }
    if let Some(campaign) = filter.campaign {
        query
            .push(" AND m.campaign_id = ")
            .push_bind(Uuid::from(campaign));
    }
    if let Some(from) = filter.from {
        query.push(" AND m.occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND m.occurred_at < ").push_bind(to);
    }
    if let Some(after) = after {
        query
            .push(" AND (m.occurred_at, m.position) > (")
            .push_bind(after.occurred_at)
            .push(", ")
            .push_bind(after.position)
            .push(")");
    }
    query.push(" ORDER BY m.occurred_at, m.position");
    query
}

/// Up to `limit` messages matching `filter` after `after`, oldest first.
pub async fn message_page(
    db: &Database,
    filter: &MessageFilter,
    after: Option<&Cursor>,
    limit: u32,
) -> StoreResult<Vec<MessageRow>> {
    let resolved = Resolved::of(db, filter).await?;
    if resolved.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<RawMessage> = on_reader!(db, |pool| {
        let mut query = message_query(filter, &resolved, after);
        query.push(" LIMIT ").push_bind(i64::from(limit));
        query.build_query_as().fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(RawMessage::into_row).collect())
}

/// One message of the org; `None` for another org's, as for a missing one.
pub async fn message(
    db: &Database,
    org: OrgId,
    message: MessageId,
) -> StoreResult<Option<MessageRow>> {
    let row: Option<RawMessage> = on_reader!(db, |pool| {
        let mut query = QueryBuilder::new(MESSAGE_COLUMNS);
        query
            .push(" FROM audit_messages m")
            .push(MESSAGE_JOINS)
            .push(" WHERE m.org_id = ")
            .push_bind(Uuid::from(org))
            .push(" AND m.message_id = ")
            .push_bind(Uuid::from(message));
        query.build_query_as().fetch_optional(pool).await?
    });
    Ok(row.map(RawMessage::into_row))
}

/// Rows handed over at a time while exporting: one channel message (and
/// one wake-up of the reader) per slice instead of per row.
const EXPORT_SLICE: usize = 64;

/// Streams every message matching `filter`, oldest first, into `rows` in
/// slices, off one database cursor (`fetch`): the channel's bound is all
/// that is ever in memory. Stops early, without error, once the receiver is
/// gone. Returns how many rows were sent.
pub async fn export_rows(
    db: &Database,
    filter: &MessageFilter,
    rows: &mpsc::Sender<StoreResult<Vec<MessageRow>>>,
) -> StoreResult<u64> {
    use futures_util::TryStreamExt;
    let resolved = Resolved::of(db, filter).await?;
    if resolved.is_empty() {
        return Ok(0);
    }
    let mut sent = 0;
    let mut slice = Vec::with_capacity(EXPORT_SLICE);
    on_reader!(db, |pool| {
        let mut query = message_query(filter, &resolved, None);
        let mut stream = query.build_query_as::<RawMessage>().fetch(pool);
        while let Some(raw) = stream.try_next().await? {
            slice.push(raw.into_row());
            if slice.len() == EXPORT_SLICE {
                let full = std::mem::replace(&mut slice, Vec::with_capacity(EXPORT_SLICE));
                if rows.send(Ok(full)).await.is_err() {
                    return Ok(sent);
                }
                sent += EXPORT_SLICE as u64;
            }
        }
    });
    let last = slice.len() as u64;
    if last > 0 && rows.send(Ok(slice)).await.is_ok() {
        sent += last;
    }
    Ok(sent)
}

/// What to search refused attempts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedFilter {
    pub org: OrgId,
    /// E.164.
    pub phone: Option<String>,
    pub texter: Option<MemberId>,
    pub campaign: Option<CampaignId>,
    /// A `BlockReason` code.
    pub reason: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl BlockedFilter {
    pub fn org(org: OrgId) -> Self {
        Self {
            org,
            phone: None,
            texter: None,
            campaign: None,
            reason: None,
            from: None,
            to: None,
        }
    }
}

/// One refused send attempt.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BlockedRow {
    pub attempt_id: Uuid,
    #[serde(skip)]
    pub position_raw: i64,
    pub occurred_at: DateTime<Utc>,
    pub reason: String,
    pub detail: String,
    pub kind: String,
    pub texter_id: Uuid,
    pub key_id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub phone: Option<String>,
    pub click_token_id: Option<Uuid>,
    pub presented_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub hours_allowed: Option<bool>,
    pub recipient_local_time: Option<String>,
    pub recipient_time_zone: Option<String>,
    pub time_zone_source: Option<String>,
    pub texting_window: Option<String>,
}

impl BlockedRow {
    /// The log position of the `SendBlocked` event.
    pub fn position(&self) -> u64 {
        u64::try_from(self.position_raw).unwrap_or(0)
    }
}

const BLOCKED_SELECT: &str = "SELECT attempt_id, position AS position_raw, occurred_at, reason,
        detail, kind, texter_id, key_id, campaign_id, conversation_id, phone,
        token_id AS click_token_id, presented_at, clicked_at, received_at, ip, user_agent,
        hours_allowed, local_time AS recipient_local_time, time_zone AS recipient_time_zone,
        zone_source AS time_zone_source, hours_window AS texting_window
   FROM audit_blocked WHERE org_id = ";

fn push_blocked_filter<DB>(query: &mut QueryBuilder<DB>, filter: &BlockedFilter)
where
    DB: SqlxDatabase,
    Uuid: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: for<'q> Encode<'q, DB> + Type<DB>,
{
    query.push_bind(Uuid::from(filter.org));
    if let Some(phone) = &filter.phone {
        query.push(" AND phone = ").push_bind(phone.clone());
    }
    if let Some(texter) = filter.texter {
        query
            .push(" AND texter_id = ")
            .push_bind(Uuid::from(texter));
    }
    if let Some(campaign) = filter.campaign {
        query
            .push(" AND campaign_id = ")
            .push_bind(Uuid::from(campaign));
    }
    if let Some(reason) = &filter.reason {
        query.push(" AND reason = ").push_bind(reason.clone());
    }
    if let Some(from) = filter.from {
        query.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        query.push(" AND occurred_at < ").push_bind(to);
    }
}

/// Up to `limit` refused attempts matching `filter` after `after`, oldest first.
pub async fn blocked_page(
    db: &Database,
    filter: &BlockedFilter,
    after: Option<&Cursor>,
    limit: u32,
) -> StoreResult<Vec<BlockedRow>> {
    Ok(on_reader!(db, |pool| {
        let mut query = QueryBuilder::new(BLOCKED_SELECT);
        push_blocked_filter(&mut query, filter);
        if let Some(after) = after {
            query
                .push(" AND (occurred_at, position) > (")
                .push_bind(after.occurred_at)
                .push(", ")
                .push_bind(after.position)
                .push(")");
        }
        query
            .push(" ORDER BY occurred_at, position LIMIT ")
            .push_bind(i64::from(limit));
        query.build_query_as().fetch_all(pool).await?
    }))
}

/// How many refused attempts match `filter`, per reason code.
pub async fn blocked_counts(
    db: &Database,
    filter: &BlockedFilter,
) -> StoreResult<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = on_reader!(db, |pool| {
        let mut query =
            QueryBuilder::new("SELECT reason, COUNT(*) FROM audit_blocked WHERE org_id = ");
        push_blocked_filter(&mut query, filter);
        query.push(" GROUP BY reason ORDER BY reason");
        query.build_query_as().fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(reason, count)| (reason, u64::try_from(count).unwrap_or(0)))
        .collect())
}

/// One click of a texter, for the cadence analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CadenceClick {
    pub received_at: DateTime<Utc>,
    pub display_to_click_ms: Option<i64>,
}

/// Every click of `texter` (initial messages and replies they sent), in the
/// order the server received them.
pub async fn cadence_clicks(
    db: &Database,
    org: OrgId,
    texter: MemberId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> StoreResult<Vec<CadenceClick>> {
    let rows: Vec<(Option<DateTime<Utc>>, Option<i64>)> = on_reader!(db, |pool| {
        let mut query = QueryBuilder::new(
            "SELECT m.received_at, m.display_to_click_ms FROM audit_messages m WHERE m.org_id = ",
        );
        query
            .push_bind(Uuid::from(org))
            .push(" AND m.texter_id = ")
            .push_bind(Uuid::from(texter))
            .push(" AND m.kind IN ('initial', 'reply')");
        if let Some(from) = from {
            query.push(" AND m.occurred_at >= ").push_bind(from);
        }
        if let Some(to) = to {
            query.push(" AND m.occurred_at < ").push_bind(to);
        }
        query.build_query_as().fetch_all(pool).await?
    });
    let mut clicks: Vec<CadenceClick> = rows
        .into_iter()
        .filter_map(|(received_at, display_to_click_ms)| {
            Some(CadenceClick {
                received_at: received_at?,
                display_to_click_ms,
            })
        })
        .collect();
    clicks.sort_by_key(|click| click.received_at);
    Ok(clicks)
}

/// A list of the org that holds the phone, with the row it came from.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhoneList {
    pub list_id: ListId,
    pub name: String,
    pub source: String,
    pub consent_basis: String,
    pub uploaded_by: serde_json::Value,
    pub uploaded_at: DateTime<Utc>,
    pub file_sha256: String,
    pub status: String,
    /// The row in the uploaded file (the header is row 1).
    pub line: u64,
    pub first_name: String,
    pub last_name: String,
}

/// Every list upload of the org that contained `phone` (E.164).
///
/// The contacts table has no phone index (it would slow every import for
/// this rare question), so this reads the org's contacts list by list
/// through their primary key: a scan, acceptable for a subpoena or a
/// complaint, never on a hot path. See ADR 0013.
pub async fn phone_lists(db: &Database, org: OrgId, phone: &str) -> StoreResult<Vec<PhoneList>> {
    type Row = (
        Uuid,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        String,
        String,
        i64,
        String,
        String,
    );
    let rows: Vec<Row> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT l.list_id, l.name, l.source, l.consent_basis, l.uploaded_by, l.uploaded_at,
                    l.file_sha256, l.status, c.line, c.first_name, c.last_name
               FROM lists l JOIN contacts c ON c.list_id = l.list_id
              WHERE l.org_id = $1 AND c.phone = $2
              ORDER BY l.uploaded_at, l.list_id",
        )
        .bind(Uuid::from(org))
        .bind(phone)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            Ok(PhoneList {
                list_id: ListId::from_uuid(row.0),
                name: row.1,
                source: row.2,
                consent_basis: row.3,
                uploaded_by: serde_json::from_str(&row.4)
                    .map_err(|err| StoreError::Corrupt(format!("lists: {err}")))?,
                uploaded_at: row.5,
                file_sha256: row.6,
                status: row.7,
                line: u64::try_from(row.8).unwrap_or(0),
                first_name: row.9,
                last_name: row.10,
            })
        })
        .collect()
}

/// A campaign of the org that includes the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PhoneCampaign {
    pub campaign_id: CampaignId,
    pub name: Option<String>,
    /// The list the campaign took the phone from.
    pub list_id: ListId,
    pub assigned_texter_id: Option<MemberId>,
}

pub async fn phone_campaigns(
    db: &Database,
    org: OrgId,
    phone: &str,
) -> StoreResult<Vec<PhoneCampaign>> {
    let rows: Vec<(Uuid, Option<String>, Uuid, Option<Uuid>)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT cc.campaign_id, k.name, cc.list_id, cc.texter_id
               FROM campaign_contacts cc LEFT JOIN campaigns k ON k.campaign_id = cc.campaign_id
              WHERE cc.org_id = $1 AND cc.phone = $2
              ORDER BY cc.campaign_id",
        )
        .bind(Uuid::from(org))
        .bind(phone)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(campaign, name, list, texter)| PhoneCampaign {
            campaign_id: CampaignId::from_uuid(campaign),
            name,
            list_id: ListId::from_uuid(list),
            assigned_texter_id: texter.map(MemberId::from_uuid),
        })
        .collect())
}

/// Is `stream` one of the org's? Its own stream, its recipients' and
/// texters' streams (named after the org), and its lists and campaigns (as
/// their read models know them).
pub async fn stream_belongs_to_org(db: &Database, org: OrgId, stream: &str) -> StoreResult<bool> {
    if stream == format!("org-{org}")
        || stream.starts_with(&format!("recipient-{org}-"))
        || stream.starts_with(&format!("texter-{org}-"))
    {
        return Ok(true);
    }
    let (table, id) = if let Some(id) = stream.strip_prefix("list-") {
        ("lists", id)
    } else if let Some(id) = stream.strip_prefix("campaign-") {
        ("campaigns", id)
    } else {
        return Ok(false);
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return Ok(false);
    };
    // Only the two constant table names above are formatted in.
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE org_id = $1 AND {}_id = $2",
        &table[..table.len() - 1]
    );
    let count: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
            .bind(Uuid::from(org))
            .bind(id)
            .fetch_one(pool)
            .await?
    });
    Ok(count > 0)
}

/// Every event stream of the org, sorted: its own, its lists' and
/// campaigns' (from their read models), and every recipient and texter
/// stream named after it (from the log itself).
pub async fn org_streams(db: &Database, org: OrgId) -> StoreResult<Vec<String>> {
    let mut streams = vec![format!("org-{org}")];
    let lists: Vec<Uuid> = on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT list_id FROM lists WHERE org_id = $1")
            .bind(Uuid::from(org))
            .fetch_all(pool)
            .await?
    });
    let campaigns: Vec<Uuid> = on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT campaign_id FROM campaigns WHERE org_id = $1")
            .bind(Uuid::from(org))
            .fetch_all(pool)
            .await?
    });
    streams.extend(lists.iter().map(|id| format!("list-{id}")));
    streams.extend(campaigns.iter().map(|id| format!("campaign-{id}")));
    for prefix in [format!("recipient-{org}-"), format!("texter-{org}-")] {
        streams.extend(streams_with_prefix(db, &prefix).await?);
    }
    streams.sort_unstable();
    streams.dedup();
    Ok(streams)
}

/// The distinct stream ids of the log that start with `prefix`.
async fn streams_with_prefix(db: &Database, prefix: &str) -> StoreResult<Vec<String>> {
    Ok(match db {
        // SQLite compares text bytewise, so the prefix is an index range
        // ('.' follows '-').
        Database::Sqlite { read, .. } => {
            let end = format!("{}.", prefix.trim_end_matches('-'));
            sqlx::query_scalar(
                "SELECT DISTINCT stream_id FROM events WHERE stream_id >= $1 AND stream_id < $2",
            )
            .bind(prefix)
            .bind(end)
            .fetch_all(read)
            .await?
        }
        // PostgreSQL compares text by the database's collation, under which
        // a prefix need not be a contiguous range; LIKE is exact (the
        // prefix holds no wildcard: letters, digits and '-').
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT DISTINCT stream_id FROM events WHERE stream_id LIKE $1")
                .bind(format!("{prefix}%"))
                .fetch_all(pool)
                .await?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_early_final_report_wins_over_later_ones() {
        assert_eq!(combine(Some(3), Some(5)), Some(3));
        assert_eq!(combine(Some(1), Some(4)), Some(4));
        assert_eq!(combine(Some(2), Some(1)), Some(2));
        assert_eq!(combine(None, Some(1)), Some(1));
        assert_eq!(combine(Some(0), None), Some(0));
        assert_eq!(combine(None, None), None);
    }

    #[test]
    fn positions_parse_from_their_stored_list() {
        assert_eq!(positions("3,17,20"), [3, 17, 20]);
        assert!(positions("").is_empty());
    }
}
