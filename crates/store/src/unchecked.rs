//! The event log's own INSERT statements, aimed at another table with the
//! log's columns and run without the log's machinery (no version check, no
//! idempotency lookup, no hash chain, no group commit): the plain write the
//! benchmarks compare the log's writer with, kept in one copy with the
//! writer's.

use chrono::Utc;
use sqlx::Connection;
use textbank_domain::StreamId;

use crate::chain::GENESIS_HASH;
use crate::database::Database;
use crate::error::StoreResult;
use crate::event::{ExpectedVersion, NewEvent};
use crate::plan::{AppendRequest, PendingRow};
use crate::{postgres_writer, sqlite_writer};

/// Inserts `events` into `table` (a trusted name, never input) as versions
/// `first_version..` of `stream` at positions `first_position..`, in one
/// transaction, serialized exactly as the log serializes them.
pub async fn insert_unchecked(
    database: &Database,
    table: &str,
    stream: &StreamId,
    first_version: u64,
    first_position: u64,
    events: Vec<NewEvent>,
) -> StoreResult<()> {
    let request = AppendRequest::prepare(stream, ExpectedVersion::Any, events)?;
    let recorded_at = Utc::now();
    let rows: Vec<PendingRow<'_>> = request
        .events
        .iter()
        .zip(first_version..)
        .zip(first_position..)
        .map(|((event, version), position)| {
            PendingRow::new(
                &request,
                event,
                (position, version),
                recorded_at,
                (GENESIS_HASH, GENESIS_HASH),
            )
        })
        .collect();
    match database {
        Database::Sqlite { write, .. } => {
            let mut conn = write.acquire().await?;
            let mut tx = conn.begin().await?;
            sqlite_writer::insert_rows_into(&mut tx, table, &rows).await?;
            tx.commit().await?;
        }
        Database::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            postgres_writer::insert_rows_into(&mut tx, table, &rows).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
