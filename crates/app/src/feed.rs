//! The organization's event feed for API clients (`GET /v1/events` and its
//! live stream): the org's events in log order, in a public, versioned
//! representation. It never carries another organization's events, hashes
//! of secrets (`*_hash` fields) or, for roles that may not read the audit,
//! where a request came from (IP addresses and user agents).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use textbank_domain::{Permission, allows};
use textbank_store::RecordedEvent;
use tokio::sync::watch;
use uuid::Uuid;

use crate::inbox::{InboxStreams, StreamSlot};
use crate::{App, AppError, Caller};

/// The representation's version, in every event (`"format"`).
pub const FORMAT: &str = "textbank.event.v1";
/// Events one page may hold, and how many a page holds unless asked.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// Event types one request may filter on, and the longest name.
const MAX_TYPES: usize = 50;
const MAX_TYPE_LEN: usize = 64;

/// How long a live feed waits for a wake-up before it reads anyway (one
/// can be lost while another process's listener reconnects).
const LIVE_POLL: Duration = Duration::from_secs(5);

/// Fields that say where a request came from: only roles that may read
/// the audit see them.
const NETWORK_FIELDS: [&str; 2] = ["ip", "user_agent"];

/// One event as API clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PublicEvent {
    /// `textbank.event.v1`.
    #[schema(value_type = String)]
    pub format: &'static str,
    /// The event's id: the receiver's key for deduplication.
    pub id: Uuid,
    /// Its place in the log; `after` a position resumes after it.
    pub position: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    /// When it happened: the click's time for a click, else when it was
    /// recorded.
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// The ids it concerns.
    pub subject: Subject,
    /// Who caused it (a key and member, a carrier webhook, the system).
    #[schema(value_type = Object)]
    pub actor: Value,
    /// The event's own fields (by `type` and `schema_version`).
    #[schema(value_type = Object)]
    pub data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The ids an event concerns, found in its data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Subject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texter_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// What a feed request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedQuery {
    /// Events after this position (0: from the start).
    pub after: u64,
    /// Only these event types (none: all).
    pub types: Vec<String>,
    pub limit: Option<u32>,
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FeedPage {
    pub events: Vec<PublicEvent>,
    /// The position to ask `after` next: the last event's, or the request's
    /// own when the page is empty.
    pub next_after: u64,
}

impl FeedQuery {
    /// Parses `types` as sent: comma-separated event type names.
    pub fn parse_types(raw: Option<&str>) -> Result<Vec<String>, AppError> {
        let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
            return Ok(Vec::new());
        };
        let types: Vec<String> = raw.split(',').map(|name| name.trim().to_owned()).collect();
        let well_formed = |name: &String| {
            (1..=MAX_TYPE_LEN).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if types.len() > MAX_TYPES || !types.iter().all(well_formed) {
            return Err(AppError::Invalid {
                field: "types",
                message: format!(
                    "types must be up to {MAX_TYPES} comma-separated event type names \
                     (letters and digits, e.g. MessageSendClicked,OptOutRecorded)"
                ),
            });
        }
        Ok(types)
    }
}

impl App {
    /// A page of the caller's organization's events after `query.after`.
    pub async fn event_feed(
        &self,
        caller: &Caller,
        query: &FeedQuery,
    ) -> Result<FeedPage, AppError> {
        caller.require(Permission::ReadEvents)?;
        // Positions are stored as signed 64-bit integers.
        if i64::try_from(query.after).is_err() {
            return Err(AppError::Invalid {
                field: "after",
                message: format!("after must be a position, at most {}", i64::MAX),
            });
        }
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::Invalid {
                field: "limit",
                message: format!("limit must be between 1 and {MAX_LIMIT}"),
            });
        }
        let recorded = self
            .events()
            .read_org(caller.org_id, query.after, limit as usize, &query.types)
            .await?;
        let network = allows(caller.role, Permission::ReadAudit);
        let events: Vec<PublicEvent> = recorded
            .into_iter()
            .map(|event| into_public_event(event, network))
            .collect();
        let next_after = events.last().map_or(query.after, |event| event.position);
        Ok(FeedPage { events, next_after })
    }
}

/// A live feed of the caller's organization's events: each page after the
/// last, as the log grows. Holds one of the caller's live-stream slots.
pub struct FeedSubscription {
    app: App,
    caller: Caller,
    query: FeedQuery,
    head: watch::Receiver<u64>,
    _slot: StreamSlot,
}

impl App {
    /// Opens a live feed after `query.after`, or after `resume` (a
    /// `Last-Event-ID`: the position of the last event received).
    pub fn event_stream(
        &self,
        caller: &Caller,
        streams: &Arc<InboxStreams>,
        mut query: FeedQuery,
        resume: Option<&str>,
    ) -> Result<FeedSubscription, AppError> {
        caller.require(Permission::ReadEvents)?;
        if let Some(resume) = resume {
            query.after = resume.trim().parse().map_err(|_| AppError::Invalid {
                field: "Last-Event-ID",
                message: "Last-Event-ID must be the position of an event (a whole number)".into(),
            })?;
        }
        let slot = streams.take_slot(caller.org_id, caller.stream_holder())?;
        Ok(FeedSubscription {
            app: self.clone(),
            caller: caller.clone(),
            query,
            head: self.events().subscribe(),
            _slot: slot,
        })
    }
}

impl FeedSubscription {
    /// The next events, waiting for the log to grow when none are new.
    pub async fn next(&mut self) -> Result<Vec<PublicEvent>, AppError> {
        loop {
            let page = self.app.event_feed(&self.caller, &self.query).await?;
            self.query.after = page.next_after;
            if !page.events.is_empty() {
                return Ok(page.events);
            }
            match tokio::time::timeout(LIVE_POLL, self.head.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                // The store is gone (shutting down): wait out the poll
                // rather than spin.
                Ok(Err(_)) => tokio::time::sleep(LIVE_POLL).await,
            }
        }
    }
}

/// The public representation of `event`; `network` keeps where its
/// request came from.
pub fn public_event(event: &RecordedEvent, network: bool) -> PublicEvent {
    into_public_event(event.clone(), network)
}

/// [`public_event`], moving the event's data instead of copying it (a page
/// of the feed is a thousand JSON trees).
pub fn into_public_event(event: RecordedEvent, network: bool) -> PublicEvent {
    let mut data = event.data;
    redact(&mut data, network);
    let mut subject = Subject::default();
    find_subject(&data, &mut subject);
    let occurred_at = data
        .get("clicked_at")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or(event.recorded_at, |at| at.with_timezone(&Utc));
    let metadata = &event.metadata;
    PublicEvent {
        format: FORMAT,
        id: event.event_id,
        position: event.position,
        event_type: event.event_type,
        schema_version: event.schema_version,
        occurred_at,
        recorded_at: event.recorded_at,
        subject,
        actor: serde_json::to_value(&metadata.actor).unwrap_or(Value::Null),
        data,
        ip: metadata.ip.as_ref().filter(|_| network).cloned(),
        user_agent: metadata.user_agent.as_ref().filter(|_| network).cloned(),
    }
}

/// Removes hashes of secrets everywhere in `value`, and where requests came
/// from unless `network`.
fn redact(value: &mut Value, network: bool) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| {
                !key.ends_with("_hash") && (network || !NETWORK_FIELDS.contains(&key.as_str()))
            });
            map.values_mut().for_each(|inner| redact(inner, network));
        }
        Value::Array(items) => items.iter_mut().for_each(|inner| redact(inner, network)),
        _ => {}
    }
}

/// Fills `subject` with the first of each id found, the event's own fields
/// before those of objects inside it.
fn find_subject(value: &Value, subject: &mut Subject) {
    let Some(map) = value.as_object() else {
        return;
    };
    let slots: [(&str, &mut Option<String>); 6] = [
        ("campaign_id", &mut subject.campaign_id),
        ("list_id", &mut subject.list_id),
        ("conversation_id", &mut subject.conversation_id),
        ("message_id", &mut subject.message_id),
        ("texter_id", &mut subject.texter_id),
        ("phone", &mut subject.phone),
    ];
    for (name, slot) in slots {
        if slot.is_none() {
            *slot = map.get(name).and_then(Value::as_str).map(str::to_owned);
        }
    }
    for inner in map.values() {
        find_subject(inner, subject);
    }
}

/// The keys of one JSON object, in order, for tests.
#[cfg(test)]
fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(serde_json::Map::keys)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use textbank_domain::{Actor, EventMetadata, OrgId, StreamId};

    use super::*;

    fn recorded(data: Value) -> RecordedEvent {
        let metadata = EventMetadata {
            ip: Some("203.0.113.9".into()),
            user_agent: Some("curl/8".into()),
            ..EventMetadata::new(Some(OrgId::new()), Actor::System)
        };
        RecordedEvent {
            position: 7,
            event_id: Uuid::now_v7(),
            stream_id: StreamId::parse("recipient-x").unwrap(),
            version: 0,
            event_type: "MessageSendClicked".into(),
            schema_version: 1,
            data,
            metadata,
            recorded_at: "2026-11-25T19:00:01Z".parse().unwrap(),
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    #[test]
    fn hashes_of_secrets_never_leave_and_request_origins_only_for_the_audit() {
        let event = recorded(json!({
            "key_id": "k", "key_hash": "ab", "role": "texter",
            "evidence": {"ip": "203.0.113.9", "user_agent": "curl/8", "texter_id": "t"},
        }));
        let public = public_event(&event, false);
        assert_eq!(keys(&public.data), ["evidence", "key_id", "role"]);
        assert_eq!(keys(&public.data["evidence"]), ["texter_id"]);
        assert_eq!((public.ip, public.user_agent), (None, None));
        let audit = public_event(&event, true);
        assert!(audit.data.get("key_hash").is_none());
        assert_eq!(audit.data["evidence"]["ip"], "203.0.113.9");
        assert_eq!(audit.ip.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn the_subject_names_the_ids_the_event_concerns_and_a_click_its_time() {
        let event = recorded(json!({
            "message_id": "m", "phone": "+15552010000", "clicked_at": "2026-11-25T19:00:00Z",
            "conversation": {"conversation_id": "c", "campaign_id": "p"},
            "evidence": {"texter_id": "t"},
        }));
        let public = public_event(&event, false);
        assert_eq!(
            public.subject,
            Subject {
                campaign_id: Some("p".into()),
                list_id: None,
                conversation_id: Some("c".into()),
                message_id: Some("m".into()),
                texter_id: Some("t".into()),
                phone: Some("+15552010000".into()),
            }
        );
        assert_eq!(
            public.occurred_at,
            "2026-11-25T19:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(public.recorded_at, event.recorded_at);
    }

    #[test]
    fn type_filters_are_names_and_bounded() {
        assert_eq!(FeedQuery::parse_types(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            FeedQuery::parse_types(Some("OptOutRecorded, ReplyReceived")).unwrap(),
            ["OptOutRecorded", "ReplyReceived"]
        );
        for bad in ["Opt-Out", "a,,b", &"A,".repeat(51)] {
            assert!(FeedQuery::parse_types(Some(bad)).is_err(), "{bad}");
        }
    }
}
