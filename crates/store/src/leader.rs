//! Leadership of a background role (the dispatcher) among the processes that
//! share one database: on PostgreSQL, a session advisory lock held on a
//! connection of its own; on SQLite, the process that opened the file leads
//! (an embedded database has one server).
//!
//! Each new leader raises the role's term in `leader_terms`, and the writes
//! that must come from the leader alone are appended fenced with it
//! ([`crate::EventStore::append_fenced`]): a former leader that has not yet
//! noticed its loss has such a write refused, not recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::database::Database;
use crate::decode::to_u64;
use crate::error::StoreResult;
use crate::plan::Fence;

/// How often the lock's connection is asked whether it is still there.
const LOCK_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long the lock's connection may take to answer before the leader
/// counts it as lost.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

const RAISE_TERM: &str = "INSERT INTO leader_terms (role, term) VALUES ($1, 1)
    ON CONFLICT (role) DO UPDATE SET term = leader_terms.term + 1
    RETURNING term";

/// Held while leading. On PostgreSQL a task owns the lock's connection and
/// watches it; dropping the leader ends the task, which closes the
/// connection and so releases the lock on the server.
pub struct Leader {
    fence: Fence,
    lost: Arc<AtomicBool>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Leader {
    /// Whether this process still holds the lead: on PostgreSQL, whether the
    /// lock's connection answered its last check (a quarter of a second
    /// ago at most). A connection the server ended (a restart,
    /// `pg_terminate_backend`, a network cut) took the lock with it, and
    /// another process may already lead; the caller must stop and try to
    /// lead again. Fenced writes protect the moments in between.
    pub fn still_leads(&self) -> bool {
        !self.lost.load(Ordering::Acquire)
    }

    /// The fence for this leader's writes.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(watcher) = &self.watcher {
            watcher.abort();
        }
    }
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("fence", &self.fence)
            .finish_non_exhaustive()
    }
}

/// Takes the lead of `role` if no other process holds it, under a new term.
pub async fn try_lead(database: &Database, role: &str) -> StoreResult<Option<Leader>> {
    let pool = match database {
        Database::Sqlite { write, .. } => {
            let term: i64 = sqlx::query_scalar(RAISE_TERM)
                .bind(role)
                .fetch_one(write)
                .await?;
            return Ok(Some(Leader {
                fence: Fence {
                    role: role.to_owned(),
                    term: to_u64(term)?,
                },
                lost: Arc::default(),
                watcher: None,
            }));
        }
        Database::Postgres(pool) => pool,
    };
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    let digest = Sha256::digest(format!("textbank-leader:{schema}:{role}"));
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    // Detached from the pool: the lock lives as long as this connection,
    // and must not be handed to another task when the leader lets go.
    let mut connection = pool.acquire().await?.detach();
    let led: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(i64::from_be_bytes(key))
        .fetch_one(&mut connection)
        .await?;
    if !led {
        connection.close().await?;
        return Ok(None);
    }
    let term: i64 = sqlx::query_scalar(RAISE_TERM)
        .bind(role)
        .fetch_one(&mut connection)
        .await?;
    let lost = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_lock(connection, lost.clone()));
    Ok(Some(Leader {
        fence: Fence {
            role: role.to_owned(),
            term: to_u64(term)?,
        },
        lost,
        watcher: Some(watcher),
    }))
}

/// Asks the lock's connection every [`LOCK_CHECK_EVERY`] whether it is
/// still there; the first time it does not answer, the lead is lost for
/// good (a new lead is a new [`try_lead`] and a new term).
async fn watch_lock(mut connection: sqlx::PgConnection, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(LOCK_CHECK_EVERY).await;
        let answered = tokio::time::timeout(
            LOCK_CHECK_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut connection),
        )
        .await;
        if !matches!(answered, Ok(Ok(1))) {
            lost.store(true, Ordering::Release);
            return;
        }
    }
}
