//! Reading the inbox: a page of conversations newest activity first, and
//! the rows changed after a position (what live streams push). Contact
//! names and campaign names are joined from the campaigns read model at
//! query time, for the page's rows only.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use textbank_domain::handling::Holder;
use textbank_domain::{CampaignId, ConversationId, MemberId, OrgId};
use textbank_store::{Database, StoreResult, on_reader};
use uuid::Uuid;

use super::TABLE;

/// A conversation as an inbox lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InboxConversation {
    pub conversation_id: ConversationId,
    pub campaign_id: CampaignId,
    pub campaign_name: Option<String>,
    pub texter_id: MemberId,
    pub phone: String,
    /// From the campaign's contact list (absent if the row is gone).
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub last_message: LastMessage,
    /// The latest message is the voter's, no opt-out keyword, and the
    /// number has not opted out.
    pub needs_reply: bool,
    /// The voter's messages since the conversation was last marked read.
    pub unread_count: u64,
    pub opted_out: bool,
    /// Where it is: in `texter_id`'s inbox, in the campaign's pool (then
    /// `texter_id` is its last texter), or escalated to staff.
    pub holder: Holder,
    /// Why it was escalated, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_reason: Option<String>,
    /// Its tags, as applied.
    pub tags: Vec<AppliedTag>,
    /// The log position of the batch that last changed this row.
    pub updated_position: u64,
    #[serde(skip)]
    pub org_id: OrgId,
    /// Who held it before its last change of holder, and that change's
    /// batch position: that texter's live stream is told it is gone.
    #[serde(skip)]
    pub previous_texter_id: Option<MemberId>,
    #[serde(skip)]
    pub holder_position: u64,
    /// The latest message's log position: the inbox's order (newest
    /// first), so a client merging live updates can keep it.
    pub last_position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LastMessage {
    /// The first 200 characters.
    pub body: String,
    /// "outbound" or "inbound".
    pub direction: String,
    pub at: DateTime<Utc>,
}

/// A tag on a conversation: its id and its name when applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppliedTag {
    pub tag_id: Uuid,
    pub name: String,
}

/// Which conversations a query is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxFilter {
    pub org: OrgId,
    pub texter: Option<MemberId>,
    pub campaign: Option<CampaignId>,
    /// Only those that need a reply.
    pub needs_reply: bool,
    /// Only those held so (a texter's inbox: `Texter`).
    pub holder: Option<Holder>,
    /// Only those with this tag.
    pub tag: Option<Uuid>,
    /// A live stream's: also the rows `texter` just lost (see
    /// [`InboxFilter::lost`]).
    pub with_lost: bool,
    /// Message review: only those (not) opted out, whose latest message is
    /// older than this, whose latest message contains this text (any case).
    pub review: ReviewFilter,
}

/// Message review's filters beyond the inbox's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewFilter {
    pub opted_out: Option<bool>,
    pub last_before: Option<DateTime<Utc>>,
    pub text: Option<String>,
}

impl ReviewFilter {
    fn matches(&self, row: &InboxConversation) -> bool {
        self.opted_out
            .is_none_or(|opted_out| opted_out == row.opted_out)
            && self
                .last_before
                .is_none_or(|before| row.last_message.at < before)
            && self.text.as_ref().is_none_or(|text| {
                row.last_message
                    .body
                    .to_lowercase()
                    .contains(&text.to_lowercase())
            })
    }
}

impl InboxFilter {
    pub fn matches(&self, row: &InboxConversation) -> bool {
        row.org_id == self.org
            && self.texter.is_none_or(|texter| texter == row.texter_id)
            && self
                .campaign
                .is_none_or(|campaign| campaign == row.campaign_id)
            && (!self.needs_reply || row.needs_reply)
            && self.holder.is_none_or(|holder| holder == row.holder)
            && self
                .tag
                .is_none_or(|tag| row.tags.iter().any(|applied| applied.tag_id == tag))
            && self.review.matches(row)
    }

    /// The row left the filter's texter in the change that wrote it: it
    /// was theirs just before, and is not now.
    pub fn lost(&self, row: &InboxConversation) -> bool {
        row.org_id == self.org
            && self.texter.is_some()
            && row.previous_texter_id == self.texter
            && row.holder_position == row.updated_position
            && !self.matches(row)
    }
}

/// A point in the order rows change in: (updated_position, conversation).
/// Rows after it are the ones not yet seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeCursor {
    pub position: u64,
    pub conversation: Uuid,
}

impl ChangeCursor {
    /// Everything changed up to and including `position`.
    pub fn through(position: u64) -> Self {
        Self {
            position,
            conversation: Uuid::max(),
        }
    }

    /// Just after this row.
    pub fn of(row: &InboxConversation) -> Self {
        Self {
            position: row.updated_position,
            conversation: *row.conversation_id.as_uuid(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    conversation_id: Uuid,
    org_id: Uuid,
    campaign_id: Uuid,
    campaign_name: Option<String>,
    texter_id: Uuid,
    phone: String,
    first_name: Option<String>,
    last_name: Option<String>,
    started_at: DateTime<Utc>,
    last_body: String,
    last_direction: String,
    last_at: DateTime<Utc>,
    last_position: i64,
    needs_reply: bool,
    unread: i64,
    opted_out: bool,
    updated_position: i64,
    holder: String,
    escalation_reason: Option<String>,
    tags: String,
    previous_texter_id: Option<Uuid>,
    holder_position: i64,
}

impl From<Row> for InboxConversation {
    fn from(row: Row) -> Self {
        Self {
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            campaign_id: CampaignId::from_uuid(row.campaign_id),
            campaign_name: row.campaign_name,
            texter_id: MemberId::from_uuid(row.texter_id),
            phone: row.phone,
            first_name: row.first_name,
            last_name: row.last_name,
            started_at: row.started_at,
            last_message: LastMessage {
                body: row.last_body,
                direction: row.last_direction,
                at: row.last_at,
            },
            needs_reply: row.needs_reply,
            unread_count: u64::try_from(row.unread).unwrap_or(0),
            opted_out: row.opted_out,
            // Written by the projector only; anything else reads as held.
            holder: Holder::parse(&row.holder).unwrap_or(Holder::Texter),
            escalation_reason: row.escalation_reason,
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            updated_position: u64::try_from(row.updated_position).unwrap_or(0),
            org_id: OrgId::from_uuid(row.org_id),
            previous_texter_id: row.previous_texter_id.map(MemberId::from_uuid),
            holder_position: u64::try_from(row.holder_position).unwrap_or(0),
            last_position: u64::try_from(row.last_position).unwrap_or(0),
        }
    }
}

const COLUMNS: &str = "i.conversation_id, i.org_id, i.campaign_id, cp.name AS campaign_name,
       i.texter_id, i.phone, ct.first_name, ct.last_name, i.started_at, i.last_body,
       i.last_direction, i.last_at, i.last_position, i.needs_reply, i.unread, i.opted_out,
       i.updated_position, i.holder, i.escalation_reason, i.tags, i.previous_texter_id,
       i.holder_position";

/// Names by primary key, for the rows already chosen (LEFT JOINs keep the
/// inbox table the outer loop on SQLite).
const NAMES: &str = "LEFT JOIN campaigns cp ON cp.campaign_id = i.campaign_id
  LEFT JOIN campaign_contacts cc ON cc.campaign_id = i.campaign_id AND cc.phone = i.phone
  LEFT JOIN contacts ct ON ct.list_id = cc.list_id AND ct.line = cc.line";

/// Marks a term that must not pick the index (see [`Sql::fetch`]).
const UNINDEXED: &str = "{unindexed}";

enum Bind {
    Uuid(Uuid),
    Int(i64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
}

/// SQL text with numbered binds, built clause by clause: a query with
/// `($n IS NULL OR …)` terms would keep SQLite from choosing the index
/// that fits the filters given.
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn new(text: String) -> Self {
        Self {
            text,
            binds: Vec::new(),
        }
    }

    /// Appends `clause` with `?` replaced by the next bind's number.
    fn push(&mut self, clause: &str, bind: Bind) {
        self.binds.push(bind);
        self.text
            .push_str(&clause.replace('?', &format!("${}", self.binds.len())));
    }

    /// The filter's conditions on `alias`, the first joined by `first`
    /// (" WHERE" or " AND").
    fn filter(&mut self, first: &str, alias: &str, filter: &InboxFilter) {
        self.push(
            &format!("{first} {alias}.org_id = ?"),
            Bind::Uuid(filter.org.into()),
        );
        match filter.texter {
            // A live stream's catch-up: the rows the texter lost too (the
            // holder is then checked on each row).
            Some(texter) if filter.with_lost => {
                self.push(
                    &format!(" AND ({alias}.texter_id = ?"),
                    Bind::Uuid(texter.into()),
                );
                self.push(
                    &format!(" OR {alias}.previous_texter_id = ?)"),
                    Bind::Uuid(texter.into()),
                );
            }
            Some(texter) => self.push(
                &format!(" AND {alias}.texter_id = ?"),
                Bind::Uuid(texter.into()),
            ),
            None => {}
        }
        if let Some(holder) = filter.holder.filter(|_| !filter.with_lost) {
            self.push(
                &format!(" AND {alias}.holder = ?"),
                Bind::Text(holder.as_str().into()),
            );
        }
        if let Some(opted_out) = filter.review.opted_out {
            self.push(
                &format!(" AND {alias}.opted_out = ?"),
                Bind::Bool(opted_out),
            );
        }
        if let Some(before) = filter.review.last_before {
            self.push(&format!(" AND {alias}.last_at < ?"), Bind::Time(before));
        }
        if let Some(text) = &filter.review.text {
            // LIKE's wildcards in the text match themselves.
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            self.push(
                &format!(" AND LOWER({alias}.last_body) LIKE ? ESCAPE '\\'"),
                Bind::Text(format!("%{escaped}%")),
            );
        }
        if let Some(tag) = filter.tag {
            // Tag ids are UUIDs in the row's JSON: one matches only itself.
            self.push(
                &format!(" AND {alias}.tags LIKE ?"),
                Bind::Text(format!("%\"{tag}\"%")),
            );
        }
        if let Some(campaign) = filter.campaign {
            // With a texter, their index is the one to walk: SQLite, without
            // statistics, rates the campaign's as good and may walk all of
            // a campaign's rows for one texter's few.
            let unindexed = if filter.texter.is_some() {
                UNINDEXED
            } else {
                ""
            };
            self.push(
                &format!(" AND {unindexed}{alias}.campaign_id = ?"),
                Bind::Uuid(campaign.into()),
            );
        }
        if filter.needs_reply {
            // Written as the partial indexes' condition, so SQLite uses them.
            self.text.push_str(&format!(" AND {alias}.needs_reply"));
        }
    }

    async fn fetch(self, db: &Database) -> StoreResult<Vec<InboxConversation>> {
        // SQLite's way to keep a term from choosing the index: a unary
        // plus. PostgreSQL has none for uuid and needs none (statistics).
        let text = match db {
            Database::Sqlite { .. } => self.text.replace(UNINDEXED, "+"),
            Database::Postgres(_) => self.text.replace(UNINDEXED, ""),
        };
        let rows: Vec<Row> = on_reader!(db, |pool| {
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(text));
            for bind in self.binds {
                query = match bind {
                    Bind::Uuid(value) => query.bind(value),
                    Bind::Int(value) => query.bind(value),
                    Bind::Text(value) => query.bind(value),
                    Bind::Bool(value) => query.bind(value),
                    Bind::Time(value) => query.bind(value),
                };
            }
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(InboxConversation::from).collect())
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Up to `limit` conversations matching `filter`, newest activity first,
/// older than the activity position `before` when given. Positions are
/// unique per message, so `before` alone makes a stable cursor.
pub async fn page(
    db: &Database,
    filter: &InboxFilter,
    before: Option<u64>,
    limit: u32,
) -> StoreResult<Vec<InboxConversation>> {
    let mut sql = Sql::new(format!("SELECT {COLUMNS} FROM {TABLE} i {NAMES}"));
    sql.filter(" WHERE", "i", filter);
    if let Some(before) = before {
        sql.push(" AND i.last_position < ?", Bind::Int(to_i64(before)));
    }
    sql.push(
        " ORDER BY i.last_position DESC LIMIT ?",
        Bind::Int(i64::from(limit)),
    );
    sql.fetch(db).await
}

/// Up to `limit` rows changed after `after`, in change order; only those
/// matching `scope` when given.
///
/// The changed rows are found through `c`, whose only condition is the
/// change position: the CROSS JOIN keeps SQLite from starting at the org's
/// or texter's index instead (it would read all their rows to find the few
/// changed ones). The filters apply to `i`, the same row by primary key.
pub async fn changes(
    db: &Database,
    after: ChangeCursor,
    scope: Option<&InboxFilter>,
    limit: u32,
) -> StoreResult<Vec<InboxConversation>> {
    let mut sql = Sql::new(format!(
        "SELECT {COLUMNS} FROM {TABLE} c CROSS JOIN {TABLE} i {NAMES}
          WHERE i.conversation_id = c.conversation_id"
    ));
    let position = to_i64(after.position);
    sql.push(" AND c.updated_position >= ?", Bind::Int(position));
    sql.push(" AND (c.updated_position > ?", Bind::Int(position));
    sql.push(" OR c.conversation_id > ?)", Bind::Uuid(after.conversation));
    if let Some(scope) = scope {
        sql.filter(" AND", "i", scope);
    }
    sql.push(
        " ORDER BY c.updated_position, c.conversation_id LIMIT ?",
        Bind::Int(i64::from(limit)),
    );
    sql.fetch(db).await
}

/// How many of the texter's conversations in the campaign need a reply (the
/// texter's partial `needs_reply` index: few rows).
pub async fn needs_reply_count(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
    texter: MemberId,
) -> StoreResult<u64> {
    let count: i64 = on_reader!(db, |pool| {
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {TABLE}
              WHERE org_id = $1 AND texter_id = $2 AND needs_reply AND campaign_id = $3
                AND holder = 'texter'"
        )))
        .bind(Uuid::from(org))
        .bind(Uuid::from(texter))
        .bind(Uuid::from(campaign))
        .fetch_one(pool)
        .await?
    });
    Ok(u64::try_from(count).unwrap_or(0))
}

/// How many of the campaign's conversations each holder has now (texter,
/// pool, escalated): the campaign's metrics show them.
pub async fn holder_counts(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
) -> StoreResult<std::collections::BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT holder, COUNT(*) FROM {TABLE}
              WHERE org_id = $1 AND campaign_id = $2 GROUP BY holder"
        )))
        .bind(Uuid::from(org))
        .bind(Uuid::from(campaign))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().collect())
}
