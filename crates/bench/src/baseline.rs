//! The benchmarks' baseline: the same rows written with plain INSERTs into a
//! bare table that has the event log's columns and indexes but none of its
//! machinery (no version checks, no idempotency lookups, no hash chain, no
//! group commit). The statements are the store's own INSERTs (multi-row
//! VALUES on SQLite, UNNEST arrays on PostgreSQL), through
//! `textbank_store::insert_unchecked`.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AssertSqlSafe;
use textbank_domain::StreamId;
use textbank_store::{Database, NewEvent, StoreResult, insert_unchecked};

const TABLE: &str = "bench_baseline_events";

/// A scratch copy of the events table, dropped by [`BaselineTable::drop_table`].
pub struct BaselineTable {
    database: Database,
    next_position: AtomicU64,
}

/// The events table's columns and keys; `{int}`, `{uuid}`, `{json}`,
/// `{time}` and `{bytes}` stand for each engine's types.
const COLUMNS: &str = "position {int} PRIMARY KEY, event_id {uuid} NOT NULL UNIQUE,
    stream_id TEXT NOT NULL, version {int} NOT NULL, event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, data {json} NOT NULL, metadata {json} NOT NULL,
    recorded_at {time} NOT NULL, prev_hash {bytes} NOT NULL, hash {bytes} NOT NULL,
    UNIQUE (stream_id, version)";

fn create_sql(database: &Database) -> String {
    // Types as the migrations declare them for `events` on each engine.
    let (int, uuid, json, time, bytes) = match database {
        Database::Sqlite { .. } => ("INTEGER", "BLOB", "TEXT", "TEXT", "BLOB"),
        Database::Postgres(_) => ("BIGINT", "UUID", "JSONB", "TIMESTAMPTZ", "BYTEA"),
    };
    let columns = COLUMNS
        .replace("{int}", int)
        .replace("{uuid}", uuid)
        .replace("{json}", json)
        .replace("{time}", time)
        .replace("{bytes}", bytes);
    format!("CREATE TABLE {TABLE} ({columns})")
}

/// Runs a statement built from constants of this module.
async fn execute(database: &Database, sql: String) -> StoreResult<()> {
    match database {
        Database::Sqlite { write, .. } => {
            sqlx::query(AssertSqlSafe(sql)).execute(write).await?;
        }
        Database::Postgres(pool) => {
            sqlx::query(AssertSqlSafe(sql)).execute(pool).await?;
        }
    }
    Ok(())
}

impl BaselineTable {
    pub async fn create(database: &Database) -> StoreResult<Self> {
        execute(database, format!("DROP TABLE IF EXISTS {TABLE}")).await?;
        execute(database, create_sql(database)).await?;
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
        execute(&self.database, format!("DROP TABLE IF EXISTS {TABLE}")).await
    }
}
