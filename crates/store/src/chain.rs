//! The per-stream hash chain: each event's hash covers the previous event's
//! hash and the event's canonical bytes, so editing or deleting any stored
//! event breaks every later link of its stream.
//!
//! `hash = SHA-256(prev_hash ‖ event_id ‖ field(stream) ‖ u64(version) ‖
//! field(type) ‖ u64(schema_version) ‖ i64(recorded_at µs) ‖ field(data) ‖
//! field(metadata))`, where integers are big-endian, `field(x)` is the byte
//! length of `x` as a u64 followed by the bytes, and JSON is canonical:
//! compact, object keys sorted (serde_json's default map is a `BTreeMap`).
//! Length prefixes make the encoding unambiguous. The first event of a stream
//! has an all-zero `prev_hash`. See docs/adr/0002-hash-chain.md.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::StoredRow;

/// `prev_hash` of a stream's first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Canonical JSON text of a value: compact with sorted keys.
pub fn canonical_json(value: &Value) -> String {
    // serde_json's `Map` is a BTreeMap unless the `preserve_order` feature is
    // on; a test below fails if some dependency ever turns it on. (`to_string`
    // writes straight into a buffer; `Display` would go through a formatter
    // adapter, several times slower.)
    serde_json::to_string(value).unwrap_or_default()
}

/// The fields of one event that the chain covers, in canonical form.
#[derive(Debug, Clone, Copy)]
pub struct ChainInput<'a> {
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub version: u64,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at: DateTime<Utc>,
    pub data_json: &'a str,
    pub metadata_json: &'a str,
}

pub fn chain_hash(prev_hash: &[u8; 32], input: &ChainInput<'_>) -> [u8; 32] {
    fn field(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(input.event_id.as_bytes());
    field(&mut hasher, input.stream_id.as_bytes());
    hasher.update(input.version.to_be_bytes());
    field(&mut hasher, input.event_type.as_bytes());
    hasher.update(u64::from(input.schema_version).to_be_bytes());
    hasher.update(input.recorded_at.timestamp_micros().to_be_bytes());
    field(&mut hasher, input.data_json.as_bytes());
    field(&mut hasher, input.metadata_json.as_bytes());
    hasher.finalize().into()
}

/// How a stream's chain first went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    /// Versions are not 0, 1, 2, … (an event was deleted or renumbered).
    VersionGap,
    /// The stored `prev_hash` is not the previous event's hash.
    PrevHashMismatch,
    /// The stored hash does not match the event's content.
    HashMismatch,
}

/// The first broken link of a stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    pub version: u64,
    pub position: u64,
    pub reason: BreakReason,
    #[serde(serialize_with = "hex_bytes")]
    #[schema(value_type = String)]
    pub stored_hash: [u8; 32],
    #[serde(serialize_with = "hex_bytes")]
    #[schema(value_type = String)]
    pub expected_hash: [u8; 32],
}

/// The result of recomputing one stream's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    pub stream_id: String,
    pub events_checked: u64,
    pub first_broken: Option<BrokenLink>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(bytes))
}

/// Recomputes a stream's chain one event at a time, in version order, so a
/// long stream is checked page by page in constant memory.
pub(crate) struct ChainVerifier {
    stream_id: String,
    prev: [u8; 32],
    checked: u64,
    first_broken: Option<BrokenLink>,
}

impl ChainVerifier {
    pub fn new(stream_id: &str) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            prev: GENESIS_HASH,
            checked: 0,
            first_broken: None,
        }
    }

    /// Checks the next event; returns false once a link is broken (later
    /// events need not be read).
    pub fn feed(&mut self, event: &StoredRow) -> bool {
        if self.first_broken.is_some() {
            return false;
        }
        let expected_hash = chain_hash(
            &self.prev,
            &ChainInput {
                event_id: event.event_id,
                stream_id: &self.stream_id,
                version: event.version,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                recorded_at: event.recorded_at,
                data_json: &canonical_json(&event.data),
                metadata_json: &canonical_json(&event.metadata),
            },
        );
        let reason = if event.version != self.checked {
            Some(BreakReason::VersionGap)
        } else if event.prev_hash != self.prev {
            Some(BreakReason::PrevHashMismatch)
        } else if event.hash != expected_hash {
            Some(BreakReason::HashMismatch)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                self.first_broken = Some(BrokenLink {
                    version: event.version,
                    position: event.position,
                    reason,
                    stored_hash: event.hash,
                    expected_hash,
                });
                false
            }
            None => {
                self.prev = event.hash;
                self.checked += 1;
                true
            }
        }
    }

    pub fn finish(self) -> ChainReport {
        ChainReport {
            stream_id: self.stream_id,
            events_checked: self.checked,
            first_broken: self.first_broken,
        }
    }
}

/// Recomputes a stream's chain page by page: `page(from_version)` reads up
/// to `page_size` of the stream's stored rows from that version on. Every
/// backend verifies through it, so the chain is checked the same on each.
pub(crate) async fn verify_pages<F, Fut>(
    stream_id: &str,
    page_size: usize,
    mut page: F,
) -> crate::error::StoreResult<ChainReport>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = crate::error::StoreResult<Vec<StoredRow>>>,
{
    let mut verifier = ChainVerifier::new(stream_id);
    let mut from = 0;
    loop {
        let rows = page(from).await?;
        let Some(last) = rows.last() else { break };
        from = last.version + 1;
        if !rows.iter().all(|row| verifier.feed(row)) || rows.len() < page_size {
            break;
        }
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(data: &str) -> ChainInput<'_> {
        ChainInput {
            event_id: Uuid::nil(),
            stream_id: "org-1",
            version: 0,
            event_type: "OrgCreated",
            schema_version: 1,
            recorded_at: DateTime::from_timestamp_micros(1_790_000_000_000_000).unwrap(),
            data_json: data,
            metadata_json: "{}",
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let value: Value =
            serde_json::from_str(r#"{ "z": 1, "a": {"y": [1, 2], "b": null} }"#).unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"b":null,"y":[1,2]},"z":1}"#
        );
    }

    #[test]
    fn hash_depends_on_previous_hash_and_every_field() {
        let base = chain_hash(&GENESIS_HASH, &input(r#"{"a":1}"#));
        assert_ne!(base, chain_hash(&[1; 32], &input(r#"{"a":1}"#)));
        assert_ne!(base, chain_hash(&GENESIS_HASH, &input(r#"{"a":2}"#)));
        let other_version = ChainInput {
            version: 1,
            ..input(r#"{"a":1}"#)
        };
        assert_ne!(base, chain_hash(&GENESIS_HASH, &other_version));
        let other_schema = ChainInput {
            schema_version: 2,
            ..input(r#"{"a":1}"#)
        };
        assert_ne!(base, chain_hash(&GENESIS_HASH, &other_schema));
        let other_id = ChainInput {
            event_id: Uuid::max(),
            ..input(r#"{"a":1}"#)
        };
        assert_ne!(base, chain_hash(&GENESIS_HASH, &other_id));
        let later = ChainInput {
            recorded_at: DateTime::from_timestamp_micros(1_790_000_000_000_001).unwrap(),
            ..input(r#"{"a":1}"#)
        };
        assert_ne!(base, chain_hash(&GENESIS_HASH, &later));
    }

    #[test]
    fn length_prefixes_keep_field_boundaries_unambiguous() {
        let left = ChainInput {
            stream_id: "org-1",
            event_type: "ab",
            ..input("{}")
        };
        let right = ChainInput {
            stream_id: "org-1a",
            event_type: "b",
            ..input("{}")
        };
        assert_ne!(
            chain_hash(&GENESIS_HASH, &left),
            chain_hash(&GENESIS_HASH, &right)
        );
    }

    #[test]
    fn canonical_form_survives_a_round_trip_through_text() {
        let value = json!({"b": 0.1, "a": 18446744073709551615u64, "c": "é\u{1F600}"});
        let text = canonical_json(&value);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&reparsed), text);
    }
}
