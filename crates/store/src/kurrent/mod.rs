//! The event log on KurrentDB (cargo feature `kurrentdb`, ADR 0030). Events
//! go to a KurrentDB cluster; checkpoints, leader terms, transactions and
//! every read model stay on the SQL database the store is opened beside.

mod mapping;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions, ReadStream,
    ReadStreamOptions, StreamPosition, SubscribeToAllOptions,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use textbank_domain::{EventMetadata, OrgId, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::chain::{ChainReport, verify_pages};
use crate::database::{Backend, redact_url};
use crate::error::{StoreError, StoreResult};
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent, StoredRow};
use crate::plan::{
    AppendRequest, BatchFacts, Fence, Numbering, StoredEventRef, StreamHead, plan_batch, replay,
};
use crate::sql_store::{MAX_READ_BATCH, SqlEventStore};
use crate::tx::StoreTx;
use crate::{EventStore, decode::into_events};

use mapping::{
    Envelope, Names, ServerEvent, at_or_after, decode, envelope, link_of, position_of,
    read_all_start, recorded_at_of, search_back_to, store_error, stream_state,
};

/// Events read per page while verifying a chain or searching for a retry.
const PAGE: usize = 500;
/// How far before its ids' time a retry's original is searched for. The
/// app makes event ids in the process that appends them, just before, so
/// this covers that one clock stepping back (and a little skew between
/// processes).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(30);
/// Events read by the first page of a retry search.
const FIRST_SEARCH_PAGE: usize = 16;
/// Appends with "any version" that found the stream moved between reading
/// its head and appending, before the store gives up with the conflict.
const ANY_VERSION_ATTEMPTS: usize = 16;
/// Pause before the head follower subscribes again after losing `$all`.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Settings of [`KurrentDbStore::open`].
#[derive(Debug, Clone, Default)]
pub struct KurrentDbOptions {
    /// Put before every stream name on the server (and `$all` read through
    /// it alone), so that several deployments, or tests, share a cluster.
    /// Empty: streams are named as in textbank and `$all` is read through
    /// the domain's stream categories.
    pub namespace: String,
}

/// An [`EventStore`] whose log is on KurrentDB.
pub struct KurrentDbStore {
    client: Client,
    sql: Arc<SqlEventStore>,
    names: Names,
    head_tx: Arc<watch::Sender<u64>>,
    head: watch::Receiver<u64>,
    follower: tokio::task::JoinHandle<()>,
}

impl Drop for KurrentDbStore {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Is `url` one the KurrentDB client takes (`kurrentdb://`, `esdb://`, …)?
pub fn is_kurrentdb_url(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once("://") else {
        return false;
    };
    let scheme = scheme.strip_suffix("+discover").unwrap_or(scheme);
    ["kurrentdb", "kurrent", "kdb", "esdb"].contains(&scheme)
}

/// The last event textbank wrote that the read yields (0 for none).
async fn first_position(mut read: ReadStream) -> StoreResult<u64> {
    while let Some(event) = next_event(&mut read).await? {
        let event = event.get_original_event();
        if !event.event_type.starts_with('$') {
            return position_of(event.position);
        }
    }
    Ok(0)
}

/// The next event of a read; a stream that does not exist has none.
async fn next_event(read: &mut ReadStream) -> StoreResult<Option<kurrentdb::ResolvedEvent>> {
    match read.next().await {
        Ok(event) => Ok(event),
        Err(kurrentdb::Error::ResourceNotFound) => Ok(None),
        Err(err) => Err(store_error(err, None)),
    }
}

fn server_event(event: &kurrentdb::RecordedEvent) -> ServerEvent<'_> {
    ServerEvent {
        position: event.position,
        event_id: event.id,
        stream: event.stream_id(),
        revision: event.revision,
        event_type: &event.event_type,
        data: &event.data,
        metadata: &event.custom_metadata,
    }
}

impl KurrentDbStore {
    /// Connects to the KurrentDB `url` names, beside `sql` (which keeps
    /// checkpoints, leader terms and the read models).
    pub async fn open(
        url: &str,
        sql: Arc<SqlEventStore>,
        options: &KurrentDbOptions,
    ) -> StoreResult<Self> {
        // The parser's message may quote the URL, password and all.
        let settings: ClientSettings = url.parse().map_err(|_| {
            StoreError::UnsupportedUrl(format!(
                "{}: not a KurrentDB connection string",
                redact_url(url)
            ))
        })?;
        let client = Client::new(settings).map_err(|err| StoreError::EventLog {
            message: err.to_string(),
            unavailable: false,
        })?;
        let names = Names::new(&options.namespace)?;
        let last = read_head(&client, &names).await?;
        let (head_tx, head) = watch::channel(last);
        let head_tx = Arc::new(head_tx);
        let follower = tokio::spawn(follow_head(client.clone(), names.clone(), head_tx.clone()));
        Ok(Self {
            client,
            sql,
            names,
            head_tx,
            head,
            follower,
        })
    }

    /// The SQL store beside the log: checkpoints, terms and read models.
    pub fn sql(&self) -> &Arc<SqlEventStore> {
        &self.sql
    }

    fn bump_head(&self, position: u64) {
        bump(&self.head_tx, position);
    }

    async fn read_stream_from(
        &self,
        stream: &str,
        options: &ReadStreamOptions,
    ) -> StoreResult<Option<ReadStream>> {
        match self.client.read_stream(stream, options).await {
            Ok(read) => Ok(Some(read)),
            Err(kurrentdb::Error::ResourceNotFound) => Ok(None),
            Err(err) => Err(store_error(err, None)),
        }
    }

    /// A stream's rows from `from_version` on, the metadata decoded as `M`.
    async fn stream_rows<M: DeserializeOwned>(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredRow<M>>> {
        let limit = limit.clamp(1, MAX_READ_BATCH);
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(from_version))
            .forwards()
            .max_count(limit);
        let Some(mut read) = self
            .read_stream_from(&self.names.server_stream(stream), &options)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        while let Some(event) = next_event(&mut read).await? {
            rows.push(decode(
                &self.names,
                &server_event(event.get_original_event()),
            )?);
        }
        Ok(rows)
    }

    /// The stream's last event: its version and hash, as the chain needs.
    async fn stream_head(&self, stream: &str) -> StoreResult<Option<(StreamHead, i64)>> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(1);
        let Some(mut read) = self.read_stream_from(stream, &options).await? else {
            return Ok(None);
        };
        let Some(event) = next_event(&mut read).await? else {
            return Ok(None);
        };
        let event = event.get_original_event();
        let (hash, recorded_at) = link_of(&event.custom_metadata)?;
        Ok(Some((
            StreamHead {
                version: event.revision,
                hash,
            },
            recorded_at,
        )))
    }

    /// Where the request's events already are in its stream, searched from
    /// the tail back to the time their ids were made (less the clock skew;
    /// the whole stream for ids that carry no time). Pages start small and
    /// grow: a retry's original is usually near the tail.
    async fn stored_refs(
        &self,
        request: &AppendRequest,
        stream: &str,
    ) -> StoreResult<HashMap<Uuid, StoredEventRef>> {
        let ids: Vec<Uuid> = request.events.iter().map(|event| event.event_id).collect();
        let back_to = search_back_to(&ids, CLOCK_SKEW);
        let mut found = HashMap::new();
        let mut next = StreamPosition::End;
        let mut page = FIRST_SEARCH_PAGE;
        loop {
            let options = ReadStreamOptions::default()
                .position(next)
                .backwards()
                .max_count(page);
            let Some(mut read) = self.read_stream_from(stream, &options).await? else {
                return Ok(found);
            };
            let mut lowest = None;
            while let Some(event) = next_event(&mut read).await? {
                let event = event.get_original_event();
                lowest = Some(event.revision);
                if ids.contains(&event.id) {
                    found.insert(
                        event.id,
                        StoredEventRef {
                            stream_id: request.stream.as_str().to_owned(),
                            version: event.revision,
                            position: position_of(event.position)?,
                        },
                    );
                }
                let older = match back_to {
                    Some(time) => recorded_at_of(&event.custom_metadata)? < time,
                    None => false,
                };
                if found.len() == ids.len() || older {
                    return Ok(found);
                }
            }
            match lowest {
                Some(version) if version > 0 => next = StreamPosition::Position(version - 1),
                _ => return Ok(found),
            }
            page = (page * 4).min(PAGE);
        }
    }

    /// The `$all` position of the event at `version` of a stream.
    async fn position_at(&self, stream: &str, version: u64) -> StoreResult<u64> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(version))
            .forwards()
            .max_count(1);
        let event = match self.read_stream_from(stream, &options).await? {
            Some(mut read) => next_event(&mut read).await?,
            None => None,
        };
        let event = event.ok_or_else(|| StoreError::EventLog {
            message: format!("{stream} has no version {version} right after appending it"),
            unavailable: false,
        })?;
        position_of(event.get_original_event().position)
    }

    /// One append: read the head, answer a retry with its original result,
    /// check the expectation, hash, and append under the version read.
    async fn append_request(&self, request: AppendRequest) -> StoreResult<AppendResult> {
        let stream = self.names.server_stream(&request.stream);
        let ids_carry_time = search_back_to(
            &request
                .events
                .iter()
                .map(|e| e.event_id)
                .collect::<Vec<_>>(),
            CLOCK_SKEW,
        );
        for _ in 0..ANY_VERSION_ATTEMPTS {
            let head = self.stream_head(&stream).await?;
            let actual = head.map(|(head, _)| head.version);
            let admitted = request.expected.admits(actual);
            // An append that the head still admits cannot have landed
            // before, unless it asked for any version: then it can have,
            // no earlier than its ids were made.
            let may_be_retry = !admitted
                || (request.expected == ExpectedVersion::Any
                    && head.is_some_and(|(_, recorded)| {
                        ids_carry_time.is_none_or(|back_to| recorded >= back_to)
                    }));
            if may_be_retry {
                let stored = self.stored_refs(&request, &stream).await?;
                if let Some(original) = replay(&request, &stored, Numbering::Sparse) {
                    return original;
                }
            }
            if !admitted {
                return Err(StoreError::Conflict {
                    stream: request.stream.clone(),
                    expected: request.expected,
                    actual,
                });
            }
            let outgoing = outgoing(&self.names, &request, head.map(|(head, _)| head))?;
            let planned = outgoing.planned;
            let events = outgoing
                .events
                .into_iter()
                .map(|event| {
                    EventData::json(&event.event_type, &event.data)
                        .and_then(|data| data.id(event.event_id).metadata_as_json(&event.metadata))
                        .map_err(|err| StoreError::InvalidInput(format!("event: {err}")))
                })
                .collect::<StoreResult<Vec<EventData>>>()?;
            let options = AppendToStreamOptions::default().stream_state(outgoing.state);
            match self
                .client
                .append_to_stream(outgoing.stream.as_str(), &options, events)
                .await
            {
                Ok(_) => {
                    let (first, last) = if planned.first_version == planned.last_version {
                        let only = self.position_at(&stream, planned.first_version).await?;
                        (only, only)
                    } else {
                        tokio::try_join!(
                            self.position_at(&stream, planned.first_version),
                            self.position_at(&stream, planned.last_version),
                        )?
                    };
                    self.bump_head(last);
                    return Ok(AppendResult {
                        first_position: first,
                        last_position: last,
                        ..planned
                    });
                }
                // The stream moved since its head was read: read it again
                // (a retry of this very append is then found, a changed
                // expectation is then a conflict, "any" tries again).
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => continue,
                Err(err) => {
                    return Err(store_error(err, Some((&request.stream, request.expected))));
                }
            }
        }
        Err(StoreError::EventLog {
            message: format!(
                "{} moved under {ANY_VERSION_ATTEMPTS} appends in a row",
                request.stream
            ),
            unavailable: true,
        })
    }

    /// Up to `limit` rows of `$all` at positions `>= from`, stopping before
    /// the row that takes the payloads past `max_bytes` (the first always
    /// comes).
    async fn all_rows<M: DeserializeOwned>(
        &self,
        from: u64,
        limit: usize,
        max_bytes: u64,
    ) -> StoreResult<Vec<StoredRow<M>>> {
        let limit = limit.clamp(1, MAX_READ_BATCH);
        // One more: the read starts just before `from` and may include it.
        let options = ReadAllOptions::default()
            .position(read_all_start(from))
            .forwards()
            .filter(self.names.filter())
            .max_count(limit + 1);
        let mut read = self
            .client
            .read_all(&options)
            .await
            .map_err(|err| store_error(err, None))?;
        let mut rows = Vec::with_capacity(limit.min(PAGE));
        let mut bytes = 0u64;
        while let Some(event) = next_event(&mut read).await? {
            let event = event.get_original_event();
            if event.event_type.starts_with('$') {
                continue;
            }
            if !at_or_after(position_of(event.position)?, from) {
                continue;
            }
            if !rows.is_empty() && bytes >= max_bytes {
                break;
            }
            bytes = bytes.saturating_add(event.data.len() as u64);
            rows.push(decode(&self.names, &server_event(event))?);
            if rows.len() == limit {
                break;
            }
        }
        Ok(rows)
    }
}

/// One event as it will be sent.
#[derive(Debug)]
struct OutgoingEvent {
    event_id: Uuid,
    event_type: String,
    data: Value,
    metadata: Envelope<Value>,
}

/// One append as it will be sent: to one stream, under the revision read.
#[derive(Debug)]
struct Outgoing {
    stream: String,
    state: kurrentdb::StreamState,
    /// Versions as planned; positions are the server's to give.
    planned: AppendResult,
    events: Vec<OutgoingEvent>,
}

/// Plans `request` after the stream's `head` (as read): versions, hashes
/// and each event's data and metadata envelope. The caller has checked the
/// request's expectation against `head`.
fn outgoing(
    names: &Names,
    request: &AppendRequest,
    head: Option<StreamHead>,
) -> StoreResult<Outgoing> {
    let facts = BatchFacts {
        heads: head
            .map(|head| HashMap::from([(request.stream.as_str().to_owned(), head)]))
            .unwrap_or_default(),
        ..BatchFacts::default()
    };
    let requests = std::slice::from_ref(request);
    let plan = plan_batch(requests, facts, Utc::now());
    let planned = match plan.outcomes.into_iter().next() {
        Some(Ok(planned)) => planned,
        Some(Err(err)) => return Err(err),
        None => return Err(StoreError::InvalidInput("no events to append".into())),
    };
    let mut events = Vec::with_capacity(plan.rows.len());
    for row in &plan.rows {
        if &**row.stream_id != request.stream.as_str() {
            return Err(StoreError::InvalidInput(format!(
                "one append writes one stream, not {} and {}",
                request.stream, row.stream_id
            )));
        }
        events.push(OutgoingEvent {
            event_id: row.event_id,
            event_type: row.event_type.to_string(),
            data: serde_json::from_str(row.data_json)
                .map_err(|err| StoreError::InvalidInput(format!("data: {err}")))?,
            metadata: envelope(
                row.metadata_json,
                row.schema_version,
                row.recorded_at,
                (row.prev_hash, row.hash),
            )?,
        });
    }
    Ok(Outgoing {
        stream: names.server_stream(&request.stream),
        state: stream_state(ExpectedVersion::after(head.map(|head| head.version))),
        planned,
        events,
    })
}

/// Raises the known head to `position` if it is further on.
fn bump(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|last| {
        let further = position > *last;
        if further {
            *last = position;
        }
        further
    });
}

/// The last position of the log that textbank's streams reach (0: none).
async fn read_head(client: &Client, names: &Names) -> StoreResult<u64> {
    let options = ReadAllOptions::default()
        .position(StreamPosition::End)
        .backwards()
        .filter(names.filter())
        .max_count(16);
    let read = client
        .read_all(&options)
        .await
        .map_err(|err| store_error(err, None))?;
    first_position(read).await
}

/// Follows `$all` (through the filter) from its end and raises the head as
/// events appear, from this process or any other. A lost subscription is
/// taken up again after reading the head anew; followers re-read by
/// position after a timeout anyway, so a wake-up lost meanwhile delays,
/// never skips.
async fn follow_head(client: Client, names: Names, head: Arc<watch::Sender<u64>>) {
    loop {
        if let Ok(last) = read_head(&client, &names).await {
            bump(&head, last);
        }
        let options = SubscribeToAllOptions::default()
            .position(StreamPosition::End)
            .filter(names.filter());
        let mut subscription = client.subscribe_to_all(&options).await;
        loop {
            match subscription.next().await {
                Ok(event) => {
                    if let Ok(position) = position_of(event.get_original_event().position) {
                        bump(&head, position);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the KurrentDB $all subscription ended; subscribing again");
                    break;
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

#[async_trait]
impl EventStore for KurrentDbStore {
    /// The SQL engine of the read models (their dialect); the log itself is
    /// named by [`EventStore::log_name`].
    fn backend(&self) -> Backend {
        self.sql.backend()
    }

    fn log_name(&self) -> &'static str {
        "kurrentdb"
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreResult<AppendResult> {
        let request = AppendRequest::prepare(stream, expected, events)?;
        self.append_request(request).await
    }

    /// The fence is checked in a SQL transaction that stays open until the
    /// append has been answered: a new leader's raise of the term waits for
    /// it (PostgreSQL: the term's row is share-locked; SQLite: the write
    /// lock is held), so terms and appends come in one order, as when both
    /// are in one database.
    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        fence: &Fence,
    ) -> StoreResult<AppendResult> {
        let request = AppendRequest::prepare(stream, expected, events)?;
        let mut tx: StoreTx = self.sql.begin().await?;
        let current = tx.current_term(&fence.role).await?;
        if current != fence.term {
            return Err(StoreError::Fenced {
                role: fence.role.clone(),
                term: fence.term,
                current,
            });
        }
        let appended = self.append_request(request).await;
        tx.rollback().await?;
        appended
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>> {
        into_events(self.stream_rows(stream, from_version, limit).await?)
    }

    /// `$all` has no index by organization: the log is read through the
    /// filter and the organization's events kept (ADR 0030).
    async fn read_org(
        &self,
        org: OrgId,
        after: u64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<RecordedEvent>> {
        let limit = limit.clamp(1, MAX_READ_BATCH);
        let mut from = after.saturating_add(1);
        let mut kept = Vec::new();
        loop {
            let page: Vec<StoredRow<EventMetadata>> =
                self.all_rows(from, MAX_READ_BATCH, u64::MAX).await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            let full = page.len() == MAX_READ_BATCH;
            kept.extend(page.into_iter().filter(|row| {
                row.metadata.org_id == Some(org)
                    && (types.is_empty() || types.contains(&row.event_type))
            }));
            if kept.len() >= limit || !full {
                break;
            }
        }
        kept.truncate(limit);
        into_events(kept)
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        into_events(self.all_rows(from_position, limit, u64::MAX).await?)
    }

    async fn read_all_bounded(
        &self,
        from_position: u64,
        limit: usize,
        max_bytes: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        into_events(self.all_rows(from_position, limit, max_bytes).await?)
    }

    async fn checkpoints(&self, names: &[&str]) -> StoreResult<Vec<Option<u64>>> {
        self.sql.checkpoints(names).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    async fn head_position(&self) -> StoreResult<u64> {
        let last = read_head(&self.client, &self.names).await?;
        self.bump_head(last);
        Ok(last)
    }

    async fn verify_stream(&self, stream: &StreamId) -> StoreResult<ChainReport> {
        verify_pages(stream.as_str(), PAGE, |from| {
            self.stream_rows::<Value>(stream, from, PAGE)
        })
        .await
    }

    async fn begin(&self) -> StoreResult<StoreTx> {
        self.sql.begin().await
    }

    async fn checkpoint(&self, name: &str) -> StoreResult<Option<u64>> {
        self.sql.checkpoint(name).await
    }

    /// The read models' database; the cluster answers [`EventStore::ping_log`].
    async fn ping(&self) -> StoreResult<()> {
        self.sql.ping().await
    }

    async fn ping_log(&self) -> StoreResult<()> {
        read_head(&self.client, &self.names).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use textbank_domain::Actor;

    use crate::chain::GENESIS_HASH;

    fn request(stream: &str, expected: ExpectedVersion, n: u64) -> AppendRequest {
        let events = (0..n)
            .map(|i| {
                NewEvent::new(
                    "Counted",
                    json!({"n": i}),
                    EventMetadata::new(Some(OrgId::new()), Actor::System),
                )
            })
            .collect();
        AppendRequest::prepare(&StreamId::parse(stream).unwrap(), expected, events).unwrap()
    }

    #[test]
    fn one_append_call_writes_one_stream() {
        // The trait's append takes one stream; every event planned for the
        // server goes to it, in one append under one stream state. Nothing
        // in textbank asks for an atomic append across streams (ADR 0030).
        let names = Names::new("").unwrap();
        let head = StreamHead {
            version: 4,
            hash: [7; 32],
        };
        let sent = outgoing(
            &names,
            &request("recipient-1", ExpectedVersion::Any, 3),
            Some(head),
        )
        .unwrap();
        assert_eq!(sent.stream, "recipient-1");
        assert_eq!(sent.events.len(), 3);
        assert_eq!(
            (sent.planned.first_version, sent.planned.last_version),
            (5, 7)
        );
        // Sent under the revision read, never "any": the chain needs it.
        assert_eq!(sent.state, kurrentdb::StreamState::StreamRevision(4));
        assert_eq!(sent.events[0].metadata.prev_hash, hex::encode([7; 32]));
        for pair in sent.events.windows(2) {
            assert_eq!(pair[1].metadata.prev_hash, pair[0].metadata.hash);
        }
    }

    #[test]
    fn a_new_stream_is_created_with_no_stream_and_a_genesis_link() {
        let names = Names::new("ns-").unwrap();
        let sent = outgoing(
            &names,
            &request("org-1", ExpectedVersion::NoStream, 1),
            None,
        )
        .unwrap();
        assert_eq!(sent.stream, "ns-org-1");
        assert_eq!(sent.state, kurrentdb::StreamState::NoStream);
        assert_eq!(sent.events[0].metadata.prev_hash, hex::encode(GENESIS_HASH));
        assert_eq!(sent.events[0].event_type, "Counted");
        assert_eq!(sent.events[0].data, json!({"n": 0}));
    }

    #[test]
    fn connection_strings_are_told_apart_from_database_urls() {
        assert!(is_kurrentdb_url("kurrentdb://localhost:2113?tls=false"));
        assert!(is_kurrentdb_url("esdb+discover://a,b,c"));
        assert!(is_kurrentdb_url("kurrent://admin:changeit@a:2113"));
        assert!(!is_kurrentdb_url("kurrentdb"));
        assert!(!is_kurrentdb_url("postgres://u@h/db"));
        assert!(!is_kurrentdb_url("sqlite://x.db"));
    }
}
