//! The store's one error type. Conflicts and duplicate ids are domain-level
//! answers the caller acts on; `Database` is an infrastructure failure.

use textbank_domain::StreamId;
use uuid::Uuid;

use crate::event::ExpectedVersion;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream moved since the caller read it (optimistic concurrency).
    #[error("stream {stream} expected {expected} but is at {}", describe_version(*.actual))]
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        /// The stream's current last version; `None` when it has no events.
        actual: Option<u64>,
    },
    /// Some of the event ids were stored before, but not as exactly this
    /// append (other events, another stream, or only part of the batch), so
    /// replaying the original result would be a lie.
    #[error("event {event_id} is already stored as part of a different append")]
    IdempotencyMismatch { event_id: Uuid },
    /// The call itself is malformed (no events, an event id twice, a bad
    /// checkpoint name, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A stored row could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The background writer stopped (the store is shutting down).
    #[error("the event writer has stopped")]
    WriterGone,
    /// The background writer ended abnormally (a panic); every later append
    /// answers with its cause.
    #[error("the event writer failed: {0}")]
    WriterFailed(String),
    /// The runtime is shutting down and dropped work the store handed to
    /// its blocking threads.
    #[error("the store is shutting down")]
    ShuttingDown,
}

fn describe_version(actual: Option<u64>) -> String {
    match actual {
        Some(version) => format!("version {version}"),
        None => "no stream".to_owned(),
    }
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
