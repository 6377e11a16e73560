//! The PostgreSQL batch writer and the cross-process wake-up listener.
//!
//! Each batch is one transaction that first takes a transaction-scoped
//! advisory lock: one writer at a time across every process sharing the
//! database, so `MAX(position) + 1` is safe and positions become visible in
//! order. Group commit (see `appender`) keeps that single writer fast. After
//! the rows, one `pg_notify` per transaction tells other processes' readers.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, Row};
use tokio::sync::watch;

use crate::appender::{BatchWriter, advance};
use crate::decode::{to_hash, to_u64};
use crate::error::StoreResult;
use crate::event::AppendResult;
use crate::plan::{AppendRequest, BatchFacts, PendingRow, StoredEventRef, StreamHead, plan_batch};

/// Names that keep stores in different schemas of one database apart: their
/// own advisory lock and their own notification channel.
#[derive(Debug, Clone)]
pub(crate) struct PgChannel {
    pub lock_key: i64,
    pub channel: String,
}

impl PgChannel {
    pub fn for_schema(schema: &str) -> Self {
        let digest = Sha256::digest(format!("textbank-event-writer:{schema}"));
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        // Channel names are identifiers: at most 63 bytes.
        let mut channel = format!("textbank_events_{schema}");
        channel.truncate(63);
        Self {
            lock_key: i64::from_be_bytes(key),
            channel,
        }
    }
}

pub(crate) struct PgWriter {
    pub pool: PgPool,
    pub names: PgChannel,
}

impl BatchWriter for PgWriter {
    async fn write(
        &mut self,
        batch: &[AppendRequest],
    ) -> StoreResult<Vec<StoreResult<AppendResult>>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.names.lock_key)
            .execute(&mut *tx)
            .await?;
        let facts = lookup_facts(&mut tx, batch).await?;
        let plan = plan_batch(batch, facts, Utc::now());
        if let Some(last) = plan.last_position() {
            insert_rows_into(&mut tx, "events", &plan.rows).await?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.names.channel)
                .bind(last.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }
}

async fn lookup_facts(conn: &mut PgConnection, batch: &[AppendRequest]) -> StoreResult<BatchFacts> {
    let mut streams: Vec<&str> = batch.iter().map(|r| r.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let heads = sqlx::query(
        "SELECT s.stream_id, e.version, e.hash
           FROM UNNEST($1::text[]) AS s(stream_id)
           CROSS JOIN LATERAL (
                SELECT version, hash FROM events
                 WHERE events.stream_id = s.stream_id
                 ORDER BY version DESC LIMIT 1) AS e",
    )
    .bind(&streams)
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

    let ids: Vec<uuid::Uuid> = batch
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| e.event_id)
        .collect();
    let stored = sqlx::query(
        "SELECT event_id, stream_id, version, position FROM events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
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
    .collect::<StoreResult<HashMap<_, _>>>()?;

    let last_position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let terms =
        crate::macros::current_terms!(conn, batch, crate::plan::CURRENT_TERM_POSTGRES).await?;
    Ok(BatchFacts {
        heads,
        stored,
        last_position: to_u64(last_position)?,
        terms,
    })
}

/// One INSERT of all pending rows into `table`, the columns passed as arrays
/// and zipped by `UNNEST` (one statement whatever the batch size).
pub(crate) async fn insert_rows_into(
    conn: &mut PgConnection,
    table: &str,
    rows: &[PendingRow<'_>],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO {table} (position, event_id, stream_id, version, event_type, schema_version, \
                              data, metadata, recorded_at, prev_hash, hash)
         SELECT p, i, s, v, t, sv, d::jsonb, m::jsonb, r, ph, h
           FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int[],
                       $7::text[], $8::text[], $9::timestamptz[], $10::bytea[], $11::bytea[])
                AS x(p, i, s, v, t, sv, d, m, r, ph, h)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(rows.iter().map(|r| r.position as i64).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.stream_id.as_ref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.version as i64).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.event_type.as_ref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.schema_version as i32)
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.data_json.as_ref())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.metadata_json.as_ref())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.prev_hash.to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.hash.to_vec()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Follows other processes' appends: each notification carries the last
/// position of a committed transaction. After every (re)connect the head is
/// re-read, since notifications sent while disconnected are lost.
pub(crate) async fn listen_for_appends(pool: PgPool, channel: String, head: watch::Sender<u64>) {
    loop {
        match follow(&pool, &channel, &head).await {
            Ok(never) => match never {},
            Err(err) => {
                tracing::warn!(error = %err, "event notification listener lost its connection; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn follow(
    pool: &PgPool,
    channel: &str,
    head: &watch::Sender<u64>,
) -> StoreResult<std::convert::Infallible> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    advance(head, to_u64(last)?);
    loop {
        let notification = listener.recv().await?;
        if let Ok(position) = notification.payload().parse::<u64>() {
            advance(head, position);
        }
    }
}
