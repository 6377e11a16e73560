//! Turning database rows back into events, once for both engines: the column
//! list and the decoding are shared, so SQLite and PostgreSQL cannot drift.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Row, Type};
use textbank_domain::EventMetadata;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::event::{RecordedEvent, StoredRow};

pub(crate) fn to_u64(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative counter {value}")))
}

pub(crate) fn to_hash(bytes: Vec<u8>) -> StoreResult<[u8; 32]> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("hash of {} bytes, expected 32", bytes.len())))
}

/// Reads every checkpoint: the table holds one row per read model.
pub(crate) const ALL_CHECKPOINTS: &str = "SELECT name, position FROM checkpoints";

/// The position of each of `names` in `rows` read by [`ALL_CHECKPOINTS`];
/// `None` for a read model that has none yet.
pub(crate) fn checkpoint_positions(
    names: &[&str],
    rows: &[(String, i64)],
) -> StoreResult<Vec<Option<u64>>> {
    names
        .iter()
        .map(|name| {
            rows.iter()
                .find(|(stored, _)| stored == name)
                .map(|&(_, position)| to_u64(position))
                .transpose()
        })
        .collect()
}

/// Decodes rows selected as `position, event_id, stream_id, version,
/// event_type, schema_version, data, metadata, recorded_at, prev_hash, hash`,
/// the metadata as `M`: a `Value` for the chain check, `EventMetadata` for
/// readers.
pub(crate) fn decode_rows<'r, R, M>(rows: &'r [R]) -> StoreResult<Vec<StoredRow<M>>>
where
    M: DeserializeOwned,
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
    Json<Value>: Decode<'r, R::Database> + Type<R::Database>,
    Json<M>: Decode<'r, R::Database> + Type<R::Database>,
{
    let decode_row = |row: &'r R| -> StoreResult<StoredRow<M>> {
        let position = to_u64(row.try_get(0)?)?;
        let schema_version: i32 = row.try_get(5)?;
        Ok(StoredRow {
            position,
            event_id: row.try_get(1)?,
            stream_id: row.try_get(2)?,
            version: to_u64(row.try_get(3)?)?,
            event_type: row.try_get(4)?,
            schema_version: u32::try_from(schema_version)
                .map_err(|_| StoreError::Corrupt(format!("schema version {schema_version}")))?,
            data: row.try_get::<Json<Value>, _>(6)?.0,
            metadata: row
                .try_get::<Json<M>, _>(7)
                .map_err(|err| {
                    StoreError::Corrupt(format!("event at position {position}: metadata: {err}"))
                })?
                .0,
            recorded_at: row.try_get(8)?,
            prev_hash: to_hash(row.try_get(9)?)?,
            hash: to_hash(row.try_get(10)?)?,
        })
    };
    rows.iter().map(decode_row).collect()
}

/// Turns rows decoded for a reader into events.
pub(crate) fn into_events(rows: Vec<StoredRow<EventMetadata>>) -> StoreResult<Vec<RecordedEvent>> {
    rows.into_iter().map(RecordedEvent::try_from).collect()
}
