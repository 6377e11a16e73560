//! Opening the database a URL names, with the settings each engine needs, and
//! applying the embedded migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{StoreError, StoreResult};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The backend a database URL selects.
    pub fn of_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(StoreError::UnsupportedUrl(
                    "in-memory SQLite cannot be shared by the reader and writer connections; use a file".into(),
                ));
            }
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(format!(
                "{}: expected sqlite://PATH or postgres://…",
                redact_url(url)
            )))
        }
    }
}

/// Connection pools of one database. SQLite gets a separate single-connection
/// pool for writers (the event writer detaches its own connection from it),
/// so appends never wait behind readers for a connection.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        turns: WriteTurns,
    },
    Postgres(PgPool),
}

/// The order in which this process's SQLite write transactions (the event
/// writer's and the read models') take the database's one write lock
/// (ADR 0017). A writer that finds the lock taken is made to sleep and
/// retry by SQLite (1, 2, 5, … up to 100 ms between tries), so an append
/// arriving just after a projector began could wait several times longer
/// than the projector's transaction. Queueing here first hands the lock
/// over the moment it is free, in arrival order; the busy timeout remains
/// for other processes.
#[derive(Debug, Clone, Default)]
pub struct WriteTurns(Arc<tokio::sync::Mutex<()>>);

/// The right to write until dropped.
#[derive(Debug)]
pub struct WriteTurn(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

impl WriteTurns {
    /// Waits for this process's earlier writers to finish.
    pub async fn take(&self) -> WriteTurn {
        WriteTurn(self.0.clone().lock_owned().await)
    }
}

/// The shared memory map SQLite reads through by default: 1 GiB.
pub const DEFAULT_SQLITE_MMAP_BYTES: u64 = 1 << 30;
/// What SQLite may hold in memory by default, all connections together
/// (page caches above all): 64 MiB.
pub const DEFAULT_SQLITE_CACHE_BYTES: u64 = 64 << 20;

/// Tuning for [`Database::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Pool size for readers (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// Apply the embedded migrations after connecting.
    pub migrate: bool,
    /// SQLite only: bytes of the database file read through a shared memory
    /// map (0: none). Faster reads, but an I/O error on a mapped page (the
    /// files made unwritable, a failing disk) ends the process with SIGBUS
    /// instead of failing one query (ADR 0023).
    pub sqlite_mmap_bytes: u64,
    /// SQLite only: the process's soft limit on SQLite's own memory, every
    /// connection's page cache together. Past it SQLite recycles cached
    /// pages instead of allocating more, so the heap stays bounded however
    /// many pooled connections have read or written however many pages.
    pub sqlite_cache_bytes: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            migrate: true,
            sqlite_mmap_bytes: DEFAULT_SQLITE_MMAP_BYTES,
            sqlite_cache_bytes: DEFAULT_SQLITE_CACHE_BYTES,
        }
    }
}

impl Database {
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let database = match Backend::of_url(url)? {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // Up to 64 MiB of page cache per connection (negative =
                    // KiB), within the process-wide limit below.
                    .pragma("cache_size", "-65536")
                    // Process-wide (the last connection to set it wins, and
                    // all set the same): the pool's page caches share one
                    // budget, recycled least recently used first.
                    .pragma("soft_heap_limit", options.sqlite_cache_bytes.to_string())
                    .pragma("temp_store", "memory")
                    // Reads through a shared memory map: every pooled
                    // connection sees the OS page cache at once instead of
                    // warming its own copy (address space only; ADR 0023).
                    .pragma("mmap_size", options.sqlite_mmap_bytes.to_string())
                    // Checkpoints run in the store's background task, not in
                    // whichever commit crosses a threshold (see sqlite_writer).
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("journal_size_limit", "67108864");
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .before_acquire(|conn, _| Box::pin(async move { Ok(out_of_transaction(conn)) }))
                    .connect_with(connect.clone())
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .before_acquire(|conn, _| Box::pin(async move { Ok(out_of_transaction(conn)) }))
                    .connect_with(connect)
                    .await?;
                Self::Sqlite {
                    read,
                    write,
                    turns: WriteTurns::default(),
                }
            }
            Backend::Postgres => {
                // "textbank" unless the URL names the process itself (an
                // operator telling several servers apart in pg_stat_activity).
                let mut connect = PgConnectOptions::from_str(url)?;
                if connect.get_application_name().is_none() {
                    connect = connect.application_name("textbank");
                }
                Self::connect_postgres(connect, options).await?
            }
        };
        if options.migrate {
            database.migrate().await?;
        }
        Ok(database)
    }

    /// PostgreSQL with explicit options (tests use them to pin a schema).
    pub async fn connect_postgres(
        connect: PgConnectOptions,
        options: &ConnectOptions,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .before_acquire(|conn, _| Box::pin(async move { Ok(out_of_transaction(conn)) }))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await?;
        Ok(Self::Postgres(pool))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every embedded migration not yet applied.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Round trip to the database: is it reachable right now?
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite { read, .. } => {
                sqlx::query("SELECT 1").execute(read).await?;
            }
            Self::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Rewrites the one row of `write_probe`: whether the database takes
    /// writes, which a full disk or a read-only volume refuses while reads
    /// still work.
    pub async fn probe_write(&self) -> StoreResult<()> {
        const PROBE: &str = "UPDATE write_probe SET probes = probes + 1 WHERE id = 1";
        match self {
            Self::Sqlite { write, .. } => {
                sqlx::query(PROBE).execute(write).await?;
            }
            Self::Postgres(pool) => {
                sqlx::query(PROBE).execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A URL safe to print: the password, if any, replaced.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Whether a pooled connection may be handed out: not when it still counts
/// itself inside a transaction. A transaction whose COMMIT failed (a full
/// disk) and whose ROLLBACK then failed too (the database had already rolled
/// it back) leaves the connection at a non-zero depth; every later `BEGIN`
/// on it would fail ("begin_with at non-zero transaction depth") until the
/// process restarted. Such a connection is closed and replaced instead.
/// Pending rollbacks of dropped transactions are flushed when a connection
/// is returned, so a healthy one is never thrown away here.
fn out_of_transaction<C: sqlx::Connection>(conn: &mut C) -> bool {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("discarding a pooled connection left inside a failed transaction");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_their_backend() {
        assert_eq!(
            Backend::of_url("sqlite://textbank.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://u@h/db").is_err());
        assert!(Backend::of_url("sqlite::memory:").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        let err = Backend::of_url("mysql://root:hunter2@db/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
