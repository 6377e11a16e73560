//! The benchmarks' baseline: the same rows written with plain INSERTs into a
//! bare table that has the event log's columns and indexes but none of its
//! machinery (no version checks, no idempotency lookups, no hash chain, no
//! group commit). The statements are the store's own INSERTs (multi-row
//! VALUES on SQLite, UNNEST arrays on PostgreSQL), written out here so the
//! store keeps its writer private.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{SecondsFormat, Utc};
use sqlx::{QueryBuilder, Sqlite};
use textbank_domain::StreamId;
use textbank_store::chain::{GENESIS_HASH, canonical_json};
use textbank_store::{Database, NewEvent, StoreError, StoreResult};

/// Rows per SQLite statement, as the store's writer has it.
const INSERT_CHUNK: usize = 256;

const TABLE: &str = "bench_baseline_events";

/// A scratch copy of the events table, dropped by [`BaselineTable::drop_table`].
pub struct BaselineTable {
    database: Database,
    next_position: AtomicU64,
}

impl BaselineTable {
    pub async fn create(database: &Database) -> StoreResult<Self> {
        let (drop, create) = match database {
            Database::Sqlite { .. } => (
                "DROP TABLE IF EXISTS bench_baseline_events",
                "CREATE TABLE bench_baseline_events (
                    position INTEGER PRIMARY KEY, event_id BLOB NOT NULL UNIQUE,
                    stream_id TEXT NOT NULL, version INTEGER NOT NULL, event_type TEXT NOT NULL,
                    schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL,
                    recorded_at TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL,
                    UNIQUE (stream_id, version))",
            ),
            Database::Postgres(_) => (
                "DROP TABLE IF EXISTS bench_baseline_events",
                "CREATE TABLE bench_baseline_events (
                    position BIGINT PRIMARY KEY, event_id UUID NOT NULL UNIQUE,
                    stream_id TEXT NOT NULL, version BIGINT NOT NULL, event_type TEXT NOT NULL,
                    schema_version INTEGER NOT NULL, data JSONB NOT NULL, metadata JSONB NOT NULL,
                    recorded_at TIMESTAMPTZ NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL,
                    UNIQUE (stream_id, version))",
            ),
        };
        match database {
            Database::Sqlite { write, .. } => {
                sqlx::query(drop).execute(write).await?;
                sqlx::query(create).execute(write).await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(drop).execute(pool).await?;
                sqlx::query(create).execute(pool).await?;
            }
        }
        Ok(Self {
            database: database.clone(),
            next_position: AtomicU64::new(1),
        })
    }

    /// Inserts `events` as versions `first_version..` of `stream` in one
    /// transaction with multi-row INSERTs.
    pub async fn insert(
        &self,
        stream: &StreamId,
        first_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let rows = rows(stream, first_version, events)?;
        let first_position = self
            .next_position
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        let recorded_at = Utc::now();
        match &self.database {
            Database::Sqlite { write, .. } => {
                let recorded_at = recorded_at.to_rfc3339_opts(SecondsFormat::Micros, false);
                let mut tx = write.begin().await?;
                for (chunk_index, chunk) in rows.chunks(INSERT_CHUNK).enumerate() {
                    let first = first_position + (chunk_index * INSERT_CHUNK) as u64;
                    let mut insert =
                        QueryBuilder::<Sqlite>::new(format!("INSERT INTO {TABLE} {COLUMNS} "));
                    insert.push_values(chunk.iter().zip(first..), |mut values, (row, position)| {
                        values
                            .push_bind(position as i64)
                            .push_bind(row.event_id)
                            .push_bind(row.stream_id.clone())
                            .push_bind(row.version as i64)
                            .push_bind(row.event_type.clone())
                            .push_bind(row.schema_version as i32)
                            .push_bind(row.data_json.clone())
                            .push_bind(row.metadata_json.clone())
                            .push_bind(recorded_at.clone())
                            .push_bind(GENESIS_HASH.to_vec())
                            .push_bind(GENESIS_HASH.to_vec());
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Database::Postgres(pool) => {
                let sql = format!(
                    "INSERT INTO {TABLE} {COLUMNS}
                     SELECT p, i, s, v, t, sv, d::jsonb, m::jsonb, r, ph, h
                       FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                                   $6::int[], $7::text[], $8::text[], $9::timestamptz[],
                                   $10::bytea[], $11::bytea[])
                            AS x(p, i, s, v, t, sv, d, m, r, ph, h)"
                );
                let hashes = vec![GENESIS_HASH.to_vec(); rows.len()];
                let mut tx = pool.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(
                        (first_position..)
                            .take(rows.len())
                            .map(|p| p as i64)
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|r| r.stream_id.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(rows.iter().map(|r| r.version as i64).collect::<Vec<_>>())
                    .bind(
                        rows.iter()
                            .map(|r| r.event_type.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        rows.iter()
                            .map(|r| r.schema_version as i32)
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        rows.iter()
                            .map(|r| r.data_json.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        rows.iter()
                            .map(|r| r.metadata_json.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .bind(vec![recorded_at; rows.len()])
                    .bind(&hashes)
                    .bind(&hashes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    pub async fn drop_table(self) -> StoreResult<()> {
        let sql = "DROP TABLE IF EXISTS bench_baseline_events";
        match &self.database {
            Database::Sqlite { write, .. } => {
                sqlx::query(sql).execute(write).await?;
            }
            Database::Postgres(pool) => {
                sqlx::query(sql).execute(pool).await?;
            }
        }
        Ok(())
    }
}

const COLUMNS: &str = "(position, event_id, stream_id, version, event_type, schema_version, \
                       data, metadata, recorded_at, prev_hash, hash)";

/// One event as the log stores it, serialized as the store serializes it.
struct Row {
    event_id: uuid::Uuid,
    stream_id: String,
    version: u64,
    event_type: String,
    schema_version: u32,
    data_json: String,
    metadata_json: String,
}

fn rows(stream: &StreamId, first_version: u64, events: Vec<NewEvent>) -> StoreResult<Vec<Row>> {
    // Events of one call usually share their metadata: serialized once, as
    // the store does.
    let mut last_metadata: Option<(textbank_domain::EventMetadata, String)> = None;
    events
        .into_iter()
        .zip(first_version..)
        .map(|(event, version)| {
            let metadata_json = match &last_metadata {
                Some((metadata, json)) if *metadata == event.metadata => json.clone(),
                _ => {
                    let value = serde_json::to_value(&event.metadata)
                        .map_err(|err| StoreError::InvalidInput(format!("metadata: {err}")))?;
                    let json = canonical_json(&value);
                    last_metadata = Some((event.metadata, json.clone()));
                    json
                }
            };
            Ok(Row {
                event_id: event.event_id,
                stream_id: stream.as_str().to_owned(),
                version,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data_json: canonical_json(&event.data),
                metadata_json,
            })
        })
        .collect()
}
