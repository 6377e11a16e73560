//! Deciding a batch of appends: idempotency, expected versions, positions and
//! hashes. Pure; each backend's writer looks up the facts (stream heads,
//! already-stored ids, the last position) inside its write transaction and
//! then asks this module what to insert. One place, so both backends behave
//! identically.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use textbank_domain::{EventMetadata, StreamId};
use uuid::Uuid;

use crate::chain::{ChainInput, GENESIS_HASH, canonical_json, chain_hash};
use crate::error::{StoreError, StoreResult};
use crate::event::{AppendResult, ExpectedVersion, NewEvent};

/// Most events one append call may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Longest event type name.
const MAX_EVENT_TYPE_LEN: usize = 200;

/// An event serialized once, in the caller's task, so the single writer only
/// hashes and inserts.
///
/// Text is held in `Arc<str>` so binding it to a statement shares the buffer
/// instead of copying it, and events of one call share one metadata text.
#[derive(Debug, Clone)]
pub(crate) struct PreparedEvent {
    pub event_id: Uuid,
    pub event_type: Arc<str>,
    pub schema_version: u32,
    pub data_json: Arc<str>,
    pub metadata_json: Arc<str>,
}

/// A leader's term for a role: an append fenced with it is written only
/// while no other process has taken the role's lead since (see `leader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub role: String,
    pub term: u64,
}

/// One append call, validated.
#[derive(Debug, Clone)]
pub(crate) struct AppendRequest {
    pub stream: StreamId,
    /// The stream name again, shareable with statements.
    pub stream_name: Arc<str>,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub fence: Option<Fence>,
}

/// The roles whose current term the writer must look up for `batch`.
pub(crate) fn fenced_roles(batch: &[AppendRequest]) -> Vec<&str> {
    let mut roles: Vec<&str> = batch
        .iter()
        .filter_map(|request| request.fence.as_ref().map(|fence| fence.role.as_str()))
        .collect();
    roles.sort_unstable();
    roles.dedup();
    roles
}

/// The statements that read a role's current term in a writer's
/// transaction. On PostgreSQL the row is share-locked, so a new leader's
/// raise of the term waits for this write or this write sees the raise:
/// terms and commits come in the same order.
pub(crate) const CURRENT_TERM_SQLITE: &str = "SELECT term FROM leader_terms WHERE role = $1";
pub(crate) const CURRENT_TERM_POSTGRES: &str =
    "SELECT term FROM leader_terms WHERE role = $1 FOR SHARE";

impl AppendRequest {
    pub fn prepare(
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreResult<Self> {
        if events.is_empty() {
            return Err(StoreError::InvalidInput("no events to append".into()));
        }
        if events.len() > MAX_EVENTS_PER_APPEND {
            return Err(StoreError::InvalidInput(format!(
                "{} events in one append; the limit is {MAX_EVENTS_PER_APPEND}",
                events.len()
            )));
        }
        let mut seen = HashSet::with_capacity(events.len());
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(events.len());
        // Events of one call usually share their metadata (one request, one
        // actor): serialize it once.
        let mut last_metadata: Option<(EventMetadata, usize)> = None;
        for event in events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::InvalidInput(format!(
                    "event id {} appears twice in one append",
                    event.event_id
                )));
            }
            if event.event_type.is_empty() || event.event_type.len() > MAX_EVENT_TYPE_LEN {
                return Err(StoreError::InvalidInput(format!(
                    "event type must be 1 to {MAX_EVENT_TYPE_LEN} bytes"
                )));
            }
            let metadata_json = match &last_metadata {
                Some((metadata, index)) if *metadata == event.metadata => {
                    prepared[*index].metadata_json.clone()
                }
                _ => {
                    let value = serde_json::to_value(&event.metadata)
                        .map_err(|err| StoreError::InvalidInput(format!("metadata: {err}")))?;
                    last_metadata = Some((event.metadata, prepared.len()));
                    canonical_json(&value).into()
                }
            };
            prepared.push(PreparedEvent {
                event_id: event.event_id,
                event_type: event.event_type.into(),
                schema_version: event.schema_version,
                data_json: canonical_json(&event.data).into(),
                metadata_json,
            });
        }
        Ok(Self {
            stream: stream.clone(),
            stream_name: stream.as_str().into(),
            expected,
            events: prepared,
            fence: None,
        })
    }

    pub fn fenced(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }
}

/// The last event of a stream, as the writer found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamHead {
    pub version: u64,
    pub hash: [u8; 32],
}

/// Where an already-stored event id lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredEventRef {
    pub stream_id: String,
    pub version: u64,
    pub position: u64,
}

/// A row the writer will insert, borrowing the request's serialized event.
#[derive(Debug, Clone)]
pub(crate) struct PendingRow<'a> {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: &'a Arc<str>,
    pub version: u64,
    pub event_type: &'a Arc<str>,
    pub schema_version: u32,
    pub data_json: &'a Arc<str>,
    pub metadata_json: &'a Arc<str>,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl<'a> PendingRow<'a> {
    /// `event` of `request` at `position` in the log and `version` in its
    /// stream, chained after `prev_hash` as `hash`.
    pub fn new(
        request: &'a AppendRequest,
        event: &'a PreparedEvent,
        (position, version): (u64, u64),
        recorded_at: DateTime<Utc>,
        (prev_hash, hash): ([u8; 32], [u8; 32]),
    ) -> Self {
        Self {
            position,
            event_id: event.event_id,
            stream_id: &request.stream_name,
            version,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            data_json: &event.data_json,
            metadata_json: &event.metadata_json,
            recorded_at,
            prev_hash,
            hash,
        }
    }
}

/// The facts a writer looked up under its lock.
#[derive(Debug, Default)]
pub(crate) struct BatchFacts {
    pub heads: HashMap<String, StreamHead>,
    pub stored: HashMap<Uuid, StoredEventRef>,
    pub last_position: u64,
    /// The current term of each fenced role in the batch.
    pub terms: HashMap<String, u64>,
}

/// What to insert, and the answer for each request, in request order.
#[derive(Debug)]
pub(crate) struct BatchPlan<'a> {
    pub rows: Vec<PendingRow<'a>>,
    pub outcomes: Vec<StoreResult<AppendResult>>,
}

impl BatchPlan<'_> {
    pub fn last_position(&self) -> Option<u64> {
        self.rows.last().map(|row| row.position)
    }
}

/// Decides each request in order, as if each were its own transaction: a
/// request sees the writes of the requests before it in the batch.
pub(crate) fn plan_batch<'a>(
    requests: &'a [AppendRequest],
    mut facts: BatchFacts,
    recorded_at: DateTime<Utc>,
) -> BatchPlan<'a> {
    // Round to microseconds: PostgreSQL keeps no more, and the hash covers it.
    let recorded_at = truncate_to_micros(recorded_at);
    let mut rows = Vec::with_capacity(requests.iter().map(AppendRequest::event_count).sum());
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut position = facts.last_position;
    for request in requests {
        let stream = request.stream.as_str();
        if let Some(replayed) = replay(request, &facts.stored, Numbering::Dense) {
            outcomes.push(replayed);
            continue;
        }
        if let Some(fence) = &request.fence {
            let current = facts.terms.get(&fence.role).copied().unwrap_or(0);
            if current != fence.term {
                outcomes.push(Err(StoreError::Fenced {
                    role: fence.role.clone(),
                    term: fence.term,
                    current,
                }));
                continue;
            }
        }
        let head = facts.heads.get(stream).copied();
        let actual = head.map(|head| head.version);
        if !request.expected.admits(actual) {
            outcomes.push(Err(StoreError::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual,
            }));
            continue;
        }
        let mut prev_hash = head.map_or(GENESIS_HASH, |head| head.hash);
        let mut version = actual.map_or(0, |last| last + 1);
        let first = AppendResult {
            first_position: position + 1,
            last_position: position + request.events.len() as u64,
            first_version: version,
            last_version: version + request.events.len() as u64 - 1,
        };
        for event in &request.events {
            position += 1;
            let hash = chain_hash(
                &prev_hash,
                &ChainInput {
                    event_id: event.event_id,
                    stream_id: stream,
                    version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    recorded_at,
                    data_json: &event.data_json,
                    metadata_json: &event.metadata_json,
                },
            );
            facts.stored.insert(
                event.event_id,
                StoredEventRef {
                    stream_id: stream.to_owned(),
                    version,
                    position,
                },
            );
            rows.push(PendingRow::new(
                request,
                event,
                (position, version),
                recorded_at,
                (prev_hash, hash),
            ));
            prev_hash = hash;
            version += 1;
        }
        facts.heads.insert(
            stream.to_owned(),
            StreamHead {
                version: version - 1,
                hash: prev_hash,
            },
        );
        outcomes.push(Ok(first));
    }
    BatchPlan { rows, outcomes }
}

/// How a backend numbers the log: gap-free (SQL) or by an ordered position
/// with gaps (KurrentDB's `$all` commit position, ADR 0030).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    Dense,
    #[cfg_attr(not(feature = "kurrentdb"), allow(dead_code))]
    Sparse,
}

/// If the request's event ids are already stored, the original result, or a
/// mismatch error when they were stored as some other append. `None` when
/// none of them is stored. One append's events follow each other in the
/// log: consecutive positions under dense numbering, rising ones otherwise.
pub(crate) fn replay(
    request: &AppendRequest,
    stored: &HashMap<Uuid, StoredEventRef>,
    numbering: Numbering,
) -> Option<StoreResult<AppendResult>> {
    let found: Vec<Option<&StoredEventRef>> = request
        .events
        .iter()
        .map(|event| stored.get(&event.event_id))
        .collect();
    let first_found = found.iter().position(Option::is_some)?;
    let mismatch = || {
        Some(Err(StoreError::IdempotencyMismatch {
            event_id: request.events[first_found].event_id,
        }))
    };
    let Some(refs) = found.into_iter().collect::<Option<Vec<_>>>() else {
        return mismatch();
    };
    let (first, last) = (refs[0], refs[refs.len() - 1]);
    let same_run = refs.iter().zip(0u64..).all(|(r, offset)| {
        r.stream_id == request.stream.as_str() && r.version == first.version + offset
    }) && refs
        .windows(2)
        .zip(1u64..)
        .all(|(pair, offset)| match numbering {
            Numbering::Dense => pair[1].position == first.position + offset,
            Numbering::Sparse => pair[1].position > pair[0].position,
        });
    if !same_run {
        return mismatch();
    }
    Some(Ok(AppendResult {
        first_position: first.position,
        last_position: last.position,
        first_version: first.version,
        last_version: last.version,
    }))
}

pub(crate) fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use textbank_domain::{Actor, EventMetadata};

    fn request(stream: &str, expected: ExpectedVersion, ids: &[Uuid]) -> AppendRequest {
        let events = ids
            .iter()
            .map(|id| {
                NewEvent::new(
                    "Tested",
                    json!({"n": 1}),
                    EventMetadata::new(None, Actor::System),
                )
                .with_id(*id)
            })
            .collect();
        AppendRequest::prepare(&StreamId::parse(stream).unwrap(), expected, events).unwrap()
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn later_requests_in_a_batch_see_earlier_ones() {
        let (a, b) = (ids(2), ids(1));
        let requests = [
            request("s-1", ExpectedVersion::NoStream, &a),
            request("s-1", ExpectedVersion::Exact(1), &b),
            request("s-1", ExpectedVersion::Exact(1), &ids(1)),
        ];
        let plan = plan_batch(
            &requests,
            BatchFacts {
                last_position: 10,
                ..BatchFacts::default()
            },
            Utc::now(),
        );
        assert_eq!(plan.rows.len(), 3);
        assert_eq!(
            plan.rows.iter().map(|r| r.position).collect::<Vec<_>>(),
            [11, 12, 13]
        );
        assert_eq!(plan.rows[2].prev_hash, plan.rows[1].hash);
        assert_eq!(plan.outcomes[1].as_ref().unwrap().first_version, 2);
        assert!(matches!(
            plan.outcomes[2],
            Err(StoreError::Conflict {
                actual: Some(2),
                ..
            })
        ));
    }

    #[test]
    fn a_repeated_request_in_the_same_batch_replays_the_first() {
        let same = ids(2);
        let requests = [
            request("s-1", ExpectedVersion::Any, &same),
            request("s-1", ExpectedVersion::Any, &same),
        ];
        let plan = plan_batch(&requests, BatchFacts::default(), Utc::now());
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(
            plan.outcomes[0].as_ref().unwrap(),
            plan.outcomes[1].as_ref().unwrap()
        );
    }

    #[test]
    fn a_partial_overlap_with_stored_ids_is_a_mismatch() {
        let first = ids(2);
        let requests = [
            request("s-1", ExpectedVersion::Any, &first),
            request("s-1", ExpectedVersion::Any, &[first[1], Uuid::now_v7()]),
            request("s-2", ExpectedVersion::Any, &first),
        ];
        let plan = plan_batch(&requests, BatchFacts::default(), Utc::now());
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::IdempotencyMismatch { .. })
        ));
        assert!(matches!(
            plan.outcomes[2],
            Err(StoreError::IdempotencyMismatch { .. })
        ));
        assert_eq!(plan.rows.len(), 2);
    }

    #[test]
    fn an_append_fenced_with_an_ended_term_is_refused_and_writes_nothing() {
        let fence = |term| Fence {
            role: "dispatch".into(),
            term,
        };
        let requests = [
            request("s-1", ExpectedVersion::Any, &ids(1)).fenced(fence(3)),
            request("s-1", ExpectedVersion::Any, &ids(1)).fenced(fence(4)),
            request("s-2", ExpectedVersion::Any, &ids(1)),
        ];
        let facts = BatchFacts {
            terms: HashMap::from([("dispatch".to_owned(), 4)]),
            ..BatchFacts::default()
        };
        let plan = plan_batch(&requests, facts, Utc::now());
        assert!(matches!(
            plan.outcomes[0],
            Err(StoreError::Fenced {
                term: 3,
                current: 4,
                ..
            })
        ));
        assert!(plan.outcomes[1].is_ok() && plan.outcomes[2].is_ok());
        assert_eq!(plan.rows.len(), 2);
        assert_eq!(fenced_roles(&requests), ["dispatch"]);
    }

    #[test]
    fn malformed_appends_are_refused_before_the_writer() {
        let stream = StreamId::parse("s-1").unwrap();
        let none = AppendRequest::prepare(&stream, ExpectedVersion::Any, vec![]);
        assert!(matches!(none, Err(StoreError::InvalidInput(_))));
        let event = NewEvent::new("T", json!({}), EventMetadata::new(None, Actor::System));
        let twice =
            AppendRequest::prepare(&stream, ExpectedVersion::Any, vec![event.clone(), event]);
        assert!(matches!(twice, Err(StoreError::InvalidInput(_))));
        let untyped = NewEvent::new("", json!({}), EventMetadata::new(None, Actor::System));
        let untyped = AppendRequest::prepare(&stream, ExpectedVersion::Any, vec![untyped]);
        assert!(matches!(untyped, Err(StoreError::InvalidInput(_))));
    }
}
