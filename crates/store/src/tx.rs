//! A transaction on the store's database, for work that must commit together
//! with a projector checkpoint (read-model rows and "applied up to N").

use chrono::Utc;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::database::WriteTurn;
use crate::decode::{ALL_CHECKPOINTS, checkpoint_positions, to_u64};
use crate::error::{StoreError, StoreResult};

/// Longest checkpoint name.
const MAX_CHECKPOINT_NAME_LEN: usize = 100;

/// An open transaction; dropped without `commit` it rolls back.
pub enum StoreTx {
    /// Begun with `BEGIN IMMEDIATE`, in its process's write turn: it will
    /// write, so it takes the write lock up front instead of failing to
    /// upgrade a read lock later.
    Sqlite(Transaction<'static, Sqlite>, WriteTurn),
    Postgres(Transaction<'static, Postgres>),
}

impl StoreTx {
    /// The last position the named projector applied, if it ever ran.
    ///
    /// Also makes this transaction the only one working on the checkpoint
    /// until it ends: SQLite's `BEGIN IMMEDIATE` already serializes writers;
    /// on PostgreSQL a transaction-scoped advisory lock per checkpoint (and
    /// schema) does, so two runners of one projector — in one process or
    /// several — never apply the same batch, and the second one re-reads
    /// the checkpoint only after the first has committed.
    pub async fn load_checkpoint(&mut self, name: &str) -> StoreResult<Option<u64>> {
        check_name(name)?;
        if let Self::Postgres(tx) = self {
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtext('textbank-checkpoint:' || current_schema() || ':' || $1))",
            )
            .bind(name)
            .execute(&mut **tx)
            .await?;
        }
        let position: Option<i64> = crate::on_tx!(self, |conn| {
            sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(conn)
                .await?
        });
        position.map(to_u64).transpose()
    }

    /// Records that the named projector has applied everything up to
    /// `position`; takes effect only if the transaction commits.
    pub async fn save_checkpoint(&mut self, name: &str, position: u64) -> StoreResult<()> {
        check_name(name)?;
        let position = i64::try_from(position)
            .map_err(|_| StoreError::InvalidInput(format!("checkpoint {position} out of range")))?;
        crate::on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO checkpoints (name, position, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE
                    SET position = excluded.position, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(position)
            .bind(Utc::now())
            .execute(conn)
            .await
            .map(|_| ())?
        });
        Ok(())
    }

    /// [`StoreTx::load_checkpoint`] for several read models at once, locking
    /// them in the order given (callers use one fixed order, so runners in
    /// several processes cannot deadlock).
    pub async fn load_checkpoints(&mut self, names: &[&str]) -> StoreResult<Vec<Option<u64>>> {
        for name in names {
            check_name(name)?;
        }
        let owned: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        if let Self::Postgres(tx) = self {
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtext('textbank-checkpoint:' || current_schema() || ':' || name))
                   FROM unnest($1::text[]) WITH ORDINALITY AS locked (name, n)",
            )
            .bind(&owned)
            .execute(&mut **tx)
            .await?;
        }
        let rows: Vec<(String, i64)> = crate::on_tx!(self, |conn| {
            sqlx::query_as(ALL_CHECKPOINTS).fetch_all(conn).await?
        });
        checkpoint_positions(names, &rows)
    }

    /// [`StoreTx::save_checkpoint`] for several read models in one statement.
    pub async fn save_checkpoints(&mut self, saved: &[(&str, u64)]) -> StoreResult<()> {
        if saved.is_empty() {
            return Ok(());
        }
        let sql = crate::sql::for_engine(
            self,
            format!(
                "INSERT INTO checkpoints (name, position, updated_at) VALUES {}
                 ON CONFLICT (name) DO UPDATE
                    SET position = excluded.position, updated_at = excluded.updated_at",
                crate::sql::placeholders(saved.len(), 3)
            ),
        );
        let now = Utc::now();
        let mut rows = Vec::with_capacity(saved.len());
        for (name, position) in saved {
            check_name(name)?;
            let position = i64::try_from(*position).map_err(|_| {
                StoreError::InvalidInput(format!("checkpoint {position} out of range"))
            })?;
            rows.push((*name, position));
        }
        crate::on_tx!(self, |conn| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (name, position) in &rows {
                query = query.bind(*name).bind(*position).bind(now);
            }
            query.execute(conn).await.map(|_| ())?
        });
        Ok(())
    }

    /// Forgets the named checkpoint (a finished rebuild's scratch one).
    pub async fn delete_checkpoint(&mut self, name: &str) -> StoreResult<()> {
        check_name(name)?;
        crate::on_tx!(self, |conn| {
            sqlx::query("DELETE FROM checkpoints WHERE name = $1")
                .bind(name)
                .execute(conn)
                .await
                .map(|_| ())?
        });
        Ok(())
    }

    /// The current term of a leader role (0 if none ever led), read so
    /// that no new term can be raised before this transaction ends: on
    /// PostgreSQL the row is share-locked, on SQLite the transaction holds
    /// the write lock. A write elsewhere made while it is open is fenced
    /// like an append in the same transaction (ADR 0030).
    #[cfg_attr(not(feature = "kurrentdb"), allow(dead_code))]
    pub(crate) async fn current_term(&mut self, role: &str) -> StoreResult<u64> {
        let sql = match self {
            Self::Sqlite(..) => crate::plan::CURRENT_TERM_SQLITE,
            Self::Postgres(_) => crate::plan::CURRENT_TERM_POSTGRES,
        };
        let term: Option<i64> = crate::on_tx!(self, |conn| {
            sqlx::query_scalar(sql)
                .bind(role)
                .fetch_optional(conn)
                .await?
        });
        term.map_or(Ok(0), to_u64)
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            // The turn passes on once the commit has released the lock.
            Self::Sqlite(tx, _turn) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self {
            Self::Sqlite(tx, _turn) => tx.rollback().await?,
            Self::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > MAX_CHECKPOINT_NAME_LEN {
        return Err(StoreError::InvalidInput(format!(
            "checkpoint name must be 1 to {MAX_CHECKPOINT_NAME_LEN} bytes"
        )));
    }
    Ok(())
}
