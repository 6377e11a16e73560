//! The benchmarks' baseline: the same rows written with plain INSERTs into a
//! bare table that has the event log's columns and indexes but none of its
//! machinery (no version checks, no idempotency lookups, no hash chain, no
//! group commit). The statements are the store's own INSERTs (multi-row
//! VALUES on SQLite, UNNEST arrays on PostgreSQL), through
//! `textbank_store::insert_unchecked`.

use std::sync::atomic::{AtomicU64, Ordering};

use textbank_domain::StreamId;
use textbank_store::{Database, NewEvent, StoreResult, insert_unchecked};

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
    /// transaction with the log's own INSERT statements.
    pub async fn insert(
        &self,
        stream: &StreamId,
        first_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let first_position = self
            .next_position
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        insert_unchecked(
            &self.database,
            TABLE,
            stream,
            first_version,
            first_position,
            events,
        )
        .await
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
