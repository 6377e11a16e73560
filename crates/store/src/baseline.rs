//! The benchmark's baseline: the same rows written with plain INSERTs into a
//! bare table that has the event log's columns and indexes but none of its
//! machinery (no version checks, no idempotency lookups, no hash chain, no
//! group commit). `textbank bench append` prints the store's figure beside it.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use textbank_domain::StreamId;

use crate::chain::GENESIS_HASH;
use crate::database::Database;
use crate::error::StoreResult;
use crate::event::{ExpectedVersion, NewEvent};
use crate::plan::{AppendRequest, PendingRow};
use crate::{postgres_writer, sqlite_writer};

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
        let request = AppendRequest::prepare(stream, ExpectedVersion::Any, events)?;
        let count = request.events.len() as u64;
        let first_position = self.next_position.fetch_add(count, Ordering::Relaxed);
        let recorded_at = Utc::now();
        let rows: Vec<PendingRow> = request
            .events
            .iter()
            .zip(0u64..)
            .map(|(event, offset)| PendingRow {
                position: first_position + offset,
                event_id: event.event_id,
                stream_id: &request.stream_name,
                version: first_version + offset,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                data_json: &event.data_json,
                metadata_json: &event.metadata_json,
                recorded_at,
                prev_hash: GENESIS_HASH,
                hash: GENESIS_HASH,
            })
            .collect();
        match &self.database {
            Database::Sqlite { write, .. } => {
                let mut tx = write.begin().await?;
                sqlite_writer::insert_rows_into(&mut tx, TABLE, &rows).await?;
                tx.commit().await?;
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                postgres_writer::insert_rows_into(&mut tx, TABLE, &rows).await?;
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
