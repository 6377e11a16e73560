//! Stream names. A stream is one aggregate instance (`org-…`, `list-…`,
//! `campaign-…`, `recipient-{org}-{e164}`); the name is validated once here so
//! the store never sees an empty or unprintable one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest stream name accepted; recipient streams are about 55 characters.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// The category of every stream the domain writes: a stream's name is its
/// category, a dash, and its parts. An event log that holds other streams
/// too (KurrentDB's `$all`) is read through these prefixes.
pub const STREAM_CATEGORIES: [&str; 5] = ["org", "campaign", "recipient", "list", "texter"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("stream id is empty")]
    Empty,
    #[error("stream id is longer than {MAX_STREAM_ID_LEN} bytes")]
    TooLong,
    #[error("stream id may hold only ASCII letters, digits and - _ . : + @")]
    InvalidCharacter,
}

/// The name of one event stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    pub fn parse(name: impl Into<String>) -> Result<Self, StreamIdError> {
        let name = name.into();
        if name.is_empty() {
            return Err(StreamIdError::Empty);
        }
        if name.len() > MAX_STREAM_ID_LEN {
            return Err(StreamIdError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:+@".contains(c);
        if !name.chars().all(allowed) {
            return Err(StreamIdError::InvalidCharacter);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text that is always a valid part of a stream name: typed ids print as
/// hex and dashes, phone numbers as `+` and digits. Only the domain's own
/// types implement it, so [`StreamId::of`] cannot build an invalid name.
pub trait StreamPart: fmt::Display + sealed::Sealed {}

pub(crate) mod sealed {
    pub trait Sealed {}
}

impl StreamId {
    /// `{category}-{part}-{part}…`, from a fixed category and parts that
    /// are valid by construction; needs no check and cannot fail.
    pub(crate) fn of(category: &'static str, parts: &[&dyn StreamPart]) -> Self {
        debug_assert!(STREAM_CATEGORIES.contains(&category), "{category}");
        let mut name = String::from(category);
        for part in parts {
            name.push('-');
            name.push_str(&part.to_string());
        }
        debug_assert!(Self::parse(name.clone()).is_ok(), "{name}");
        Self(name)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = StreamIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(id: StreamId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_stream_names_are_valid() {
        let id = StreamId::parse("recipient-0190b3c4-7a1e-7000-8000-000000000000-+15555550100");
        assert!(id.is_ok());
    }

    #[test]
    fn empty_long_and_unprintable_names_are_rejected() {
        assert_eq!(StreamId::parse(""), Err(StreamIdError::Empty));
        assert_eq!(
            StreamId::parse("a".repeat(MAX_STREAM_ID_LEN + 1)),
            Err(StreamIdError::TooLong)
        );
        assert_eq!(
            StreamId::parse("org-1\n"),
            Err(StreamIdError::InvalidCharacter)
        );
        assert_eq!(
            StreamId::parse("org 1"),
            Err(StreamIdError::InvalidCharacter)
        );
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
        let ok: StreamId = serde_json::from_str("\"org-1\"").unwrap();
        assert_eq!(ok.as_str(), "org-1");
    }
}
