//! The SQLite batch writer: one `BEGIN IMMEDIATE` transaction per batch on the
//! dedicated writer connection. Lookups pass their keys as one JSON array
//! (`json_each`) so each statement's text — and its cached plan — is the same
//! whatever the batch size.
//!
//! Event ids are not looked up on the first attempt: a re-appended id is rare
//! (a client retry), and the UNIQUE index catches it anyway. When it does —
//! or when a request conflicts, which a retry of a stored append would — the
//! batch is rolled back and decided again with the stored ids in hand. WAL
//! checkpoints run in a background task rather than inside the writer's
//! commits, so an append never waits for pages to be copied.

use std::collections::HashMap;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::appender::BatchWriter;
use crate::database::WriteTurns;
use crate::decode::{to_hash, to_u64};
use crate::error::{StoreError, StoreResult};
use crate::event::AppendResult;
use crate::plan::{AppendRequest, BatchFacts, PendingRow, StoredEventRef, StreamHead, plan_batch};

/// Rows per INSERT statement: 11 columns × 256 rows stays far below SQLite's
/// 32,766 bound-parameter limit.
const INSERT_CHUNK: usize = 256;

pub(crate) struct SqliteWriter {
    pub pool: SqlitePool,
    /// The writer's connection, kept between batches (handing it back to
    /// the pool and taking it again cost task switches each batch) and
    /// detached from the pool, so closing the pool never waits for it.
    pub connection: Option<SqliteConnection>,
    pub turns: WriteTurns,
}

impl BatchWriter for SqliteWriter {
    async fn write(
        &mut self,
        batch: &[AppendRequest],
    ) -> StoreResult<Vec<StoreResult<AppendResult>>> {
        let outcome = match self.attempt(batch, false).await {
            Ok(Some(outcomes)) => return Ok(outcomes),
            Ok(None) => self.attempt(batch, true).await,
            Err(StoreError::Database(err)) if is_unique_violation(&err) => {
                self.attempt(batch, true).await
            }
            Err(err) => Err(err),
        };
        if outcome.is_err() {
            // A fresh connection after a failure.
            self.connection = None;
        }
        Ok(outcome?.unwrap_or_default())
    }
}

impl SqliteWriter {
    /// One try at the batch. Without the id lookup, a conflict might really
    /// be the retry of an append that already succeeded (whose answer is its
    /// original result, not a conflict): then nothing is written and `None`
    /// asks for a second try with the lookup.
    async fn attempt(
        &mut self,
        batch: &[AppendRequest],
        lookup_ids: bool,
    ) -> StoreResult<Option<Vec<StoreResult<AppendResult>>>> {
        let conn = match &mut self.connection {
            Some(conn) => conn,
            empty => empty.insert(self.pool.acquire().await?.detach()),
        };
        let _turn = self.turns.take().await;
        let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
        let facts = lookup_facts(&mut tx, batch, lookup_ids).await?;
        let plan = plan_batch(batch, facts, Utc::now());
        let conflicted = plan
            .outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(StoreError::is_conflict));
        if conflicted && !lookup_ids {
            tx.rollback().await?;
            return Ok(None);
        }
        insert_rows(&mut tx, &plan.rows).await?;
        tx.commit().await?;
        Ok(Some(plan.outcomes))
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Copies committed WAL pages into the database file every so often, off the
/// writer's path (connections are opened with `wal_autocheckpoint=0`).
pub(crate) async fn checkpoint_wal(pool: SqlitePool) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %err, "WAL checkpoint failed");
        }
    }
}

/// Stream heads, the last position and — when asked — which of the batch's
/// event ids are already stored.
async fn lookup_facts(
    conn: &mut SqliteConnection,
    batch: &[AppendRequest],
    lookup_ids: bool,
) -> StoreResult<BatchFacts> {
    let mut streams: Vec<&str> = batch.iter().map(|r| r.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let heads = sqlx::query(
        "SELECT e.stream_id, e.version, e.hash
           FROM json_each($1) AS s
           JOIN events AS e ON e.stream_id = s.value
          WHERE e.version = (SELECT MAX(version) FROM events WHERE stream_id = s.value)",
    )
    .bind(serde_json::to_string(&streams).unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get::<String, _>(0)?,
            StreamHead {
                version: to_u64(row.try_get(1)?)?,
                hash: to_hash(row.try_get(2)?)?,
            },
        ))
    })
    .collect::<StoreResult<HashMap<_, _>>>()?;

    let ids: Vec<String> = if !lookup_ids {
        Vec::new()
    } else {
        batch
            .iter()
            .flat_map(|r| &r.events)
            .map(|e| hex::encode(e.event_id.as_bytes()))
            .collect()
    };
    let stored = if ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query(
            "SELECT e.event_id, e.stream_id, e.version, e.position
           FROM json_each($1) AS i
           JOIN events AS e ON e.event_id = unhex(i.value)",
        )
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                StoredEventRef {
                    stream_id: row.try_get(1)?,
                    version: to_u64(row.try_get(2)?)?,
                    position: to_u64(row.try_get(3)?)?,
                },
            ))
        })
        .collect::<StoreResult<HashMap<_, _>>>()?
    };

    let last_position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let terms =
        crate::macros::current_terms!(conn, batch, crate::plan::CURRENT_TERM_SQLITE).await?;
    Ok(BatchFacts {
        heads,
        stored,
        last_position: to_u64(last_position)?,
        terms,
    })
}

/// Multi-row INSERTs of pending rows into `table` (the event log; the
/// benchmarks' baseline in `textbank-bench` writes the same statement).
pub(crate) async fn insert_rows_into(
    conn: &mut SqliteConnection,
    table: &str,
    rows: &[PendingRow<'_>],
) -> StoreResult<()> {
    // Every row of a batch has the same recorded_at: format it once, at a
    // fixed width so the text sorts like the time.
    let mut recorded: Option<(DateTime<Utc>, Arc<str>)> = None;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {table} (position, event_id, stream_id, version, event_type, schema_version, \
             data, metadata, recorded_at, prev_hash, hash) "
        ));
        insert.push_values(chunk, |mut values, row| {
            let recorded_at = match &recorded {
                Some((at, text)) if *at == row.recorded_at => text.clone(),
                _ => {
                    let text: Arc<str> = row
                        .recorded_at
                        .to_rfc3339_opts(SecondsFormat::Micros, false)
                        .into();
                    recorded = Some((row.recorded_at, text.clone()));
                    text
                }
            };
            values
                .push_bind(row.position as i64)
                .push_bind(row.event_id)
                .push_bind(row.stream_id.clone())
                .push_bind(row.version as i64)
                .push_bind(row.event_type.clone())
                .push_bind(row.schema_version as i32)
                .push_bind(row.data_json.clone())
                .push_bind(row.metadata_json.clone())
                .push_bind(recorded_at)
                .push_bind(row.prev_hash.to_vec())
                .push_bind(row.hash.to_vec());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_rows(conn: &mut SqliteConnection, rows: &[PendingRow<'_>]) -> StoreResult<()> {
    insert_rows_into(conn, "events", rows).await
}
