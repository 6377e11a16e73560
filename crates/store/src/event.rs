//! What goes into the log and what comes out of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;
use textbank_domain::{EventMetadata, StreamId};
use uuid::Uuid;

use crate::error::StoreError;

/// The stream state an append requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this (0-based) version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Does a stream whose last version is `actual` satisfy this expectation?
    pub fn admits(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::Exact(version) => actual == Some(version),
        }
    }

    /// The expectation that holds right after reading a stream whose last
    /// version is `last`.
    pub fn after(last: Option<u64>) -> Self {
        last.map_or(Self::NoStream, Self::Exact)
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// UUIDv7; doubles as the idempotency key of the append.
    pub event_id: Uuid,
    /// Past tense, never renamed: `MessageSendClicked`.
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event of schema version 1 with a fresh id.
    pub fn new(event_type: impl Into<String>, data: Value, metadata: EventMetadata) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata,
        }
    }

    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global, gap-free order of visibility, starting at 1.
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: StreamId,
    /// 0-based version within the stream.
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// A row as read from the database. The chain check reads the metadata raw
/// (`Value`), so it covers exactly what is stored; readers decode it
/// straight into [`EventMetadata`], without building a `Value` first.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow<M = Value> {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Value,
    pub metadata: M,
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl TryFrom<StoredRow<EventMetadata>> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: StoredRow<EventMetadata>) -> Result<Self, Self::Error> {
        let stream_id = StreamId::parse(row.stream_id).map_err(|err| {
            StoreError::Corrupt(format!(
                "event at position {}: stream id: {err}",
                row.position
            ))
        })?;
        Ok(Self {
            position: row.position,
            event_id: row.event_id,
            stream_id,
            version: row.version,
            event_type: row.event_type,
            schema_version: row.schema_version,
            data: row.data,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_position: u64,
    pub last_position: u64,
    pub first_version: u64,
    pub last_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_admit_the_right_versions() {
        assert!(ExpectedVersion::Any.admits(None));
        assert!(ExpectedVersion::Any.admits(Some(3)));
        assert!(ExpectedVersion::NoStream.admits(None));
        assert!(!ExpectedVersion::NoStream.admits(Some(0)));
        assert!(ExpectedVersion::Exact(2).admits(Some(2)));
        assert!(!ExpectedVersion::Exact(2).admits(Some(3)));
        assert!(!ExpectedVersion::Exact(0).admits(None));
    }
}
