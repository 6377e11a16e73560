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
    /// The append was fenced with a leader term that is no longer current:
    /// another process took the lead since, and this one must stop.
    #[error("{role} leadership term {term} has ended (the current term is {current})")]
    Fenced {
        role: String,
        term: u64,
        current: u64,
    },
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
    /// The remote event log (KurrentDB) failed or refused the call;
    /// `unavailable` when it could not be reached or could not take the
    /// work just then (asking again shortly may work).
    #[error("event log error: {message}")]
    EventLog { message: String, unavailable: bool },
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

    /// The database cannot be reached or cannot take the work just now (a
    /// dropped connection, an exhausted or closed pool, a server shutting
    /// down or out of connections, a SQLite file busy past its timeout or
    /// failing I/O): asking again shortly may work. Anything else is a
    /// genuine failure.
    /// Unavailable for a moment, so worth one more try: not a pool this
    /// process closed (it is shutting down).
    pub fn is_transient(&self) -> bool {
        self.is_unavailable()
            && !matches!(
                self,
                Self::WriterGone | Self::ShuttingDown | Self::Database(sqlx::Error::PoolClosed)
            )
    }

    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::WriterGone | Self::ShuttingDown => true,
            Self::Database(err) => sqlx_unavailable(err),
            Self::EventLog { unavailable, .. } => *unavailable,
            _ => false,
        }
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // SQLSTATE classes 08 (connection exception), 53
                // (insufficient resources) and 57P (operator intervention:
                // shutdown, cannot connect now).
                let code = pg.code();
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Primary result codes (the low byte of an extended one):
                // BUSY, LOCKED, IOERR, FULL, CANTOPEN.
                db.code()
                    .and_then(|code| code.parse::<u32>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13 | 14))
            } else {
                false
            }
        }
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailability_and_bad_data_is_not() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(io.is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(StoreError::WriterGone.is_unavailable());
        assert!(!StoreError::Corrupt("row 7".into()).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::InvalidInput("no events".into()).is_unavailable());
    }
}
