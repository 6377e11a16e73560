//! Read model "inbox": one row per conversation as its texter's inbox lists
//! it — the latest message, whether it waits for a reply, how many of the
//! voter's messages are unread, whether the number opted out — from the
//! recipient streams and the texters' `ConversationRead` events. The
//! queries are in `inbox/query.rs`.

mod query;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, QueryBuilder};
use textbank_domain::DomainEvent;
use textbank_domain::handling::Holder;
use textbank_domain::keywords::Keyword;
use textbank_domain::message::MessageKind;
use textbank_domain::recipient::{ConversationRef, RecipientEvent};
use textbank_domain::texter::TexterEvent;
use textbank_store::{StoreError, StoreTx, on_tx};
use uuid::Uuid;

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector};

pub use query::{
    AppliedTag, ChangeCursor, InboxConversation, InboxFilter, LastMessage, ReviewFilter, changes,
    holder_counts, needs_reply_count, page,
};

/// The read model's table, by its live name.
pub const TABLE: &str = "inbox_conversations";
/// How much of the latest message a row keeps.
const PREVIEW_CHARS: usize = 200;
/// 16 binds a row: well under both engines' limits per statement.
const ROWS_PER_STATEMENT: usize = 1_000;

pub struct Inbox {
    tables: Tables,
}

impl Inbox {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

#[async_trait]
impl Projector for Inbox {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "inbox",
            Tables::Next => "inbox_next",
        }
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let Some(last) = batch.events().last() else {
            return Ok(());
        };
        let steps = self.steps(batch)?;
        if steps.is_empty() {
            return Ok(());
        }
        let fold = Fold::of(steps);
        let table = self.tables.name(TABLE);
        // Every row this batch touches carries the batch's last position:
        // live streams ask for rows changed after the batch they last saw.
        let updated = to_i64(last.position);
        let (opened, existing): (Vec<_>, Vec<_>) = fold
            .rows
            .values()
            .filter_map(|row| row.last.as_ref().map(|last| (row, last)))
            .partition(|(row, _)| row.opened);
        for chunk in opened.chunks(ROWS_PER_STATEMENT) {
            write_rows(tx, &table, chunk, updated, false).await?;
        }
        for chunk in existing.chunks(ROWS_PER_STATEMENT) {
            write_rows(tx, &table, chunk, updated, true).await?;
        }
        // Conversations only read in this batch: one statement each, as
        // reads are people's clicks, a few per batch at most.
        for row in fold
            .rows
            .values()
            .filter(|row| row.last.is_none() && row.read_position > 0)
        {
            let sql = format!(
                "UPDATE {table} SET unread = 0, read_position = $1, updated_position = $2
                  WHERE conversation_id = $3"
            );
            on_tx!(tx, |conn| {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(row.read_position)
                    .bind(updated)
                    .bind(Uuid::from(row.conversation.conversation_id))
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(StoreError::from)?
            });
        }
        // Changes of holder and tags are people's actions too: a few per
        // batch, one statement each, after the rows they change exist.
        for row in fold.rows.values() {
            write_handling(tx, &table, row, updated).await?;
        }
        // An opt-out (or opt-in) is the number's, in every conversation the
        // org has with it; the rows written above are included.
        for ((org, phone), opted_out) in &fold.opt_outs {
            let sql = format!(
                "UPDATE {table} SET opted_out = $1, needs_reply = (awaiting_reply AND $2),
                        updated_position = $3
                  WHERE phone = $4 AND org_id = $5"
            );
            on_tx!(tx, |conn| {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(*opted_out)
                    .bind(!*opted_out)
                    .bind(updated)
                    .bind(phone.as_str())
                    .bind(*org)
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(StoreError::from)?
            });
        }
        Ok(())
    }

    fn tables(&self) -> &'static [&'static str] {
        &[TABLE]
    }

    fn next(&self) -> Option<Arc<dyn Projector>> {
        Some(Arc::new(Self {
            tables: Tables::Next,
        }))
    }
}

/// What one event does to the inbox.
enum Step<'a> {
    Message {
        conversation: ConversationRef,
        org: Uuid,
        phone: &'a str,
        body: &'a str,
        inbound: bool,
        /// Waits for the texter: the voter's, and not an opt-out keyword.
        awaiting: bool,
        /// The campaign's initial message: the conversation starts here.
        opens: bool,
    },
    Read {
        conversation: ConversationRef,
        org: Uuid,
        phone: String,
    },
    OptOut {
        org: Uuid,
        phone: &'a str,
        opted_out: bool,
    },
    /// The conversation changed hands (`conversation.texter_id`: its
    /// texter now, or its last one while it is in the pool or escalated).
    Hand {
        conversation: ConversationRef,
        org: Uuid,
        holder: Holder,
        /// The texter who held it just before, if one did.
        previous: Option<textbank_domain::MemberId>,
        escalation: Option<&'a str>,
    },
    Tag {
        conversation: ConversationRef,
        org: Uuid,
        tag: AppliedTag,
        applied: bool,
    },
}

/// One step with where and when it happened.
struct Placed<'a> {
    position: u64,
    at: DateTime<Utc>,
    step: Step<'a>,
}

impl Inbox {
    /// The batch's steps in log order. Most events are carrier reports and
    /// dispatch records: a batch without one relevant type is done at once.
    fn steps<'a>(&self, batch: Batch<'a>) -> Result<Vec<Placed<'a>>, ProjectionError> {
        let relevant = |event_type: &str| {
            matches!(
                event_type,
                "MessageSendClicked"
                    | "AutoReplyQueued"
                    | "ReplyReceived"
                    | "OptOutRecorded"
                    | "OptInRecorded"
                    | "ConversationRead"
                    | "TagApplied"
                    | "TagRemoved"
                    | "ConversationEscalated"
                    | "EscalationResolved"
                    | "ConversationReassigned"
                    | "ConversationReleased"
            )
        };
        let mut steps = Vec::new();
        if !batch
            .events()
            .iter()
            .any(|event| relevant(&event.event_type))
        {
            return Ok(steps);
        }
        for item in batch.recipient_events(self.name()) {
            let (event, parsed) = item?;
            if !relevant(&event.event_type) {
                continue;
            }
            let Some(org) = event.metadata.org_id.map(Uuid::from) else {
                continue;
            };
            let step = match parsed {
                RecipientEvent::MessageSendClicked(click) => Step::Message {
                    conversation: ConversationRef {
                        conversation_id: click.conversation_id,
                        campaign_id: click.campaign_id,
                        texter_id: click.evidence.texter_id,
                    },
                    org,
                    phone: click.phone.as_str(),
                    body: &click.body,
                    inbound: false,
                    awaiting: false,
                    opens: click.evidence.kind == MessageKind::Initial,
                },
                RecipientEvent::AutoReplyQueued {
                    conversation: Some(conversation),
                    phone,
                    body,
                    ..
                } => Step::Message {
                    conversation: *conversation,
                    org,
                    phone: phone.as_str(),
                    body,
                    inbound: false,
                    awaiting: false,
                    opens: false,
                },
                RecipientEvent::ReplyReceived {
                    conversation: Some(conversation),
                    phone,
                    body,
                    keyword,
                    ..
                } => Step::Message {
                    conversation: *conversation,
                    org,
                    phone: phone.as_str(),
                    body,
                    inbound: true,
                    awaiting: *keyword != Some(Keyword::OptOut),
                    opens: false,
                },
                RecipientEvent::OptOutRecorded { phone, .. } => Step::OptOut {
                    org,
                    phone: phone.as_str(),
                    opted_out: true,
                },
                RecipientEvent::OptInRecorded { phone, .. } => Step::OptOut {
                    org,
                    phone: phone.as_str(),
                    opted_out: false,
                },
                RecipientEvent::TagApplied {
                    conversation,
                    tag_id,
                    name,
                    ..
                }
                | RecipientEvent::TagRemoved {
                    conversation,
                    tag_id,
                    name,
                    ..
                } => Step::Tag {
                    conversation: *conversation,
                    org,
                    tag: AppliedTag {
                        tag_id: *tag_id,
                        name: name.clone(),
                    },
                    applied: matches!(parsed, RecipientEvent::TagApplied { .. }),
                },
                RecipientEvent::ConversationEscalated {
                    conversation,
                    reason,
                    ..
                } => Step::Hand {
                    conversation: *conversation,
                    org,
                    holder: Holder::Escalated,
                    previous: Some(conversation.texter_id),
                    escalation: Some(reason),
                },
                RecipientEvent::EscalationResolved {
                    conversation,
                    returned_to,
                    ..
                } => Step::Hand {
                    conversation: *conversation,
                    org,
                    holder: if returned_to.is_some() {
                        Holder::Texter
                    } else {
                        Holder::Pool
                    },
                    previous: None,
                    escalation: None,
                },
                RecipientEvent::ConversationReassigned {
                    conversation, from, ..
                } => Step::Hand {
                    conversation: *conversation,
                    org,
                    holder: Holder::Texter,
                    previous: *from,
                    escalation: None,
                },
                RecipientEvent::ConversationReleased { conversation, .. } => Step::Hand {
                    conversation: *conversation,
                    org,
                    holder: Holder::Pool,
                    previous: Some(conversation.texter_id),
                    escalation: None,
                },
                _ => continue,
            };
            steps.push(Placed {
                position: event.position,
                at: event.recorded_at,
                step,
            });
        }
        let mut reads = false;
        for event in batch.events() {
            if event.event_type != "ConversationRead"
                || !event.stream_id.as_str().starts_with("texter-")
            {
                continue;
            }
            let Some(org) = event.metadata.org_id.map(Uuid::from) else {
                continue;
            };
            let parsed =
                TexterEvent::from_parts(&event.event_type, &event.data).map_err(|err| {
                    ProjectionError::Apply {
                        projector: self.name(),
                        position: event.position,
                        reason: err.to_string(),
                    }
                })?;
            if let Some(TexterEvent::ConversationRead {
                conversation,
                phone,
            }) = parsed
            {
                reads = true;
                steps.push(Placed {
                    position: event.position,
                    at: event.recorded_at,
                    step: Step::Read {
                        conversation,
                        org,
                        phone: phone.as_str().to_owned(),
                    },
                });
            }
        }
        if reads {
            steps.sort_by_key(|placed| placed.position);
        }
        Ok(steps)
    }
}

/// A conversation's latest message as of the end of the batch.
struct Latest<'a> {
    body: &'a str,
    inbound: bool,
    awaiting: bool,
    at: DateTime<Utc>,
    position: u64,
}

/// What the batch did to one conversation.
struct Touched<'a> {
    conversation: ConversationRef,
    org: Uuid,
    phone: String,
    /// Opened in this batch: no row exists yet.
    opened: bool,
    started_at: DateTime<Utc>,
    last: Option<Latest<'a>>,
    /// The voter's messages after the batch's last read (or all of the
    /// batch's, when it has no read).
    unread: i64,
    /// The batch's last read, 0 for none.
    read_position: i64,
    /// The batch's last change of holder.
    hand: Option<Hand<'a>>,
    /// Tags applied (true) and removed (false), in log order.
    tags: Vec<(AppliedTag, bool)>,
}

/// A change of holder as the row takes it.
struct Hand<'a> {
    texter: Uuid,
    holder: Holder,
    previous: Option<Uuid>,
    escalation: Option<&'a str>,
}

/// The batch folded in memory: each conversation's outcome and each
/// number's final opt-out state.
struct Fold<'a> {
    rows: HashMap<Uuid, Touched<'a>>,
    opt_outs: HashMap<(Uuid, String), bool>,
}

impl<'a> Fold<'a> {
    fn of(steps: Vec<Placed<'a>>) -> Self {
        let mut fold = Fold {
            rows: HashMap::new(),
            opt_outs: HashMap::new(),
        };
        for Placed { position, at, step } in steps {
            match step {
                Step::Message {
                    conversation,
                    org,
                    phone,
                    body,
                    inbound,
                    awaiting,
                    opens,
                } => {
                    let row = fold.touch(conversation, org, phone, at);
                    row.opened |= opens;
                    row.last = Some(Latest {
                        body,
                        inbound,
                        awaiting,
                        at,
                        position,
                    });
                    if inbound {
                        row.unread += 1;
                    }
                }
                Step::Read {
                    conversation,
                    org,
                    phone,
                } => {
                    let row = fold.touch(conversation, org, &phone, at);
                    row.unread = 0;
                    row.read_position = to_i64(position);
                }
                Step::OptOut {
                    org,
                    phone,
                    opted_out,
                } => {
                    fold.opt_outs.insert((org, phone.to_owned()), opted_out);
                }
                Step::Hand {
                    conversation,
                    org,
                    holder,
                    previous,
                    escalation,
                } => {
                    // The last change wins, as it would in batches of one:
                    // the row is the same however the log is cut.
                    fold.touch(conversation, org, "", at).hand = Some(Hand {
                        texter: Uuid::from(conversation.texter_id),
                        holder,
                        previous: previous.map(Uuid::from),
                        escalation,
                    });
                }
                Step::Tag {
                    conversation,
                    org,
                    tag,
                    applied,
                } => {
                    fold.touch(conversation, org, "", at)
                        .tags
                        .push((tag, applied));
                }
            }
        }
        fold
    }

    fn touch(
        &mut self,
        conversation: ConversationRef,
        org: Uuid,
        phone: &str,
        at: DateTime<Utc>,
    ) -> &mut Touched<'a> {
        self.rows
            .entry(Uuid::from(conversation.conversation_id))
            .or_insert_with(|| Touched {
                conversation,
                org,
                phone: phone.to_owned(),
                opened: false,
                started_at: at,
                last: None,
                unread: 0,
                read_position: 0,
                hand: None,
                tags: Vec::new(),
            })
    }
}

/// Writes rows that have a latest message: plain inserts for conversations
/// opened in this batch (SQLite pays for a statement journal on upserts),
/// upserts for the others.
async fn write_rows(
    tx: &mut StoreTx,
    table: &str,
    rows: &[(&Touched<'_>, &Latest<'_>)],
    updated: i64,
    existing: bool,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let insert = format!(
        "INSERT INTO {table} (conversation_id, org_id, campaign_id, texter_id, phone, started_at,
                              last_body, last_direction, last_at, last_position, awaiting_reply,
                              needs_reply, opted_out, unread, read_position, updated_position) "
    );
    // A read in the batch replaces the unread count; otherwise the batch's
    // inbound messages add to it. The opt-out state is the number's and
    // stays (the opt-out pass after this one updates it).
    let upsert = format!(
        " ON CONFLICT (conversation_id) DO UPDATE SET
            last_body = excluded.last_body,
            last_direction = excluded.last_direction,
            last_at = excluded.last_at,
            last_position = excluded.last_position,
            awaiting_reply = excluded.awaiting_reply,
            needs_reply = (excluded.awaiting_reply AND NOT {table}.opted_out),
            unread = CASE WHEN excluded.read_position > 0 THEN excluded.unread
                          ELSE {table}.unread + excluded.unread END,
            read_position = CASE WHEN excluded.read_position > 0 THEN excluded.read_position
                                 ELSE {table}.read_position END,
            updated_position = excluded.updated_position"
    );
    on_tx!(tx, |conn| {
        let mut query = QueryBuilder::new(insert.clone());
        query.push_values(rows, |mut values, (row, last)| {
            values
                .push_bind(Uuid::from(row.conversation.conversation_id))
                .push_bind(row.org)
                .push_bind(Uuid::from(row.conversation.campaign_id))
                .push_bind(Uuid::from(row.conversation.texter_id))
                .push_bind(row.phone.clone())
                .push_bind(row.started_at)
                .push_bind(preview(last.body))
                .push_bind(if last.inbound { "inbound" } else { "outbound" })
                .push_bind(last.at)
                .push_bind(to_i64(last.position))
                .push_bind(last.awaiting)
                .push_bind(last.awaiting)
                .push_bind(false)
                .push_bind(row.unread)
                .push_bind(row.read_position)
                .push_bind(updated);
        });
        if existing {
            query.push(upsert.as_str());
        }
        query
            .build()
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(StoreError::from)?
    });
    Ok(())
}

/// Writes the batch's change of holder and of tags to a row that exists.
async fn write_handling(
    tx: &mut StoreTx,
    table: &str,
    row: &Touched<'_>,
    updated: i64,
) -> Result<(), StoreError> {
    let id = Uuid::from(row.conversation.conversation_id);
    if let Some(hand) = &row.hand {
        let sql = format!(
            "UPDATE {table} SET texter_id = $1, holder = $2, previous_texter_id = $3,
                    escalation_reason = $4, holder_position = $5, updated_position = $5
              WHERE conversation_id = $6"
        );
        on_tx!(tx, |conn| {
            sqlx::query(AssertSqlSafe(sql))
                .bind(hand.texter)
                .bind(hand.holder.as_str())
                .bind(hand.previous)
                .bind(hand.escalation)
                .bind(updated)
                .bind(id)
                .execute(conn)
                .await
                .map(|_| ())
                .map_err(StoreError::from)?
        });
    }
    if row.tags.is_empty() {
        return Ok(());
    }
    let select = format!("SELECT tags FROM {table} WHERE conversation_id = $1");
    let current: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar(AssertSqlSafe(select))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::from)?
    });
    let Some(current) = current else {
        return Ok(());
    };
    let corrupt =
        |err: serde_json::Error| StoreError::Corrupt(format!("{table}.tags of {id}: {err}"));
    let mut tags: Vec<AppliedTag> = serde_json::from_str(&current).map_err(corrupt)?;
    for (tag, applied) in &row.tags {
        tags.retain(|kept| kept.tag_id != tag.tag_id);
        if *applied {
            tags.push(tag.clone());
        }
    }
    let tags = serde_json::to_string(&tags).map_err(corrupt)?;
    let sql =
        format!("UPDATE {table} SET tags = $1, updated_position = $2 WHERE conversation_id = $3");
    on_tx!(tx, |conn| {
        sqlx::query(AssertSqlSafe(sql))
            .bind(tags)
            .bind(updated)
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(StoreError::from)?
    });
    Ok(())
}

/// The first characters of a message, cut at a character boundary.
fn preview(body: &str) -> String {
    match body.char_indices().nth(PREVIEW_CHARS) {
        Some((end, _)) => body[..end].to_owned(),
        None => body.to_owned(),
    }
}

/// Positions are stored as BIGINT; the log will not reach 2^63 events.
fn to_i64(position: u64) -> i64 {
    i64::try_from(position).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
