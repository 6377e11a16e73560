//! Leadership of a background role (the dispatcher) among the processes that
//! share one database: on PostgreSQL, a session advisory lock held on a
//! connection of its own; on SQLite, the process that opened the file leads
//! (an embedded database has one server).

use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::database::Database;
use crate::error::StoreResult;

/// Held while leading; dropping it closes the lock's connection, which ends
/// the lock on the server.
pub struct Leader {
    connection: Option<sqlx::PgConnection>,
}

/// How long the lock's connection may take to answer before the leader
/// counts it as lost.
const LOCK_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Leader {
    /// Whether this process still holds the lock: on PostgreSQL, whether the
    /// lock's connection still answers. A connection the server ended (a
    /// restart, `pg_terminate_backend`, a network cut) took the lock with
    /// it, and another process may already lead; the caller must stop
    /// before its next batch and try to lead again.
    pub async fn still_leads(&mut self) -> bool {
        let Some(connection) = &mut self.connection else {
            return true;
        };
        let answered = tokio::time::timeout(
            LOCK_CHECK_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut *connection),
        )
        .await;
        matches!(answered, Ok(Ok(1)))
    }
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader").finish_non_exhaustive()
    }
}

/// Takes the lead of `role` if no other process holds it.
pub async fn try_lead(database: &Database, role: &str) -> StoreResult<Option<Leader>> {
    let pool = match database {
        Database::Sqlite { .. } => return Ok(Some(Leader { connection: None })),
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
    if led {
        Ok(Some(Leader {
            connection: Some(connection),
        }))
    } else {
        connection.close().await?;
        Ok(None)
    }
}
