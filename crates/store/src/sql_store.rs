//! The event store on SQLite or PostgreSQL. Appends go through the group-commit
//! writer of the engine; reads are the same SQL on both (sqlx binds `$1` on
//! SQLite too) and are decoded by one function.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::Row;
use textbank_domain::{OrgId, StreamId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::EventStore;
use crate::appender::Appender;
use crate::chain::{ChainReport, verify_pages};
use crate::database::{Backend, ConnectOptions, Database};
use crate::decode::{ALL_CHECKPOINTS, checkpoint_positions, decode_rows, into_events, to_u64};
use crate::error::{StoreError, StoreResult};
use crate::event::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent, StoredRow};
use crate::plan::{AppendRequest, Fence};
use crate::postgres_writer::{PgChannel, PgWriter, listen_for_appends};
use crate::sqlite_writer::{SqliteWriter, checkpoint_wal};
use crate::tx::StoreTx;

/// Most events one read returns, whatever the caller asks for.
pub const MAX_READ_BATCH: usize = 10_000;
/// Events read per page while verifying a chain.
const VERIFY_PAGE: usize = 1_000;

/// Aborts a background task when the store goes away.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An [`EventStore`] on a SQL database.
pub struct SqlEventStore {
    database: Database,
    appender: Appender,
    head: watch::Receiver<u64>,
    /// The PostgreSQL notification listener or the SQLite WAL checkpointer.
    _background: Option<AbortOnDrop>,
}

impl SqlEventStore {
    /// Opens (and by default migrates) the database a URL names.
    pub async fn open(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let database = Database::connect(url, options).await?;
        Self::on_database(database).await
    }

    /// A store on an already-connected (and migrated) database.
    pub async fn on_database(database: Database) -> StoreResult<Self> {
        let last = last_position(&database).await?;
        let (head_tx, head) = watch::channel(last);
        let (appender, background) = match &database {
            Database::Sqlite { write, read, turns } => (
                Appender::spawn(
                    SqliteWriter {
                        pool: write.clone(),
                        connection: None,
                        turns: turns.clone(),
                    },
                    head_tx,
                ),
                Some(AbortOnDrop(tokio::spawn(checkpoint_wal(read.clone())))),
            ),
            Database::Postgres(pool) => {
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(pool)
                    .await?;
                let names = PgChannel::for_schema(&schema);
                let listener = tokio::spawn(listen_for_appends(
                    pool.clone(),
                    names.channel.clone(),
                    head_tx.clone(),
                ));
                let writer = PgWriter {
                    pool: pool.clone(),
                    names,
                };
                (
                    Appender::spawn(writer, head_tx),
                    Some(AbortOnDrop(listener)),
                )
            }
        };
        Ok(Self {
            database,
            appender,
            head,
            _background: background,
        })
    }

    /// The pools, for read models that live beside the log.
    pub fn database(&self) -> &Database {
        &self.database
    }
}

/// Bounds a caller's paging arguments.
fn page(from: u64, limit: usize) -> StoreResult<(i64, i64)> {
    let from = i64::try_from(from)
        .map_err(|_| StoreError::InvalidInput(format!("{from} is out of range")))?;
    Ok((from, limit.clamp(1, MAX_READ_BATCH) as i64))
}

async fn last_position(database: &Database) -> StoreResult<u64> {
    let last: i64 = crate::on_reader!(database, |pool| {
        sqlx::query("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(pool)
            .await?
            .try_get(0)?
    });
    to_u64(last)
}

const READ_STREAM: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash \
     FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3";
const READ_ALL: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash \
     FROM events WHERE position >= $1 ORDER BY position LIMIT $2";

/// One organization's events after a position, optionally of some types
/// (a JSON array of names; empty for all). Each engine's expression is the
/// one its `events_by_org` index is built on.
const READ_ORG_SQLITE: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash \
     FROM events WHERE json_extract(metadata, '$.org_id') = $1 AND position > $2 \
       AND (json_array_length($4) = 0 OR event_type IN (SELECT value FROM json_each($4))) \
     ORDER BY position LIMIT $3";
const READ_ORG_POSTGRES: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash \
     FROM events WHERE (metadata->>'org_id') = $1 AND position > $2 \
       AND (jsonb_array_length($4::jsonb) = 0 \
            OR event_type IN (SELECT jsonb_array_elements_text($4::jsonb))) \
     ORDER BY position LIMIT $3";

/// `READ_ALL` up to a byte budget: the running total of the payloads'
/// stored sizes, excluding the row itself, must stay under `$3`.
const READ_ALL_BOUNDED_SQLITE: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash FROM ( \
       SELECT *, SUM(length(data)) OVER (ORDER BY position) - length(data) AS before FROM ( \
         SELECT * FROM events WHERE position >= $1 ORDER BY position LIMIT $2)) \
     WHERE before < $3 ORDER BY position";
const READ_ALL_BOUNDED_POSTGRES: &str = "SELECT position, event_id, stream_id, version, event_type, \
     schema_version, data, metadata, recorded_at, prev_hash, hash FROM ( \
       SELECT *, SUM(octet_length(data::text)) OVER (ORDER BY position) - octet_length(data::text) AS before \
         FROM (SELECT * FROM events WHERE position >= $1 ORDER BY position LIMIT $2) page) sized \
     WHERE before < $3 ORDER BY position";

impl SqlEventStore {
    /// A stream's rows, the metadata decoded as `M` (see [`StoredRow`]).
    async fn stream_rows<M: DeserializeOwned>(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredRow<M>>> {
        let (from, limit) = page(from_version, limit)?;
        crate::on_reader!(&self.database, |pool| {
            let rows = sqlx::query(READ_STREAM)
                .bind(stream.as_str())
                .bind(from)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            decode_rows(&rows)
        })
    }
}

/// Rows past which a page is decoded on a blocking thread: parsing thousands
/// of JSON payloads would otherwise hold up the calling task's other work
/// (a rebuild applies one batch while it reads the next).
const DECODE_OFF_THREAD_ROWS: usize = 512;

/// Decodes `rows` rows with `decode`, off the async thread for a big page.
async fn decode_page<F>(rows: usize, decode: F) -> StoreResult<Vec<RecordedEvent>>
where
    F: FnOnce() -> StoreResult<Vec<RecordedEvent>> + Send + 'static,
{
    if rows < DECODE_OFF_THREAD_ROWS {
        return decode();
    }
    match tokio::task::spawn_blocking(decode).await {
        Ok(decoded) => decoded,
        // A panic while decoding is a bug: it goes on as a panic here.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(StoreError::ShuttingDown),
    }
}

#[async_trait]
impl EventStore for SqlEventStore {
    fn backend(&self) -> Backend {
        self.database.backend()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreResult<AppendResult> {
        let request = AppendRequest::prepare(stream, expected, events)?;
        self.appender.append(request).await
    }

    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        fence: &Fence,
    ) -> StoreResult<AppendResult> {
        let request = AppendRequest::prepare(stream, expected, events)?.fenced(fence.clone());
        self.appender.append(request).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>> {
        into_events(self.stream_rows(stream, from_version, limit).await?)
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        let (from, limit) = page(from_position, limit)?;
        crate::on_reader!(&self.database, |pool| {
            let rows = sqlx::query(READ_ALL)
                .bind(from)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            decode_page(rows.len(), move || into_events(decode_rows(&rows)?)).await
        })
    }

    async fn read_all_bounded(
        &self,
        from_position: u64,
        limit: usize,
        max_bytes: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let (from, limit) = page(from_position, limit)?;
        let max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let sql = match self.database.backend() {
            Backend::Sqlite => READ_ALL_BOUNDED_SQLITE,
            Backend::Postgres => READ_ALL_BOUNDED_POSTGRES,
        };
        crate::on_reader!(&self.database, |pool| {
            let rows = sqlx::query(sql)
                .bind(from)
                .bind(limit)
                .bind(max_bytes)
                .fetch_all(pool)
                .await?;
            decode_page(rows.len(), move || into_events(decode_rows(&rows)?)).await
        })
    }

    async fn read_org(
        &self,
        org: OrgId,
        after: u64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<RecordedEvent>> {
        let (after, limit) = page(after, limit)?;
        let types = serde_json::to_string(types)
            .map_err(|err| StoreError::InvalidInput(format!("event types: {err}")))?;
        let sql = match self.database.backend() {
            Backend::Sqlite => READ_ORG_SQLITE,
            Backend::Postgres => READ_ORG_POSTGRES,
        };
        crate::on_reader!(&self.database, |pool| {
            let rows = sqlx::query(sql)
                .bind(org.to_string())
                .bind(after)
                .bind(limit)
                .bind(&types)
                .fetch_all(pool)
                .await?;
            decode_page(rows.len(), move || into_events(decode_rows(&rows)?)).await
        })
    }

    async fn checkpoints(&self, names: &[&str]) -> StoreResult<Vec<Option<u64>>> {
        let rows: Vec<(String, i64)> = crate::on_reader!(&self.database, |pool| {
            sqlx::query_as(ALL_CHECKPOINTS).fetch_all(pool).await?
        });
        checkpoint_positions(names, &rows)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    async fn head_position(&self) -> StoreResult<u64> {
        last_position(&self.database).await
    }

    async fn verify_stream(&self, stream: &StreamId) -> StoreResult<ChainReport> {
        verify_pages(stream.as_str(), VERIFY_PAGE, |from| {
            self.stream_rows::<Value>(stream, from, VERIFY_PAGE)
        })
        .await
    }

    async fn begin(&self) -> StoreResult<StoreTx> {
        Ok(match &self.database {
            Database::Sqlite { read, turns, .. } => {
                let turn = turns.take().await;
                StoreTx::Sqlite(read.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Database::Postgres(pool) => StoreTx::Postgres(pool.begin().await?),
        })
    }

    async fn checkpoint(&self, name: &str) -> StoreResult<Option<u64>> {
        let position: Option<i64> = crate::on_reader!(&self.database, |pool| {
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        position.map(crate::decode::to_u64).transpose()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.database.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_queries_select_the_decoded_columns() {
        // The order decode_rows reads them in.
        let columns = "position, event_id, stream_id, version, event_type, schema_version, \
                       data, metadata, recorded_at, prev_hash, hash";
        for sql in [READ_STREAM, READ_ALL] {
            assert!(
                sql.starts_with(&format!("SELECT {columns} FROM events ")),
                "{sql}"
            );
        }
    }
}
