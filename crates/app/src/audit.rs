//! The compliance audit: message search (JSON pages or a streamed CSV
//! export), one message's whole trail read back from the log with its
//! hashes, everything the org did with one phone number, refused send
//! attempts by reason, hash-chain verification, and a texter's click
//! cadence. Owners, admins and compliance officers only
//! (`Permission::ReadAudit`); another org's ids answer 404.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures_util::{Stream, StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use textbank_domain::handling;
use textbank_domain::message::BlockReason;
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::recipient::{self, RecipientEvent};
use textbank_domain::{
    CampaignId, ConversationId, DomainEvent, MemberId, MessageId, OrgId, Permission, StreamId,
};
use textbank_projections::audit::{
    self, Audit, BlockedFilter, BlockedRow, Cadence, Cursor, MessageFilter, MessageRow,
    PhoneCampaign, PhoneList,
};
use textbank_projections::{campaigns::Campaigns, lists::Lists};
use textbank_store::{BrokenLink, ChainReport, StoreResult};
use tokio::sync::mpsc;

use crate::{App, AppError, Caller};

/// Rows per page unless the request says otherwise, and at most.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1_000;
/// Messages one phone's history lists; a number with more is truncated
/// (and says so) — search by phone pages through all of them.
const PHONE_MESSAGES: usize = 10_000;
/// Refused attempts one phone's history lists.
const PHONE_BLOCKED: u32 = 1_000;
/// Events read per page from a stream.
const STREAM_PAGE: usize = 1_000;
/// Broken streams a verification names (it counts them all).
const NAMED_BROKEN: usize = 100;
/// Streams verified at once: each is a few reads, mostly waiting.
const CONCURRENT_VERIFIES: usize = 4;
/// Slices of rows (64 each) the export reader may run ahead of the client.
pub(crate) const EXPORT_BUFFER: usize = 4;
/// Bytes of CSV gathered into one body chunk.
const EXPORT_CHUNK: usize = 64 * 1024;

/// Query parameters of the message search and export, as written.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    /// Messages to or from this number (E.164, or national in the server's
    /// default region).
    pub phone: Option<String>,
    /// Messages this texter clicked.
    #[param(value_type = Option<uuid::Uuid>)]
    pub texter_id: Option<String>,
    /// Messages of this campaign.
    #[param(value_type = Option<uuid::Uuid>)]
    pub campaign_id: Option<String>,
    /// From this time on (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// A log position the answer must reflect.
    #[param(value_type = Option<u64>)]
    pub min_position: Option<String>,
}

/// A message search, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSearch {
    pub phone: Option<PhoneNumber>,
    pub texter_id: Option<MemberId>,
    pub campaign_id: Option<CampaignId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    pub min_position: Option<u64>,
}

impl MessageSearch {
    /// Every message of the org, first page.
    pub fn all() -> Self {
        Self {
            phone: None,
            texter_id: None,
            campaign_id: None,
            from: None,
            to: None,
            cursor: None,
            limit: None,
            min_position: None,
        }
    }

    pub fn parse(params: &MessageParams, region: Region) -> Result<Self, AppError> {
        let (from, to) = time_range(params.from.as_deref(), params.to.as_deref())?;
        Ok(Self {
            phone: params
                .phone
                .as_deref()
                .map(|raw| parse_phone(raw, region))
                .transpose()?,
            texter_id: parse_id(params.texter_id.as_deref(), "texter_id")?,
            campaign_id: parse_id(params.campaign_id.as_deref(), "campaign_id")?,
            from,
            to,
            cursor: params.cursor.clone(),
            limit: parse_limit(params.limit.as_deref())?,
            min_position: crate::parse_min_position(params.min_position.as_deref())?,
        })
    }

    fn filter(&self, org: OrgId) -> MessageFilter {
        MessageFilter {
            org,
            phone: self.phone.as_ref().map(|p| p.as_str().to_owned()),
            texter: self.texter_id,
            campaign: self.campaign_id,
            from: self.from,
            to: self.to,
        }
    }
}

/// Query parameters of the refused-attempts search, as written.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlockedParams {
    /// Attempts of this texter.
    #[param(value_type = Option<uuid::Uuid>)]
    pub texter_id: Option<String>,
    /// Attempts in this campaign.
    #[param(value_type = Option<uuid::Uuid>)]
    pub campaign_id: Option<String>,
    /// Attempts refused for this reason (`opted_out`, `quiet_hours`, …).
    pub reason: Option<String>,
    /// From this time on (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page.
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// A log position the answer must reflect.
    #[param(value_type = Option<u64>)]
    pub min_position: Option<String>,
}

/// Query parameters that only bound a time range and wait for a position.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// From this time on (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// A log position the answer must reflect.
    #[param(value_type = Option<u64>)]
    pub min_position: Option<String>,
}

fn parse_phone(raw: &str, region: Region) -> Result<PhoneNumber, AppError> {
    PhoneNumber::parse(raw, region).map_err(|err| {
        AppError::invalid(
            "phone",
            format!("phone {raw:?} is not a phone number: {err}"),
        )
    })
}

fn parse_id<T: std::str::FromStr>(
    raw: Option<&str>,
    field: &'static str,
) -> Result<Option<T>, AppError> {
    raw.map(|raw| {
        raw.parse()
            .map_err(|_| AppError::invalid(field, format!("{field} must be a UUID, not {raw:?}")))
    })
    .transpose()
}

/// A time as RFC 3339, or a date (its midnight, UTC).
fn parse_time(raw: &str, field: &'static str) -> Result<DateTime<Utc>, AppError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| {
            AppError::invalid(
                field,
                format!(
                    "{field} must be an RFC 3339 time (2026-11-25T19:00:00Z) or a date (2026-11-25), not {raw:?}"
                ),
            )
        })
}

/// An optional time bound.
type Bound = Option<DateTime<Utc>>;

fn time_range(from: Option<&str>, to: Option<&str>) -> Result<(Bound, Bound), AppError> {
    let from = from.map(|raw| parse_time(raw, "from")).transpose()?;
    let to = to.map(|raw| parse_time(raw, "to")).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(AppError::invalid("to", "to must not be before from"));
    }
    Ok((from, to))
}

fn parse_limit(raw: Option<&str>) -> Result<Option<u32>, AppError> {
    raw.map(|raw| match raw.parse::<u32>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(AppError::invalid(
            "limit",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"),
        )),
    })
    .transpose()
}

const CURSOR_PREFIX: &str = "audit:";

/// An opaque cursor for the page after `row`.
fn encode_cursor(occurred_at: DateTime<Utc>, position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{CURSOR_PREFIX}{}:{position}",
        occurred_at.timestamp_micros()
    ))
}

fn decode_cursor(raw: &str) -> Result<Cursor, AppError> {
    let bad = || AppError::invalid("cursor", "cursor is not one this API handed out");
    let text = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (micros, position) = text
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    Ok(Cursor {
        occurred_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
        position: position.parse().map_err(|_| bad())?,
    })
}

fn corrupt(err: impl std::fmt::Display) -> AppError {
    AppError::Inconsistent(err.to_string())
}

/// One page of messages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One event of a message's trail, as stored, with its chain link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrailEvent {
    pub position: u64,
    pub event_id: uuid::Uuid,
    pub stream_id: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub recorded_at: DateTime<Utc>,
    pub data: Value,
    pub metadata: Value,
    /// Hex SHA-256 chain link of this event, and of the stream's previous one.
    pub hash: String,
    pub prev_hash: String,
}

/// A message and everything that happened to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageTrail {
    pub message: MessageRow,
    pub events: Vec<TrailEvent>,
    /// The recipient stream's hash chain, recomputed now.
    pub chain: ChainReport,
}

/// An opt-out or opt-in of the number.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OptOutChange {
    pub position: u64,
    pub at: DateTime<Utc>,
    /// opted_out | opted_in
    pub change: &'static str,
    /// keyword_reply | texter | import
    pub source: Value,
    pub keyword: Option<String>,
    pub conversation_id: Option<ConversationId>,
    /// Who recorded it (the API key and member, or the carrier).
    pub actor: Value,
}

/// A change to how one of the number's conversations was handled: a tag
/// applied or removed, an escalation or its resolution, a reassignment or
/// a release.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationChange {
    pub position: u64,
    pub at: DateTime<Utc>,
    /// The event's type (TagApplied, ConversationReassigned, …).
    pub change: String,
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    /// The event's own fields.
    pub data: Value,
    /// Who made the change (the API key and member).
    pub actor: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyAnswer {
    pub position: u64,
    pub at: DateTime<Utc>,
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    pub question_id: String,
    pub answer: String,
    pub recorded_by: MemberId,
}

/// Everything the org did with one phone number.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneHistory {
    pub phone: String,
    pub stream_id: String,
    /// As the number's stream says now.
    pub opted_out: bool,
    /// The org's list uploads that contained the number.
    pub lists: Vec<PhoneList>,
    /// The org's campaigns that include it.
    pub campaigns: Vec<PhoneCampaign>,
    /// Every message both ways, oldest first.
    pub messages: Vec<MessageRow>,
    pub messages_truncated: bool,
    pub opt_outs: Vec<OptOutChange>,
    /// Send attempts to it that were refused.
    pub blocked: Vec<BlockedRow>,
    pub survey_answers: Vec<SurveyAnswer>,
    /// Tags, escalations, reassignments and releases of its conversations.
    pub conversation_changes: Vec<ConversationChange>,
    /// Events on the number's stream, and the last one's position.
    pub events: u64,
    pub last_position: Option<u64>,
}

/// One page of refused attempts, with how many match per reason.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BlockedPage {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    pub attempts: Vec<BlockedRow>,
    pub next_cursor: Option<String>,
}

/// A stream whose chain is broken, and where.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokenStream {
    pub stream_id: String,
    #[serde(flatten)]
    pub link: BrokenLink,
}

/// What a hash-chain verification found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// stream | organization
    pub scope: &'static str,
    pub streams_checked: u64,
    pub events_checked: u64,
    pub intact: bool,
    /// How many streams are broken; the first (in stream order) and up to
    /// 100 are named.
    pub broken_streams: u64,
    pub first_broken: Option<BrokenStream>,
    pub broken: Vec<BrokenStream>,
}

impl VerifyReport {
    fn new(scope: &'static str) -> Self {
        Self {
            scope,
            streams_checked: 0,
            events_checked: 0,
            intact: true,
            broken_streams: 0,
            first_broken: None,
            broken: Vec::new(),
        }
    }

    fn add(&mut self, report: ChainReport) {
        self.streams_checked += 1;
        self.events_checked += report.events_checked;
        if let Some(link) = report.first_broken {
            self.intact = false;
            self.broken_streams += 1;
            let broken = BrokenStream {
                stream_id: report.stream_id,
                link,
            };
            if self.first_broken.is_none() {
                self.first_broken = Some(broken.clone());
            }
            if self.broken.len() < NAMED_BROKEN {
                self.broken.push(broken);
            }
        }
    }
}

/// The CSV export's columns, in order.
pub const EXPORT_COLUMNS: &str = "message_id,position,occurred_at,direction,kind,origin,note,\
phone,from_number,to_number,texter_id,texter_name,campaign_id,campaign_name,conversation_id,\
body_sha256,segments,script_version,presented_at,clicked_at,received_at,display_to_click_ms,\
key_id,key_issued_by_key_id,key_issued_by_member_id,key_issued_by_name,click_token_id,ip,user_agent,list_id,list_name,list_source,list_consent_basis,\
opted_out_at_send,opt_out_checked_events,hours_allowed,recipient_local_time,\
recipient_time_zone,time_zone_source,texting_window,keyword,in_reply_to,carrier,\
carrier_message_id,dispatch_status,attempts,delivery_status,error_code,submit_error,status";

/// Quotes a CSV cell when it needs it, and defuses one a spreadsheet would
/// run as a formula (`=…`, `@…`, or `+`/`-` followed by more than a number)
/// with a leading `'` — the rule of the list rejections' export. Bodies are
/// never exported, but user agents and names are anyone's text.
pub(crate) fn push_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '@'])
        || (value.starts_with(['+', '-']) && value.chars().any(|c| c.is_alphabetic() || c == '('));
    let quote = value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// One CSV line being written, cell by cell.
pub(crate) struct Line<'a> {
    pub(crate) out: &'a mut String,
    first: bool,
}

impl<'a> Line<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        Self { out, first: true }
    }

    fn separate(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    /// Text from anyone (names, user agents): quoted and defused as needed.
    pub(crate) fn text(&mut self, value: Option<&str>) {
        self.separate();
        push_cell(self.out, value.unwrap_or_default());
    }

    /// Ids, numbers, flags and codes of our own, which never need quoting.
    pub(crate) fn plain(&mut self, value: Option<impl std::fmt::Display>) {
        self.separate();
        if let Some(value) = value {
            let _ = write!(self.out, "{value}");
        }
    }

    pub(crate) fn time(&mut self, at: Option<DateTime<Utc>>) {
        self.separate();
        if let Some(at) = at {
            self.out
                .push_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
    }
}

/// A CSV body: `header`, then the rows `receiver` yields, each written by
/// `push`, gathered into chunks of about [`EXPORT_CHUNK`] bytes without
/// waiting for more than is ready. A failure ends the body with an error.
pub(crate) fn csv_body<R: Send + 'static>(
    header: String,
    receiver: mpsc::Receiver<StoreResult<Vec<R>>>,
    push: fn(&mut String, &R),
) -> impl Stream<Item = Result<Bytes, AppError>> + Send + 'static {
    let rows = stream::unfold(Some(receiver), move |receiver| async move {
        let mut receiver = receiver?;
        let first = receiver.recv().await?;
        let mut text = String::with_capacity(EXPORT_CHUNK + 1_024);
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Ok(rows) => {
                    for row in &rows {
                        push(&mut text, row);
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "CSV export failed");
                    return Some((Err(AppError::Store(err)), None));
                }
            }
            if text.len() < EXPORT_CHUNK {
                next = receiver.try_recv().ok();
            }
        }
        Some((Ok(Bytes::from(text)), Some(receiver)))
    });
    stream::once(async move { Ok(Bytes::from(header)) }).chain(rows)
}

/// Appends one row as a CSV line, in [`EXPORT_COLUMNS`] order.
pub fn push_csv_line(out: &mut String, row: &MessageRow) {
    let mut line = Line::new(out);
    line.plain(Some(row.message_id));
    line.plain(Some(row.position));
    line.time(Some(row.occurred_at));
    line.plain(row.direction.as_deref());
    line.plain(row.kind.as_deref());
    line.plain(Some(row.origin));
    line.text(row.note);
    line.text(Some(&row.phone));
    line.text(row.from_number.as_deref());
    line.text(row.to_number.as_deref());
    line.plain(row.texter_id);
    line.text(row.texter_name.as_deref());
    line.plain(row.campaign_id);
    line.text(row.campaign_name.as_deref());
    line.plain(row.conversation_id);
    line.text(row.body_sha256.as_deref());
    line.plain(row.segments);
    line.plain(row.script_version);
    line.time(row.presented_at);
    line.time(row.clicked_at);
    line.time(row.received_at);
    line.plain(row.display_to_click_ms);
    line.plain(row.key_id);
    line.plain(row.key_issued_by_key_id);
    line.plain(row.key_issued_by_member_id);
    line.text(row.key_issued_by_name.as_deref());
    line.plain(row.click_token_id);
    line.text(row.ip.as_deref());
    line.text(row.user_agent.as_deref());
    line.plain(row.list_id);
    line.text(row.list_name.as_deref());
    line.text(row.list_source.as_deref());
    line.text(row.list_consent_basis.as_deref());
    line.plain(row.opted_out_at_send);
    line.plain(row.opt_out_checked_events);
    line.plain(row.hours_allowed);
    line.text(row.recipient_local_time.as_deref());
    line.text(row.recipient_time_zone.as_deref());
    line.text(row.time_zone_source.as_deref());
    line.text(row.texting_window.as_deref());
    line.text(row.keyword.as_deref());
    line.text(row.in_reply_to.as_deref());
    line.text(row.carrier.as_deref());
    line.text(row.carrier_message_id.as_deref());
    line.text(row.dispatch_status.as_deref());
    line.plain(row.attempts);
    line.plain(row.delivery_status);
    line.text(row.error_code.as_deref());
    line.text(row.submit_error.as_deref());
    line.text(Some(&row.status));
    line.out.push('\n');
}

impl App {
    async fn wait_for_audit(&self, min_position: Option<u64>) -> Result<(), AppError> {
        if let Some(position) = min_position {
            self.wait_for_projection(&Audit::live(), position).await?;
        }
        Ok(())
    }

    /// One page of the org's messages matching `search`, oldest first.
    pub async fn audit_messages(
        &self,
        caller: &Caller,
        search: &MessageSearch,
    ) -> Result<MessagePage, AppError> {
        caller.require(Permission::ReadAudit)?;
        let after = search.cursor.as_deref().map(decode_cursor).transpose()?;
        self.wait_for_audit(search.min_position).await?;
        let limit = search.limit.unwrap_or(DEFAULT_LIMIT);
        // One more than asked tells whether another page follows.
        let mut messages = audit::message_page(
            self.database(),
            &search.filter(caller.org_id),
            after.as_ref(),
            limit + 1,
        )
        .await?;
        let next_cursor = if messages.len() > limit as usize {
            messages.truncate(limit as usize);
            messages
                .last()
                .map(|row| encode_cursor(row.occurred_at, row.position))
        } else {
            None
        };
        Ok(MessagePage {
            messages,
            next_cursor,
        })
    }

    /// Every message matching `search` as CSV (a header line, then one line
    /// per message), streamed off one database cursor: memory stays flat
    /// however many rows there are. Paging parameters do not apply.
    pub async fn audit_export(
        &self,
        caller: &Caller,
        search: &MessageSearch,
    ) -> Result<impl Stream<Item = Result<Bytes, AppError>> + Send + 'static, AppError> {
        caller.require(Permission::ReadAudit)?;
        if search.cursor.is_some() || search.limit.is_some() {
            return Err(AppError::invalid(
                "cursor",
                "the export holds every matching message; cursor and limit do not apply",
            ));
        }
        self.wait_for_audit(search.min_position).await?;
        let (sender, receiver) = mpsc::channel(EXPORT_BUFFER);
        let database = self.database().clone();
        let filter = search.filter(caller.org_id);
        tokio::spawn(async move {
            if let Err(err) = audit::export_rows(&database, &filter, &sender).await {
                let _ = sender.send(Err(err)).await;
            }
        });
        Ok(csv_body(
            format!("{EXPORT_COLUMNS}\n"),
            receiver,
            push_csv_line,
        ))
    }

    /// A message of the org, its row and every event of its trail read back
    /// from the log (positions, hashes), with its stream's chain verified.
    pub async fn audit_message(
        &self,
        caller: &Caller,
        id: MessageId,
        min_position: Option<u64>,
    ) -> Result<MessageTrail, AppError> {
        caller.require(Permission::ReadAudit)?;
        self.wait_for_audit(min_position).await?;
        let message = audit::message(self.database(), caller.org_id, id)
            .await?
            .ok_or(AppError::NotFound("message"))?;
        let mut events = Vec::with_capacity(message.positions.len());
        for &position in &message.positions {
            let read = self.events().read_all(position, 1).await?;
            let event = read
                .into_iter()
                .next()
                .filter(|event| event.position == position)
                .ok_or_else(|| corrupt(format!("the log has no event at position {position}")))?;
            if event.metadata.org_id != Some(caller.org_id) {
                return Err(corrupt(format!(
                    "event {position} of message {id} belongs to another organization"
                )));
            }
            events.push(TrailEvent {
                position,
                event_id: event.event_id,
                stream_id: event.stream_id.to_string(),
                version: event.version,
                event_type: event.event_type,
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                data: event.data,
                metadata: serde_json::to_value(&event.metadata).map_err(corrupt)?,
                hash: hex::encode(event.hash),
                prev_hash: hex::encode(event.prev_hash),
            });
        }
        let phone = PhoneNumber::from_e164(&message.phone).map_err(corrupt)?;
        let chain = self
            .events()
            .verify_stream(&recipient::stream_id(caller.org_id, &phone))
            .await?;
        Ok(MessageTrail {
            message,
            events,
            chain,
        })
    }

    /// Everything the org did with one number: the list uploads that held
    /// it, its campaigns, every message both ways, opt-outs and opt-ins,
    /// refused attempts and survey answers. A number the org never had
    /// anything to do with is a 404, as is another org's.
    pub async fn audit_phone(&self, caller: &Caller, raw: &str) -> Result<PhoneHistory, AppError> {
        caller.require(Permission::ReadAudit)?;
        let phone = parse_phone(raw, self.default_region())?;
        let stream = recipient::stream_id(caller.org_id, &phone);
        let mut history = PhoneHistory {
            phone: phone.as_str().to_owned(),
            stream_id: stream.to_string(),
            opted_out: false,
            lists: Vec::new(),
            campaigns: Vec::new(),
            messages: Vec::new(),
            messages_truncated: false,
            opt_outs: Vec::new(),
            blocked: Vec::new(),
            survey_answers: Vec::new(),
            conversation_changes: Vec::new(),
            events: 0,
            last_position: None,
        };
        self.read_recipient_stream(&stream, &mut history).await?;
        // The read model answers with everything up to the stream's end.
        if let Some(last) = history.last_position {
            self.wait_for_projection(&Audit::live(), last).await?;
        }
        let database = self.database();
        let org = caller.org_id;
        history.lists = audit::phone_lists(database, org, phone.as_str()).await?;
        history.campaigns = audit::phone_campaigns(database, org, phone.as_str()).await?;
        let filter = MessageFilter {
            phone: Some(phone.as_str().to_owned()),
            ..MessageFilter::org(org)
        };
        let mut after = None;
        loop {
            let page = audit::message_page(database, &filter, after.as_ref(), MAX_LIMIT).await?;
            let full = page.len() == MAX_LIMIT as usize;
            after = page.last().map(|row| Cursor {
                occurred_at: row.occurred_at,
                position: i64::try_from(row.position).unwrap_or(i64::MAX),
            });
            history.messages.extend(page);
            if history.messages.len() >= PHONE_MESSAGES {
                history.messages.truncate(PHONE_MESSAGES);
                history.messages_truncated = true;
                break;
            }
            if !full {
                break;
            }
        }
        let blocked = BlockedFilter {
            phone: Some(phone.as_str().to_owned()),
            ..BlockedFilter::org(org)
        };
        history.blocked = audit::blocked_page(database, &blocked, None, PHONE_BLOCKED).await?;
        if history.events == 0 && history.lists.is_empty() && history.campaigns.is_empty() {
            return Err(AppError::NotFound("phone"));
        }
        Ok(history)
    }

    /// Folds the number's stream into the history's opt-outs and answers.
    async fn read_recipient_stream(
        &self,
        stream: &StreamId,
        history: &mut PhoneHistory,
    ) -> Result<(), AppError> {
        let mut from = 0;
        loop {
            let page = self.events().read_stream(stream, from, STREAM_PAGE).await?;
            for recorded in &page {
                history.events += 1;
                history.last_position = Some(recorded.position);
                let Some(event) = RecipientEvent::from_parts(&recorded.event_type, &recorded.data)
                    .map_err(corrupt)?
                else {
                    continue;
                };
                let actor = serde_json::to_value(&recorded.metadata.actor).map_err(corrupt)?;
                if let Some(conversation) = handling::subject(&event) {
                    history.conversation_changes.push(ConversationChange {
                        position: recorded.position,
                        at: recorded.recorded_at,
                        change: recorded.event_type.clone(),
                        conversation_id: conversation.conversation_id,
                        campaign_id: conversation.campaign_id,
                        data: recorded.data.clone(),
                        actor,
                    });
                    continue;
                }
                match event {
                    RecipientEvent::OptOutRecorded {
                        source,
                        keyword,
                        conversation,
                        ..
                    } => {
                        history.opted_out = true;
                        history.opt_outs.push(OptOutChange {
                            position: recorded.position,
                            at: recorded.recorded_at,
                            change: "opted_out",
                            source: serde_json::to_value(source).map_err(corrupt)?,
                            keyword,
                            conversation_id: conversation.map(|c| c.conversation_id),
                            actor,
                        });
                    }
                    RecipientEvent::OptInRecorded { source, .. } => {
                        history.opted_out = false;
                        history.opt_outs.push(OptOutChange {
                            position: recorded.position,
                            at: recorded.recorded_at,
                            change: "opted_in",
                            source: serde_json::to_value(source).map_err(corrupt)?,
                            keyword: None,
                            conversation_id: None,
                            actor,
                        });
                    }
                    RecipientEvent::SurveyAnswerRecorded {
                        conversation,
                        question_id,
                        answer,
                        recorded_by,
                    } => history.survey_answers.push(SurveyAnswer {
                        position: recorded.position,
                        at: recorded.recorded_at,
                        conversation_id: conversation.conversation_id,
                        campaign_id: conversation.campaign_id,
                        question_id,
                        answer,
                        recorded_by,
                    }),
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == STREAM_PAGE => from = last.version + 1,
                _ => return Ok(()),
            }
        }
    }

    /// Refused send attempts matching the parameters, one page, with how
    /// many match per reason.
    pub async fn audit_blocked(
        &self,
        caller: &Caller,
        params: &BlockedParams,
    ) -> Result<BlockedPage, AppError> {
        caller.require(Permission::ReadAudit)?;
        let (from, to) = time_range(params.from.as_deref(), params.to.as_deref())?;
        let reason = params
            .reason
            .as_deref()
            .map(|raw| {
                BLOCK_REASONS
                    .iter()
                    .find(|reason| reason.code() == raw)
                    .map(|reason| reason.code().to_owned())
                    .ok_or_else(|| {
                        let known: Vec<&str> = BLOCK_REASONS.iter().map(|r| r.code()).collect();
                        AppError::invalid(
                            "reason",
                            format!("reason must be one of {}, not {raw:?}", known.join(", ")),
                        )
                    })
            })
            .transpose()?;
        let filter = BlockedFilter {
            texter: parse_id(params.texter_id.as_deref(), "texter_id")?,
            campaign: parse_id(params.campaign_id.as_deref(), "campaign_id")?,
            reason,
            from,
            to,
            ..BlockedFilter::org(caller.org_id)
        };
        let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = parse_limit(params.limit.as_deref())?.unwrap_or(DEFAULT_LIMIT);
        self.wait_for_audit(crate::parse_min_position(params.min_position.as_deref())?)
            .await?;
        let database = self.database();
        let by_reason: BTreeMap<String, u64> = audit::blocked_counts(database, &filter)
            .await?
            .into_iter()
            .collect();
        let mut attempts =
            audit::blocked_page(database, &filter, after.as_ref(), limit + 1).await?;
        let next_cursor = if attempts.len() > limit as usize {
            attempts.truncate(limit as usize);
            attempts
                .last()
                .map(|row| encode_cursor(row.occurred_at, row.position()))
        } else {
            None
        };
        Ok(BlockedPage {
            total: by_reason.values().sum(),
            by_reason,
            attempts,
            next_cursor,
        })
    }

    /// Recomputes the hash chain of one stream of the org (`stream`), or of
    /// every stream of the org, and reports the first broken link.
    pub async fn audit_verify(
        &self,
        caller: &Caller,
        stream: Option<&str>,
    ) -> Result<VerifyReport, AppError> {
        caller.require(Permission::ReadAudit)?;
        let org = caller.org_id;
        let database = self.database();
        if let Some(raw) = stream {
            let stream = StreamId::parse(raw)
                .map_err(|err| AppError::invalid("stream", format!("stream {raw:?}: {err}")))?;
            if !audit::stream_belongs_to_org(database, org, stream.as_str()).await? {
                return Err(AppError::NotFound("stream"));
            }
            let chain = self.events().verify_stream(&stream).await?;
            if chain.events_checked == 0 && chain.first_broken.is_none() {
                return Err(AppError::NotFound("stream"));
            }
            let mut report = VerifyReport::new("stream");
            report.add(chain);
            return Ok(report);
        }
        // Lists and campaigns are found through their read models: let them
        // catch up with everything written before this request.
        let head = self.events().head_position().await?;
        self.wait_for_projection(&Lists, head).await?;
        self.wait_for_projection(&Campaigns, head).await?;
        let streams = audit::org_streams(database, org).await?;
        let mut report = VerifyReport::new("organization");
        let mut checks = stream::iter(streams)
            .map(|name| async move {
                let stream = StreamId::parse(name).map_err(corrupt)?;
                Ok::<_, AppError>(self.events().verify_stream(&stream).await?)
            })
            .buffered(CONCURRENT_VERIFIES);
        while let Some(chain) = checks.next().await {
            report.add(chain?);
        }
        Ok(report)
    }

    /// How a texter of the org clicks: display-to-click times, clicks per
    /// minute, and whether that looks automated (and why).
    pub async fn texter_cadence(
        &self,
        caller: &Caller,
        texter: MemberId,
        params: &RangeParams,
    ) -> Result<Cadence, AppError> {
        caller.require(Permission::ReadAudit)?;
        let (from, to) = time_range(params.from.as_deref(), params.to.as_deref())?;
        let min_position = crate::parse_min_position(params.min_position.as_deref())?;
        textbank_projections::directory::member(self.database(), caller.org_id, texter)
            .await?
            .ok_or(AppError::NotFound("texter"))?;
        self.wait_for_audit(min_position).await?;
        let clicks =
            audit::cadence_clicks(self.database(), caller.org_id, texter, from, to).await?;
        Ok(audit::analyse(&clicks))
    }
}

/// Every reason a send can be refused, for validating filters.
const BLOCK_REASONS: [BlockReason; 10] = [
    BlockReason::OptedOut,
    BlockReason::QuietHours,
    BlockReason::CampaignNotOpen,
    BlockReason::TokenExpired,
    BlockReason::TokenUsed,
    BlockReason::TokenInvalid,
    BlockReason::NotYourToken,
    BlockReason::AlreadyMessaged,
    BlockReason::TooFast,
    BlockReason::NotAssigned,
];

/// The message search, for callers outside the HTTP API (the benchmark).
pub async fn search(
    app: &App,
    caller: &Caller,
    search: &MessageSearch,
) -> Result<MessagePage, AppError> {
    app.audit_messages(caller, search).await
}

/// The CSV export as a stream of body chunks, for callers outside the HTTP
/// API (the benchmark measures its peak memory).
pub async fn export_rows(
    app: &App,
    caller: &Caller,
    search: &MessageSearch,
) -> Result<impl Stream<Item = Result<Bytes, AppError>> + Send + 'static, AppError> {
    app.audit_export(caller, search).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let at: DateTime<Utc> = "2026-11-25T19:00:00.123456Z".parse().unwrap();
        let cursor = decode_cursor(&encode_cursor(at, 42)).unwrap();
        assert_eq!(cursor.occurred_at, at);
        assert_eq!(cursor.position, 42);
        assert!(decode_cursor("garbage").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("inbox:1:2")).is_err());
    }

    #[test]
    fn times_are_rfc3339_or_dates_and_ranges_run_forward() {
        assert_eq!(
            parse_time("2026-11-25", "from").unwrap(),
            "2026-11-25T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-25T14:00:00-05:00", "from").unwrap(),
            "2026-11-25T19:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(parse_time("yesterday", "from").is_err());
        assert!(time_range(Some("2026-11-26"), Some("2026-11-25")).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(parse_limit(Some("1")).unwrap(), Some(1));
        assert_eq!(parse_limit(Some("1000")).unwrap(), Some(1000));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("1001")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        for cell in [
            "plain",
            "a,b",
            "say \"hi\"",
            "=HYPERLINK(\"x\")",
            "+1 555 0100",
            "-SUM(A1)",
        ] {
            push_cell(&mut out, cell);
            out.push('|');
        }
        assert_eq!(
            out,
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=HYPERLINK(\"\"x\"\")\"|+1 555 0100|'-SUM(A1)|"
        );
    }

    #[test]
    fn the_export_header_names_every_cell_of_a_line() {
        assert_eq!(EXPORT_COLUMNS.split(',').count(), 50);
    }
}
