//! The texters' inbox: their conversations newest activity first (staff
//! see the org's), marking one read, and live streams of the changes as
//! the inbox read model applies them — fed by one task per server that
//! reads each batch's changed rows once and hands them to every stream.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use textbank_domain::handling::Holder;
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::ConversationRef;
use textbank_domain::texter::{self, TexterEvent};
use textbank_domain::{CampaignId, ConversationId, MemberId, OrgId, Permission, Role};
use textbank_projections::Projector;
use textbank_projections::inbox::{
    self, ChangeCursor, Inbox, InboxConversation, InboxFilter, ReviewFilter,
};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::{App, AppError, Caller};

/// Conversations per page unless the request says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;
/// Live streams one organization may hold open on one server, and all
/// organizations together: each is a connection and a task.
pub const MAX_STREAMS_PER_ORG: usize = 200;
/// Live streams one member (or unbound key) may hold at once: a few tabs,
/// never enough to lock the rest of the org out of its share.
pub const MAX_STREAMS_PER_MEMBER: usize = 5;
pub const MAX_STREAMS: usize = 2_000;
/// Changed rows read per query by the feed and by a stream catching up.
const CHANGES_PAGE: u32 = 200;
/// Batches of changes the feed keeps for streams slow to take them; one
/// that falls further behind catches up from the database.
const FEED_BUFFER: usize = 256;
/// How often the feed looks without a wake-up (to notice it has no
/// listeners left, or progress published by no follower in this process).
const FEED_POLL: Duration = Duration::from_secs(1);
const CURSOR_PREFIX: &str = "inbox:";

/// Which conversations of the inbox to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboxStatus {
    #[default]
    All,
    NeedsReply,
}

impl FromStr for InboxStatus {
    type Err = AppError;

    fn from_str(value: &str) -> Result<Self, AppError> {
        match value {
            "all" => Ok(Self::All),
            "needs_reply" => Ok(Self::NeedsReply),
            _ => Err(AppError::Invalid {
                field: "status",
                message: "status must be needs_reply or all".into(),
            }),
        }
    }
}

/// A request for one page of an inbox.
#[derive(Debug, Clone, Default)]
pub struct InboxRequest {
    pub status: InboxStatus,
    pub campaign_id: Option<CampaignId>,
    /// Staff: one texter's conversations (texters always get their own).
    pub texter_id: Option<MemberId>,
    /// Only those held so (staff: the pool, the escalation queue).
    pub holder: Option<Holder>,
    /// Only those with this tag.
    pub tag_id: Option<Uuid>,
    /// Message review's filters (opted out, older than, text).
    pub review: ReviewFilter,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Wait until the inbox has applied the log up to here.
    pub min_position: Option<u64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InboxPage {
    pub conversations: Vec<InboxConversation>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
    /// The inbox had applied the log at least up to here.
    pub position: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarkedRead {
    pub conversation_id: ConversationId,
    /// Pass as `min_position` to list the inbox with the read applied.
    pub position: u64,
}

fn corrupt(err: impl std::fmt::Display) -> AppError {
    AppError::Inconsistent(err.to_string())
}

fn encode_cursor(last_position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last_position}"))
}

fn decode_cursor(cursor: &str) -> Result<u64, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse().ok())
        .ok_or_else(|| AppError::Invalid {
            field: "cursor",
            message: "cursor is not one this endpoint returned".into(),
        })
}

/// The id of a streamed change: where a reconnecting client resumes
/// (`Last-Event-ID`).
pub fn event_id(row: &InboxConversation) -> String {
    let cursor = ChangeCursor::of(row);
    format!("{}.{}", cursor.position, cursor.conversation)
}

fn parse_event_id(id: &str) -> Result<ChangeCursor, AppError> {
    id.split_once('.')
        .and_then(|(position, conversation)| {
            Some(ChangeCursor {
                position: position.parse().ok()?,
                conversation: Uuid::parse_str(conversation).ok()?,
            })
        })
        .ok_or_else(|| AppError::Invalid {
            field: "Last-Event-ID",
            message: "Last-Event-ID is not an event id this stream sent".into(),
        })
}

/// Whose conversations the caller may list: texters their own, staff the
/// org's (or one texter's). Compliance reads conversations too, so it may
/// list them.
fn scope(
    caller: &Caller,
    texter: Option<MemberId>,
    campaign: Option<CampaignId>,
    status: InboxStatus,
    holder: Option<Holder>,
) -> Result<InboxFilter, AppError> {
    let (texter, holder) = match caller.role {
        Role::Texter => {
            let me = caller.member_id.ok_or_else(|| {
                AppError::Forbidden("a texter's inbox needs an API key bound to the texter".into())
            })?;
            if texter.is_some_and(|asked| asked != me) {
                return Err(AppError::Forbidden(
                    "texters see only their own conversations".into(),
                ));
            }
            if holder.is_some_and(|asked| asked != Holder::Texter) {
                return Err(AppError::Forbidden(
                    "texters see only the conversations they hold".into(),
                ));
            }
            // Released and escalated conversations are no texter's.
            (Some(me), Some(Holder::Texter))
        }
        Role::Owner | Role::Admin | Role::Manager | Role::Compliance => (texter, holder),
        Role::Integration => {
            return Err(AppError::Forbidden(
                crate::conversation::INTEGRATIONS_READ_THE_FEED.into(),
            ));
        }
    };
    Ok(InboxFilter {
        org: caller.org_id,
        texter,
        campaign,
        needs_reply: status == InboxStatus::NeedsReply,
        holder,
        tag: None,
        with_lost: false,
        review: Default::default(),
    })
}

impl App {
    /// One page of the caller's inbox, newest activity first.
    pub async fn inbox(
        &self,
        caller: &Caller,
        request: InboxRequest,
    ) -> Result<InboxPage, AppError> {
        let mut filter = scope(
            caller,
            request.texter_id,
            request.campaign_id,
            request.status,
            request.holder,
        )?;
        filter.tag = request.tag_id;
        filter.review = request.review;
        let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_LIMIT}"),
            });
        }
        let before = request.cursor.as_deref().map(decode_cursor).transpose()?;
        let projector = Inbox::live();
        if let Some(position) = request.min_position {
            self.wait_for_projection(&projector, position).await?;
        }
        // Read before the rows, so the rows reflect at least this much.
        let position = self
            .events()
            .checkpoint(projector.name())
            .await?
            .unwrap_or(0);
        let mut conversations = inbox::page(self.database(), &filter, before, limit + 1).await?;
        let next_cursor = if conversations.len() > limit as usize {
            conversations.truncate(limit as usize);
            conversations
                .last()
                .map(|row| encode_cursor(row.last_position))
        } else {
            None
        };
        Ok(InboxPage {
            conversations,
            next_cursor,
            position,
        })
    }

    /// Marks the conversation read for its texter: its unread count starts
    /// again from zero. Recorded on the texter's stream, since the inbox is
    /// rebuilt from the log.
    pub async fn mark_read(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<MarkedRead, AppError> {
        caller
            .require(Permission::Send)
            .or_else(|_| caller.require(Permission::AssignContacts))?;
        let conversation = self.conversation_in_reach(caller, id, true).await?;
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let event = TexterEvent::ConversationRead {
            conversation: ConversationRef {
                conversation_id: id,
                campaign_id: conversation.campaign_id,
                texter_id: conversation.texter_id,
            },
            phone,
        };
        let stream = texter::stream_id(caller.org_id, conversation.texter_id);
        let position = self
            .append_any(&stream, &[event], &caller.metadata())
            .await?;
        Ok(MarkedRead {
            conversation_id: id,
            position,
        })
    }

    /// A live stream of the caller's inbox rows as they change, from now
    /// on, or from `resume` (a `Last-Event-ID`) when given.
    pub async fn inbox_stream(
        &self,
        caller: &Caller,
        streams: &Arc<InboxStreams>,
        texter_id: Option<MemberId>,
        campaign_id: Option<CampaignId>,
        resume: Option<&str>,
    ) -> Result<InboxSubscription, AppError> {
        let mut filter = scope(caller, texter_id, campaign_id, InboxStatus::All, None)?;
        // A texter's stream says when a conversation leaves them.
        filter.with_lost = caller.role == Role::Texter;
        let resume = resume.map(parse_event_id).transpose()?;
        let slot = streams.take_slot(caller.org_id, caller.stream_holder())?;
        let start = self
            .events()
            .checkpoint(Inbox::live().name())
            .await?
            .unwrap_or(0);
        let (receiver, seen) = streams.subscribe(self, start);
        Ok(InboxSubscription {
            app: self.clone(),
            filter,
            receiver,
            seen: resume.unwrap_or(seen),
            catching_up: resume.is_some(),
            _slot: slot,
        })
    }

    /// Positions the background follower has applied the inbox to.
    fn inbox_progress(&self) -> Option<watch::Receiver<u64>> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(Inbox::live().name())
            .cloned()
    }
}

/// The live inbox streams of one server: how many are open, and the feed
/// that reads the changed rows once for all of them.
pub struct InboxStreams {
    per_member: usize,
    per_org: usize,
    total: usize,
    state: Mutex<StreamsState>,
}

#[derive(Default)]
struct StreamsState {
    open: HashMap<OrgId, usize>,
    /// By member (or unbound key).
    held: HashMap<Uuid, usize>,
    total: usize,
    feed: Option<Feed>,
}

struct Feed {
    sender: broadcast::Sender<Arc<[InboxConversation]>>,
    /// Every change up to here has been sent.
    seen: ChangeCursor,
}

impl Default for InboxStreams {
    fn default() -> Self {
        Self::new(MAX_STREAMS_PER_MEMBER, MAX_STREAMS_PER_ORG, MAX_STREAMS)
    }
}

impl InboxStreams {
    pub fn new(per_member: usize, per_org: usize, total: usize) -> Self {
        Self {
            per_member,
            per_org,
            total,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StreamsState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a stream of `holder` (a member, or an unbound key) in, unless
    /// the holder, its org or the server is at the limit.
    pub fn take_slot(self: &Arc<Self>, org: OrgId, holder: Uuid) -> Result<StreamSlot, AppError> {
        let mut state = self.lock();
        let held = state.held.get(&holder).copied().unwrap_or(0);
        if held >= self.per_member {
            return Err(AppError::TooMany {
                code: "too_many_member_streams",
                message: format!(
                    "you have {held} live inbox streams open (at most {}); close one first",
                    self.per_member
                ),
            });
        }
        let open = state.open.get(&org).copied().unwrap_or(0);
        if open >= self.per_org || state.total >= self.total {
            return Err(AppError::Unavailable {
                code: "too_many_streams",
                message: format!(
                    "too many live inbox streams are open (at most {} per organization); \
                     close one or try again later",
                    self.per_org
                ),
            });
        }
        state.open.insert(org, open + 1);
        state.held.insert(holder, held + 1);
        state.total += 1;
        Ok(StreamSlot {
            streams: Arc::clone(self),
            org,
            holder,
        })
    }

    /// The feed's changes from now on, and the point they start after;
    /// starts the feed (from `start`) if none runs.
    fn subscribe(
        self: &Arc<Self>,
        app: &App,
        start: u64,
    ) -> (broadcast::Receiver<Arc<[InboxConversation]>>, ChangeCursor) {
        let mut state = self.lock();
        if let Some(feed) = &state.feed {
            return (feed.sender.subscribe(), feed.seen);
        }
        let (sender, receiver) = broadcast::channel(FEED_BUFFER);
        let seen = ChangeCursor::through(start);
        state.feed = Some(Feed { sender, seen });
        tokio::spawn(run_feed(app.clone(), Arc::clone(self), seen));
        (receiver, seen)
    }

    /// Sends changed rows (if any) and records how far the feed has got,
    /// under the lock a new stream subscribes under: it gets either these
    /// rows or a starting point after them, never neither.
    fn publish(&self, rows: Vec<InboxConversation>, seen: ChangeCursor) {
        if let Some(feed) = &mut self.lock().feed {
            if !rows.is_empty() {
                // No receivers is not an error: the feed stops soon.
                let _ = feed.sender.send(rows.into());
            }
            feed.seen = seen;
        }
    }

    /// Stops the feed if no stream listens (or `always`); true if stopped.
    fn stop_feed(&self, always: bool) -> bool {
        let mut state = self.lock();
        let unheard = state
            .feed
            .as_ref()
            .is_none_or(|feed| feed.sender.receiver_count() == 0);
        if always || unheard {
            state.feed = None;
            return true;
        }
        false
    }

    /// Open streams: of `org`, and in all.
    pub fn open(&self, org: OrgId) -> (usize, usize) {
        let state = self.lock();
        (state.open.get(&org).copied().unwrap_or(0), state.total)
    }
}

/// One open stream's place in the limits; freed when dropped.
pub struct StreamSlot {
    streams: Arc<InboxStreams>,
    org: OrgId,
    holder: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut state = self.streams.lock();
        if let Some(open) = state.open.get_mut(&self.org) {
            *open -= 1;
            if *open == 0 {
                state.open.remove(&self.org);
            }
        }
        if let Some(held) = state.held.get_mut(&self.holder) {
            *held -= 1;
            if *held == 0 {
                state.held.remove(&self.holder);
            }
        }
        state.total = state.total.saturating_sub(1);
    }
}

/// Follows the inbox read model and sends the rows each applied batch
/// changed, once, to every stream; stops when no stream is left or the
/// follower stops (server shutdown).
async fn run_feed(app: App, streams: Arc<InboxStreams>, mut seen: ChangeCursor) {
    let mut progress = app.inbox_progress();
    loop {
        let reached = match progress.as_mut() {
            Some(progress) => match tokio::time::timeout(FEED_POLL, progress.changed()).await {
                Ok(Err(_)) => {
                    streams.stop_feed(true);
                    return;
                }
                Ok(Ok(())) | Err(_) => *progress.borrow_and_update(),
            },
            // No follower in this process: look at the checkpoint.
            None => {
                tokio::time::sleep(FEED_POLL).await;
                match app.events().checkpoint(Inbox::live().name()).await {
                    Ok(position) => position.unwrap_or(0),
                    Err(err) => {
                        tracing::warn!(error = %err, "inbox feed could not read its checkpoint");
                        continue;
                    }
                }
            }
        };
        if streams.stop_feed(false) {
            return;
        }
        let through = ChangeCursor::through(reached);
        if through <= seen {
            continue;
        }
        let mut complete = true;
        loop {
            match inbox::changes(app.database(), seen, None, CHANGES_PAGE).await {
                Ok(rows) => {
                    let Some(last) = rows.last() else { break };
                    seen = ChangeCursor::of(last);
                    let full = rows.len() == CHANGES_PAGE as usize;
                    streams.publish(rows, seen);
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    // Tried again on the next round, from the same point.
                    tracing::warn!(error = %err, "inbox feed could not read changes");
                    complete = false;
                    break;
                }
            }
        }
        if complete && through > seen {
            // Batches commit whole and in order: every row changed up to
            // `reached` was in what was just read.
            seen = through;
            streams.publish(Vec::new(), seen);
        }
    }
}

/// A change a live inbox stream sends.
#[derive(Debug, Clone)]
pub enum InboxChange {
    /// The row as it is now.
    Changed(InboxConversation),
    /// The row left the caller's inbox (reassigned, released, escalated).
    Lost(InboxConversation),
}

impl InboxChange {
    pub fn row(&self) -> &InboxConversation {
        match self {
            Self::Changed(row) | Self::Lost(row) => row,
        }
    }

    fn of(filter: &InboxFilter, row: &InboxConversation) -> Option<Self> {
        if filter.matches(row) {
            Some(Self::Changed(row.clone()))
        } else if filter.with_lost && filter.lost(row) {
            Some(Self::Lost(row.clone()))
        } else {
            None
        }
    }
}

/// One caller's live view of their inbox.
pub struct InboxSubscription {
    app: App,
    filter: InboxFilter,
    receiver: broadcast::Receiver<Arc<[InboxConversation]>>,
    /// Changes up to here have been handed out (or were before the start).
    seen: ChangeCursor,
    /// Reading missed changes from the database: after falling behind the
    /// feed, or when resuming from an earlier event.
    catching_up: bool,
    _slot: StreamSlot,
}

impl InboxSubscription {
    /// The caller's rows changed since the last call, in change order;
    /// `None` once the feed has stopped (server shutdown).
    pub async fn next(&mut self) -> Option<Result<Vec<InboxChange>, AppError>> {
        loop {
            if self.catching_up {
                let rows = match inbox::changes(
                    self.app.database(),
                    self.seen,
                    Some(&self.filter),
                    CHANGES_PAGE,
                )
                .await
                {
                    Ok(rows) => rows,
                    Err(err) => return Some(Err(err.into())),
                };
                self.catching_up = rows.len() == CHANGES_PAGE as usize;
                if let Some(last) = rows.last() {
                    self.seen = self.seen.max(ChangeCursor::of(last));
                    let changes: Vec<InboxChange> = rows
                        .iter()
                        .filter_map(|row| InboxChange::of(&self.filter, row))
                        .collect();
                    if !changes.is_empty() {
                        return Some(Ok(changes));
                    }
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(rows) => {
                    // Rows at or before `seen` were handed out already
                    // (a catch-up read them with their latest state).
                    let fresh: Vec<InboxChange> = rows
                        .iter()
                        .filter(|row| ChangeCursor::of(row) > self.seen)
                        .filter_map(|row| InboxChange::of(&self.filter, row))
                        .collect();
                    if let Some(last) = rows.last() {
                        self.seen = self.seen.max(ChangeCursor::of(last));
                    }
                    if !fresh.is_empty() {
                        return Some(Ok(fresh));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(1234)).unwrap(), 1234);
        for bad in ["", "nonsense", "aW5ib3g6", "aW5ib3g6eA", "%%%"] {
            assert!(
                matches!(
                    decode_cursor(bad),
                    Err(AppError::Invalid {
                        field: "cursor",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn event_ids_name_the_change_they_follow() {
        let cursor = parse_event_id("42.0190a1b2-0000-7000-8000-000000000001").unwrap();
        assert_eq!(cursor.position, 42);
        assert!(parse_event_id("42").is_err());
        assert!(parse_event_id("x.0190a1b2-0000-7000-8000-000000000001").is_err());
    }

    #[test]
    fn streams_are_bounded_per_org_and_in_all_and_freed_when_dropped() {
        let streams = Arc::new(InboxStreams::new(5, 2, 3));
        let (a, b) = (OrgId::new(), OrgId::new());
        let first = streams.take_slot(a, Uuid::now_v7()).unwrap();
        let _second = streams.take_slot(a, Uuid::now_v7()).unwrap();
        assert!(matches!(
            streams.take_slot(a, Uuid::now_v7()),
            Err(AppError::Unavailable {
                code: "too_many_streams",
                ..
            })
        ));
        let _third = streams.take_slot(b, Uuid::now_v7()).unwrap();
        assert!(
            streams.take_slot(b, Uuid::now_v7()).is_err(),
            "the server-wide limit"
        );
        assert_eq!(streams.open(a), (2, 3));
        drop(first);
        assert_eq!(streams.open(a), (1, 2));
        assert!(streams.take_slot(a, Uuid::now_v7()).is_ok());
    }

    #[test]
    fn one_member_holds_a_few_streams_and_leaves_the_rest_to_the_org() {
        let streams = Arc::new(InboxStreams::new(2, 10, 100));
        let (org, member) = (OrgId::new(), Uuid::now_v7());
        let first = streams.take_slot(org, member).unwrap();
        let _second = streams.take_slot(org, member).unwrap();
        assert!(matches!(
            streams.take_slot(org, member),
            Err(AppError::TooMany {
                code: "too_many_member_streams",
                ..
            })
        ));
        assert!(streams.take_slot(org, Uuid::now_v7()).is_ok());
        drop(first);
        assert!(streams.take_slot(org, member).is_ok());
    }
}
