//! textbank's event store: one append-only, totally ordered log with
//! optimistic concurrency per stream, idempotent appends, a per-stream hash
//! chain, wake-ups for followers and projector checkpoints. Backends: SQLite
//! (embedded default) and PostgreSQL, behind one trait; with the `kurrentdb`
//! feature, KurrentDB for the log beside either of them (ADR 0030).
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod appender;
pub mod carrier_accounts;
pub mod chain;
mod database;
mod decode;
mod error;
mod event;
pub mod idempotency_keys;
pub mod invites;
#[cfg(feature = "kurrentdb")]
mod kurrent;
mod leader;
mod macros;
pub mod passwords;
mod plan;
mod postgres_writer;
pub mod sending_numbers;
pub mod sessions;
pub mod sql;
mod sql_store;
mod sqlite_writer;
mod tx;
mod unchecked;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use textbank_domain::{OrgId, StreamId};
use tokio::sync::watch;

pub use chain::{BreakReason, BrokenLink, ChainReport};
pub use database::{
    Backend, ConnectOptions, DEFAULT_SQLITE_CACHE_BYTES, DEFAULT_SQLITE_MMAP_BYTES, Database,
    WriteTurn, WriteTurns, redact_url,
};
pub use error::{StoreError, StoreResult};
pub use event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent};
#[cfg(feature = "kurrentdb")]
pub use kurrent::{KurrentDbOptions, KurrentDbStore, is_kurrentdb_url};
pub use leader::{Leader, try_lead};
pub use plan::{Fence, MAX_EVENTS_PER_APPEND};
pub use sql_store::{MAX_READ_BATCH, SqlEventStore};
pub use tx::StoreTx;
pub use unchecked::insert_unchecked;

/// The event log.
///
/// Positions start at 1 and rise in the order events became visible, and
/// `read_all(from, …)` returns the events at positions `>= from`: a
/// follower that reads `read_all(checkpoint + 1, …)` after each wake-up
/// never skips an event, however many writers there are. On SQL they are
/// also gap-free (1, 2, 3, …); on KurrentDB they are `$all` commit
/// positions, ordered with gaps (ADR 0030).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// The SQL engine of the store's database (checkpoints, read models).
    fn backend(&self) -> Backend;

    /// Where the log itself lives: the SQL engine's name, or `kurrentdb`.
    fn log_name(&self) -> &'static str {
        self.backend().name()
    }

    /// Appends `events` to `stream` atomically if the stream is at `expected`.
    /// Re-appending event ids that are already stored returns the original
    /// result and writes nothing.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreResult<AppendResult>;

    /// Like [`EventStore::append`], but written only while `fence.term` is
    /// still the current term of `fence.role` ([`StoreError::Fenced`]
    /// otherwise), checked in the same transaction as the write: a leader's
    /// write that must not land once another process has taken the lead.
    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        fence: &Fence,
    ) -> StoreResult<AppendResult>;

    /// Up to `limit` events of one stream, from `from_version` on.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>>;

    /// Up to `limit` events of one organization (its metadata's `org_id`),
    /// after position `after`, in log order; only `types` when any are
    /// named.
    async fn read_org(
        &self,
        org: OrgId,
        after: u64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<RecordedEvent>>;

    /// Up to `limit` events of the whole log, from `from_position` on.
    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>>;

    /// Like [`EventStore::read_all`], but stops before the event that would
    /// take the stored payloads past `max_bytes` (the first event always
    /// comes): a batch of a thousand list-import events is hundreds of MB.
    async fn read_all_bounded(
        &self,
        from_position: u64,
        limit: usize,
        max_bytes: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let _ = max_bytes;
        self.read_all(from_position, limit).await
    }

    /// Several checkpoints as last committed, in the order of `names`.
    async fn checkpoints(&self, names: &[&str]) -> StoreResult<Vec<Option<u64>>> {
        let mut positions = Vec::with_capacity(names.len());
        for name in names {
            positions.push(self.checkpoint(name).await?);
        }
        Ok(positions)
    }

    /// A channel whose value is the last position known to be visible; it
    /// changes after every append (from other processes too, on PostgreSQL).
    /// Treat a change as a hint and re-read by position.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// The last position in the log, read from the database.
    async fn head_position(&self) -> StoreResult<u64>;

    /// Recomputes the stream's hash chain and reports the first broken link.
    async fn verify_stream(&self, stream: &StreamId) -> StoreResult<ChainReport>;

    /// A transaction on the store's database, for checkpoints and the rows
    /// they guard.
    async fn begin(&self) -> StoreResult<StoreTx>;

    /// A checkpoint as last committed, read without a write transaction
    /// (a runner peeks at it before deciding whether there is work).
    async fn checkpoint(&self, name: &str) -> StoreResult<Option<u64>>;

    /// Is the database reachable?
    async fn ping(&self) -> StoreResult<()>;

    /// Is the event log reachable? The database's answer when the log is
    /// in it; KurrentDB's otherwise.
    async fn ping_log(&self) -> StoreResult<()> {
        self.ping().await
    }
}

/// Waits until the log's visible head passes `position` or `timeout`
/// elapses, and returns the head as then known. Followers call this between
/// reads; on a timeout they re-read anyway (a wake-up from another process
/// can be lost while its listener reconnects).
pub async fn wait_beyond(store: &dyn EventStore, position: u64, timeout: Duration) -> u64 {
    let mut head = store.subscribe();
    let reached = tokio::time::timeout(timeout, head.wait_for(|&last| last > position)).await;
    let reached = reached.ok().and_then(Result::ok).map(|last| *last);
    reached.unwrap_or_else(|| *head.borrow())
}

/// Opens the store a database URL names: `sqlite://PATH` or `postgres://…`.
pub async fn open(url: &str, options: &ConnectOptions) -> StoreResult<Arc<SqlEventStore>> {
    Ok(Arc::new(SqlEventStore::open(url, options).await?))
}
