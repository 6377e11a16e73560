//! How textbank's log maps onto KurrentDB, as pure functions (ADR 0030):
//! positions, stream states, stream names, the `$all` filter, the metadata
//! envelope that carries the hash chain, and error translation. No server
//! is needed to test any of it.

use chrono::{DateTime, Utc};
use kurrentdb::{CurrentRevision, Position, StreamPosition, StreamState, SubscriptionFilter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use textbank_domain::{STREAM_CATEGORIES, StreamId};
use uuid::Uuid;

use crate::decode::to_hash;
use crate::error::{StoreError, StoreResult};
use crate::event::{ExpectedVersion, StoredRow};

/// A `$all` position as textbank's `u64`: the commit position.
///
/// Events appended through gRPC have equal commit and prepare positions
/// (they differ only inside the explicit transactions of the legacy TCP
/// protocol), so the commit position alone names an event, and ordering
/// by it is `$all`'s order. Anything else is refused rather than silently
/// misordered. Position 0 is the log's first (system) record, never an
/// event textbank wrote, and stays "before everything" as on SQL.
pub(crate) fn position_of(position: Position) -> StoreResult<u64> {
    if position.commit != position.prepare {
        return Err(StoreError::Corrupt(format!(
            "event at {position} is part of an explicit transaction; textbank reads only events \
             whose commit and prepare positions are equal"
        )));
    }
    if position.commit == 0 {
        return Err(StoreError::Corrupt(
            "an event at $all position 0 (the log's first record)".into(),
        ));
    }
    Ok(position.commit)
}

/// Where a forward read of `$all` starts so that it returns every event at
/// a position `>= from` (whether or not the server includes an event at
/// exactly the start position): just before `from`. The reader then drops
/// what lies below `from` ([`at_or_after`]).
pub(crate) fn read_all_start(from: u64) -> StreamPosition<Position> {
    match from {
        0 | 1 => StreamPosition::Start,
        from => StreamPosition::Position(Position {
            commit: from - 1,
            prepare: from - 1,
        }),
    }
}

/// Does an event at `position` belong to a read that asked for `from` on?
pub(crate) fn at_or_after(position: u64, from: u64) -> bool {
    position >= from
}

/// The stream state an append sends: exactly what was read just before,
/// never "any". The hash chain links each event to the stream's previous
/// one, so the store must know the version it appends after; a stream that
/// moved in between is a conflict the store answers by reading again.
pub(crate) fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream => StreamState::NoStream,
        ExpectedVersion::Exact(version) => StreamState::StreamRevision(version),
    }
}

/// The stream's last version as a wrong-expected-version answer names it.
pub(crate) fn actual_version(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(version) => Some(version),
        CurrentRevision::NoStream => None,
    }
}

/// The client's error as the store's. A moved stream is a conflict; a
/// connection that failed, a leader that changed or a deadline that passed
/// is unavailability (worth a retry); anything else is a failure.
pub(crate) fn store_error(
    err: kurrentdb::Error,
    stream: Option<(&StreamId, ExpectedVersion)>,
) -> StoreError {
    use kurrentdb::Error as E;
    match (err, stream) {
        (E::WrongExpectedVersion { current, .. }, Some((stream, expected))) => {
            StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual: actual_version(current),
            }
        }
        (err, _) => {
            let unavailable = matches!(
                err,
                E::ConnectionClosed
                    | E::GrpcConnectionError(_)
                    | E::DeadlineExceeded
                    | E::NotLeaderException(_)
                    | E::ServerError(_)
            );
            StoreError::EventLog {
                message: err.to_string(),
                unavailable,
            }
        }
    }
}

/// Stream names on the server: textbank's, after the deployment's
/// namespace (empty unless several deployments share one cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Names {
    namespace: String,
}

impl Names {
    pub fn new(namespace: &str) -> StoreResult<Self> {
        if namespace.starts_with('$') {
            return Err(StoreError::InvalidInput(
                "a KurrentDB namespace must not start with $ (system streams)".into(),
            ));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
        })
    }

    pub fn server_stream(&self, stream: &StreamId) -> String {
        format!("{}{}", self.namespace, stream.as_str())
    }

    /// Textbank's name of a stream read from the server.
    pub fn textbank_stream<'a>(&self, server: &'a str) -> StoreResult<&'a str> {
        server.strip_prefix(self.namespace.as_str()).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "stream {server} is outside the namespace {:?}",
                self.namespace
            ))
        })
    }

    /// The stream-name prefixes `$all` is read through: the namespace when
    /// there is one (everything of this deployment begins with it), else
    /// each of the domain's stream categories and its dash. None begins with
    /// `$`, so system streams never reach textbank.
    pub fn prefixes(&self) -> Vec<String> {
        if self.namespace.is_empty() {
            STREAM_CATEGORIES
                .iter()
                .map(|category| format!("{category}-"))
                .collect()
        } else {
            vec![self.namespace.clone()]
        }
    }

    /// [`Names::prefixes`] as the client's server-side filter.
    pub fn filter(&self) -> SubscriptionFilter {
        self.prefixes()
            .iter()
            .fold(SubscriptionFilter::on_stream_name(), |filter, prefix| {
                filter.add_prefix(prefix)
            })
    }
}

/// What textbank keeps in an event's KurrentDB metadata: its own metadata
/// and the fields the hash chain covers that KurrentDB does not hold
/// (schema version, textbank's recorded-at time) or cannot (the hashes).
/// The time is textbank's, fixed before the append, because the hash covers
/// it; KurrentDB's own `created` time is not.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<M> {
    pub textbank: M,
    pub schema_version: u32,
    /// Microseconds since the Unix epoch.
    pub recorded_at: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// The metadata an event is appended with. `metadata_json` is the
/// canonical text the hash was computed over.
pub(crate) fn envelope(
    metadata_json: &str,
    schema_version: u32,
    recorded_at: DateTime<Utc>,
    (prev_hash, hash): ([u8; 32], [u8; 32]),
) -> StoreResult<Envelope<Value>> {
    let textbank: Value = serde_json::from_str(metadata_json)
        .map_err(|err| StoreError::InvalidInput(format!("metadata: {err}")))?;
    Ok(Envelope {
        textbank,
        schema_version,
        recorded_at: recorded_at.timestamp_micros(),
        prev_hash: hex::encode(prev_hash),
        hash: hex::encode(hash),
    })
}

/// One event as read from the server, in the client's terms but free of
/// its types (so it can be built in a test).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerEvent<'a> {
    pub position: Position,
    pub event_id: Uuid,
    pub stream: &'a str,
    pub revision: u64,
    pub event_type: &'a str,
    pub data: &'a [u8],
    pub metadata: &'a [u8],
}

/// Decodes a server event into a stored row, its metadata as `M` (a `Value`
/// for the chain check, `EventMetadata` for readers).
pub(crate) fn decode<M: DeserializeOwned>(
    names: &Names,
    event: &ServerEvent<'_>,
) -> StoreResult<StoredRow<M>> {
    let position = position_of(event.position)?;
    let corrupt = |what: &str, err: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("event at position {position}: {what}: {err}"))
    };
    let envelope: Envelope<M> =
        serde_json::from_slice(event.metadata).map_err(|err| corrupt("metadata", &err))?;
    let data: Value = serde_json::from_slice(event.data).map_err(|err| corrupt("data", &err))?;
    let recorded_at = DateTime::from_timestamp_micros(envelope.recorded_at)
        .ok_or_else(|| corrupt("recorded_at", &envelope.recorded_at))?;
    let hash_of = |text: &str| {
        hex::decode(text)
            .map_err(|err| corrupt("hash", &err))
            .and_then(to_hash)
    };
    Ok(StoredRow {
        position,
        event_id: event.event_id,
        stream_id: names.textbank_stream(event.stream)?.to_owned(),
        version: event.revision,
        event_type: event.event_type.to_owned(),
        schema_version: envelope.schema_version,
        data,
        metadata: envelope.textbank,
        recorded_at,
        prev_hash: hash_of(&envelope.prev_hash)?,
        hash: hash_of(&envelope.hash)?,
    })
}

/// The recorded-at time (µs) of an event's metadata envelope, read without
/// decoding the rest.
pub(crate) fn recorded_at_of(metadata: &[u8]) -> StoreResult<i64> {
    #[derive(Deserialize)]
    struct Time {
        recorded_at: i64,
    }
    serde_json::from_slice::<Time>(metadata)
        .map(|time| time.recorded_at)
        .map_err(|err| StoreError::Corrupt(format!("event metadata: {err}")))
}

/// The hash and recorded-at time (µs) of an event's metadata envelope: what
/// the next append links to, read without decoding the event's data.
pub(crate) fn link_of(metadata: &[u8]) -> StoreResult<([u8; 32], i64)> {
    let envelope: Envelope<serde::de::IgnoredAny> = serde_json::from_slice(metadata)
        .map_err(|err| StoreError::Corrupt(format!("event metadata: {err}")))?;
    let hash = hex::decode(&envelope.hash)
        .map_err(|err| StoreError::Corrupt(format!("event hash: {err}")))
        .and_then(to_hash)?;
    Ok((hash, envelope.recorded_at))
}

/// How far back a retried append's original can lie: UUIDv7 ids carry the
/// time they were made, and the original was recorded after that (give or
/// take the clocks of the processes involved). `None` for other ids: the
/// whole stream must be searched.
pub(crate) fn search_back_to(event_ids: &[Uuid], clock_skew: chrono::Duration) -> Option<i64> {
    let earliest = event_ids
        .iter()
        .map(|id| match id.get_timestamp() {
            Some(ts) if id.get_version_num() == 7 => {
                let (secs, nanos) = ts.to_unix();
                i64::try_from(secs)
                    .ok()
                    .map(|secs| secs * 1_000_000 + i64::from(nanos / 1_000))
            }
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .min()?;
    Some(earliest - clock_skew.num_microseconds().unwrap_or(i64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use textbank_domain::{Actor, EventMetadata, OrgId};

    use crate::chain::{ChainVerifier, GENESIS_HASH};
    use crate::event::NewEvent;
    use crate::plan::{AppendRequest, BatchFacts, plan_batch};

    fn at(n: u64) -> Position {
        Position {
            commit: n,
            prepare: n,
        }
    }

    #[test]
    fn positions_keep_the_order_of_all_and_round_trip_through_a_read_start() {
        let positions = [1u64, 4_096, 4_321, 1 << 40, u64::MAX - 1];
        let encoded: Vec<u64> = positions
            .iter()
            .map(|&p| position_of(at(p)).unwrap())
            .collect();
        // Same order as $all (commit, then prepare).
        let mut by_all = positions.map(at).to_vec();
        by_all.sort();
        assert_eq!(
            by_all
                .iter()
                .map(|p| position_of(*p).unwrap())
                .collect::<Vec<_>>(),
            encoded
        );
        assert!(encoded.windows(2).all(|pair| pair[0] < pair[1]));
        for &p in &encoded {
            // A follower asks for `checkpoint + 1`: the read starts at the
            // checkpoint itself, and keeps nothing at or below it.
            let StreamPosition::Position(start) = read_all_start(p + 1) else {
                panic!("a read after {p} starts at a position");
            };
            assert_eq!(start, at(p));
            assert!(!at_or_after(p, p + 1));
            // Reading from an event's own position includes it.
            assert!(at_or_after(p, p));
        }
        assert!(matches!(read_all_start(0), StreamPosition::Start));
        assert!(matches!(read_all_start(1), StreamPosition::Start));
    }

    #[test]
    fn positions_of_explicit_transactions_and_of_the_first_record_are_refused() {
        let split = Position {
            commit: 900,
            prepare: 800,
        };
        let err = position_of(split).unwrap_err().to_string();
        assert!(
            err.contains("C:900/P:800") && err.contains("explicit transaction"),
            "{err}"
        );
        assert!(matches!(position_of(at(0)), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn expected_versions_map_to_stream_states() {
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        assert_eq!(
            stream_state(ExpectedVersion::NoStream),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(7)),
            StreamState::StreamRevision(7)
        );
        // What an append sends after reading the stream's head.
        assert_eq!(
            stream_state(ExpectedVersion::after(None)),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::after(Some(3))),
            StreamState::StreamRevision(3)
        );
    }

    #[test]
    fn a_wrong_expected_version_is_a_conflict_naming_both_versions() {
        let stream = StreamId::parse("campaign-1").unwrap();
        let err = store_error(
            kurrentdb::Error::WrongExpectedVersion {
                expected: StreamState::StreamRevision(0),
                current: CurrentRevision::Current(1),
            },
            Some((&stream, ExpectedVersion::Exact(0))),
        );
        assert_eq!(
            err.to_string(),
            "stream campaign-1 expected version 0 but is at version 1"
        );
        let err = store_error(
            kurrentdb::Error::WrongExpectedVersion {
                expected: StreamState::StreamRevision(0),
                current: CurrentRevision::NoStream,
            },
            Some((&stream, ExpectedVersion::Exact(0))),
        );
        assert!(matches!(err, StoreError::Conflict { actual: None, .. }));
    }

    #[test]
    fn connection_failures_are_unavailability_and_refusals_are_not() {
        for err in [
            kurrentdb::Error::ConnectionClosed,
            kurrentdb::Error::DeadlineExceeded,
            kurrentdb::Error::ServerError("unavailable".into()),
            kurrentdb::Error::GrpcConnectionError(kurrentdb::GrpcConnectionError::Grpc(
                "refused".into(),
            )),
        ] {
            let err = store_error(err, None);
            assert!(err.is_unavailable() && err.is_transient(), "{err}");
        }
        for err in [
            kurrentdb::Error::AccessDenied,
            kurrentdb::Error::ResourceDeleted,
            kurrentdb::Error::InternalParsingError("x".into()),
        ] {
            let err = store_error(err, None);
            assert!(!err.is_unavailable(), "{err}");
            assert!(matches!(err, StoreError::EventLog { .. }));
        }
    }

    #[test]
    fn stream_names_carry_the_namespace_both_ways() {
        let stream = StreamId::parse("recipient-1-+15555550100").unwrap();
        let plain = Names::new("").unwrap();
        assert_eq!(plain.server_stream(&stream), stream.as_str());
        assert_eq!(plain.textbank_stream("org-1").unwrap(), "org-1");
        let spaced = Names::new("tb7:").unwrap();
        let on_server = spaced.server_stream(&stream);
        assert_eq!(on_server, format!("tb7:{}", stream.as_str()));
        assert_eq!(spaced.textbank_stream(&on_server).unwrap(), stream.as_str());
        assert!(spaced.textbank_stream("org-1").is_err());
        assert!(Names::new("$tb").is_err());
    }

    #[test]
    fn all_is_read_through_textbanks_stream_prefixes_and_never_system_streams() {
        let prefixes = Names::new("").unwrap().prefixes();
        assert_eq!(
            prefixes,
            ["org-", "campaign-", "recipient-", "list-", "texter-"]
        );
        assert!(prefixes.iter().all(|prefix| !prefix.starts_with('$')));
        // Each stream the domain names falls under a prefix.
        let org = OrgId::new();
        for stream in [
            textbank_domain::org::stream_id(org),
            StreamId::parse(format!("recipient-{org}-+15555550100")).unwrap(),
        ] {
            assert!(
                prefixes
                    .iter()
                    .any(|p| stream.as_str().starts_with(p.as_str()))
            );
        }
        assert_eq!(Names::new("t1-").unwrap().prefixes(), ["t1-"]);
        // The client's filter is built from the same list.
        let filter = format!("{:?}", Names::new("").unwrap().filter());
        assert!(filter.contains("based_on_stream: true"), "{filter}");
        assert!(filter.contains("\"recipient-\""), "{filter}");
    }

    /// Appends planned for `stream`, as the KurrentDB store plans them.
    fn planned(stream: &StreamId, n: u64) -> Vec<(ServerEventOwned, [u8; 32])> {
        let events: Vec<NewEvent> = (0..n)
            .map(|i| {
                NewEvent::new(
                    "Counted",
                    json!({"n": i, "note": "déjà vu ✓"}),
                    EventMetadata::new(Some(OrgId::new()), Actor::System),
                )
            })
            .collect();
        let request = AppendRequest::prepare(stream, ExpectedVersion::NoStream, events).unwrap();
        let requests = [request];
        let plan = plan_batch(&requests, BatchFacts::default(), Utc::now());
        plan.rows
            .iter()
            .zip(1u64..)
            .map(|(row, i)| {
                let metadata = serde_json::to_vec(
                    &envelope(
                        row.metadata_json,
                        row.schema_version,
                        row.recorded_at,
                        (row.prev_hash, row.hash),
                    )
                    .unwrap(),
                )
                .unwrap();
                let owned = ServerEventOwned {
                    position: at(1_000 * i),
                    event_id: row.event_id,
                    stream: format!("ns-{}", row.stream_id),
                    revision: row.version,
                    event_type: row.event_type.to_string(),
                    data: row.data_json.as_bytes().to_vec(),
                    metadata,
                };
                (owned, row.hash)
            })
            .collect()
    }

    struct ServerEventOwned {
        position: Position,
        event_id: Uuid,
        stream: String,
        revision: u64,
        event_type: String,
        data: Vec<u8>,
        metadata: Vec<u8>,
    }

    impl ServerEventOwned {
        fn view(&self) -> ServerEvent<'_> {
            ServerEvent {
                position: self.position,
                event_id: self.event_id,
                stream: &self.stream,
                revision: self.revision,
                event_type: &self.event_type,
                data: &self.data,
                metadata: &self.metadata,
            }
        }
    }

    #[test]
    fn the_metadata_envelope_round_trips_and_the_chain_verifies_as_on_sql() {
        let stream = StreamId::parse("counter-1").unwrap();
        let names = Names::new("ns-").unwrap();
        let events = planned(&stream, 3);
        let mut verifier = ChainVerifier::new(stream.as_str());
        let mut prev = GENESIS_HASH;
        for (event, hash) in &events {
            let row: StoredRow<Value> = decode(&names, &event.view()).unwrap();
            assert_eq!(row.stream_id, "counter-1");
            assert_eq!(row.position, event.position.commit);
            assert_eq!((row.hash, row.prev_hash), (*hash, prev));
            prev = row.hash;
            assert!(verifier.feed(&row));
            // Readers decode the same bytes straight into the metadata type.
            let typed: StoredRow<EventMetadata> = decode(&names, &event.view()).unwrap();
            assert_eq!(serde_json::to_value(&typed.metadata).unwrap(), row.metadata);
            assert_eq!(typed.data["note"], "déjà vu ✓");
        }
        assert!(verifier.finish().is_intact());
    }

    #[test]
    fn an_edited_event_breaks_the_chain() {
        let stream = StreamId::parse("counter-2").unwrap();
        let names = Names::new("ns-").unwrap();
        let mut events = planned(&stream, 3);
        events[1].0.data = br#"{"n":999}"#.to_vec();
        let mut verifier = ChainVerifier::new(stream.as_str());
        let fed: Vec<bool> = events
            .iter()
            .map(|(event, _)| verifier.feed(&decode::<Value>(&names, &event.view()).unwrap()))
            .collect();
        assert_eq!(fed, [true, false, false]);
        let broken = verifier.finish().first_broken.unwrap();
        assert_eq!(broken.version, 1);
        assert_eq!(broken.position, 2_000);
    }

    #[test]
    fn the_recorded_time_is_read_from_the_envelope_alone() {
        let stream = StreamId::parse("counter-4").unwrap();
        let events = planned(&stream, 1);
        let row: StoredRow<Value> =
            decode(&Names::new("ns-").unwrap(), &events[0].0.view()).unwrap();
        assert_eq!(
            recorded_at_of(&events[0].0.metadata).unwrap(),
            row.recorded_at.timestamp_micros()
        );
        assert!(recorded_at_of(b"{}").is_err());
        let (hash, time) = link_of(&events[0].0.metadata).unwrap();
        assert_eq!((hash, time), (row.hash, row.recorded_at.timestamp_micros()));
    }

    #[test]
    fn undecodable_metadata_is_reported_with_its_position() {
        let stream = StreamId::parse("counter-3").unwrap();
        let names = Names::new("ns-").unwrap();
        let mut events = planned(&stream, 1);
        events[0].0.metadata = br#"{"textbank": {"actor": 7}}"#.to_vec();
        let err = decode::<EventMetadata>(&names, &events[0].0.view())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("corrupt") && err.contains("position 1000") && err.contains("metadata"),
            "{err}"
        );
    }

    #[test]
    fn a_retry_is_searched_for_back_to_its_ids_time_less_the_clock_skew() {
        let skew = chrono::Duration::seconds(30);
        let id = Uuid::now_v7();
        let made = id.get_timestamp().unwrap().to_unix();
        let made_us = made.0 as i64 * 1_000_000 + i64::from(made.1 / 1_000);
        assert_eq!(search_back_to(&[id], skew), Some(made_us - 30_000_000));
        let later = Uuid::now_v7();
        assert_eq!(
            search_back_to(&[later, id], skew),
            Some(made_us - 30_000_000)
        );
        // An id that carries no time: the whole stream is searched.
        assert_eq!(search_back_to(&[id, Uuid::new_v4()], skew), None);
    }

    #[test]
    fn a_retry_found_in_the_stream_tail_answers_with_the_original_result() {
        use crate::plan::{Numbering, StoredEventRef, replay};
        use std::collections::HashMap;
        let stream = StreamId::parse("recipient-1").unwrap();
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let events = ids
            .iter()
            .map(|id| {
                NewEvent::new("T", json!({}), EventMetadata::new(None, Actor::System)).with_id(*id)
            })
            .collect();
        let request = AppendRequest::prepare(&stream, ExpectedVersion::Exact(0), events).unwrap();
        // The tail as read back: positions with gaps, as in $all.
        let tail: HashMap<Uuid, StoredEventRef> = ids
            .iter()
            .zip([(1, 5_000), (2, 5_400)])
            .map(|(id, (version, position))| {
                (
                    *id,
                    StoredEventRef {
                        stream_id: stream.to_string(),
                        version,
                        position,
                    },
                )
            })
            .collect();
        let replayed = replay(&request, &tail, Numbering::Sparse).unwrap().unwrap();
        assert_eq!(
            (replayed.first_position, replayed.last_position),
            (5_000, 5_400)
        );
        assert_eq!((replayed.first_version, replayed.last_version), (1, 2));
        // Dense numbering would call the same tail a different append.
        assert!(matches!(
            replay(&request, &tail, Numbering::Dense),
            Some(Err(StoreError::IdempotencyMismatch { .. }))
        ));
        // Versions out of order are never the original append.
        let mut shuffled = tail.clone();
        shuffled.get_mut(&ids[1]).unwrap().version = 4;
        assert!(matches!(
            replay(&request, &shuffled, Numbering::Sparse),
            Some(Err(StoreError::IdempotencyMismatch { .. }))
        ));
    }
}
