//! Rebuilding a read model from position 0 while the server keeps running,
//! and the projectors' status (position and lag).
//!
//! A read model that can fill a copy of its tables (`Projector::next`) is
//! rebuilt beside itself: `{table}_next` tables are created with the live
//! schema, filled from the whole log under their own checkpoint, brought to
//! the head, and swapped in — drop, rename, checkpoint — in one transaction.
//! Queries keep reading the old tables until that commit. The read models
//! the commands check against (directory, lists, campaigns, opt-outs,
//! conversations) are rebuilt in place in one transaction instead: readers
//! see the old rows until it commits, and writers wait for it (ADR 0014).

use std::sync::Arc;

use serde::Serialize;
use sqlx::AssertSqlSafe;
use textbank_store::{Database, EventStore, StoreError, StoreTx, on_reader, on_tx};

use crate::runner::{
    LIVE_BATCH, ProjectionError, Projector, REBUILD_BATCH, catch_up_together_in, read_batch,
};

/// A rebuild with at most this many events left to apply finishes inside
/// the swap transaction (which holds the write lock on SQLite).
const SWAP_WHEN_BEHIND: u64 = 2_000;

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    pub projector: &'static str,
    /// `swapped`: filled beside the live tables, then swapped in;
    /// `in_place`: cleared and refilled in one transaction.
    pub method: &'static str,
    pub position: u64,
    pub events: u64,
}

/// Rebuilds `projector` from position 0.
pub async fn rebuild(
    store: &dyn EventStore,
    database: &Database,
    projector: &dyn Projector,
) -> Result<Rebuilt, ProjectionError> {
    match projector.next() {
        Some(next) => rebuild_beside(store, database, projector, next).await,
        None => rebuild_in_place(store, projector).await,
    }
}

async fn rebuild_beside(
    store: &dyn EventStore,
    database: &Database,
    live: &dyn Projector,
    next: Arc<dyn Projector>,
) -> Result<Rebuilt, ProjectionError> {
    prepare_next(store, database, live, next.as_ref()).await?;
    fill(store, std::slice::from_ref(&next)).await?;
    swap_in(store, live, next.as_ref()).await
}

/// Empty `_next` tables and no checkpoint for `next`.
async fn prepare_next(
    store: &dyn EventStore,
    database: &Database,
    live: &dyn Projector,
    next: &dyn Projector,
) -> Result<(), ProjectionError> {
    create_next_tables(database, live.tables()).await?;
    let mut tx = store.begin().await?;
    tx.delete_checkpoint(next.name()).await?;
    tx.commit().await?;
    Ok(())
}

/// Catches `nexts` up together (one read of the log for all), outside the
/// swap, until they are close to the head. Rebuild-sized batches hold the
/// write lock a little longer each, but there are ten times fewer.
async fn fill(store: &dyn EventStore, nexts: &[Arc<dyn Projector>]) -> Result<(), ProjectionError> {
    loop {
        let reached = catch_up_together_in(store, nexts, REBUILD_BATCH).await?;
        if store.head_position().await?.saturating_sub(reached) <= SWAP_WHEN_BEHIND {
            return Ok(());
        }
    }
}

/// Applies the last events to `next` and swaps its tables in for `live`'s,
/// in one transaction that holds the live checkpoint's lock.
async fn swap_in(
    store: &dyn EventStore,
    live: &dyn Projector,
    next: &dyn Projector,
) -> Result<Rebuilt, ProjectionError> {
    let mut tx = store.begin().await?;
    // Locks the live checkpoint (PostgreSQL): the live follower waits.
    tx.load_checkpoint(live.name()).await?;
    let mut position = tx.load_checkpoint(next.name()).await?.unwrap_or(0);
    loop {
        let batch = read_batch(store, position, LIVE_BATCH).await?;
        let Some(last) = batch.last_position() else {
            break;
        };
        next.apply(&mut tx, batch.all()).await?;
        position = last;
    }
    for table in live.tables() {
        let next_name = format!("{table}_next");
        execute(&mut tx, format!("DROP TABLE {table}")).await?;
        execute(
            &mut tx,
            format!("ALTER TABLE {next_name} RENAME TO {table}"),
        )
        .await?;
    }
    tx.save_checkpoint(live.name(), position).await?;
    tx.delete_checkpoint(next.name()).await?;
    tx.commit().await?;
    Ok(Rebuilt {
        projector: live.name(),
        method: "swapped",
        position,
        events: position,
    })
}

/// Rebuilds several read models with one read of the log per method: the
/// query models are filled beside themselves together and swapped in one by
/// one, then the command models are rebuilt in place together in one
/// transaction. Answers in the order given.
pub async fn rebuild_all(
    store: &dyn EventStore,
    database: &Database,
    projectors: &[Arc<dyn Projector>],
) -> Result<Vec<Rebuilt>, ProjectionError> {
    let mut beside = Vec::new();
    let mut in_place = Vec::new();
    for projector in projectors {
        match projector.next() {
            Some(next) => beside.push((projector.clone(), next)),
            None => in_place.push(projector.clone()),
        }
    }
    let mut rebuilt = Vec::with_capacity(projectors.len());
    if !beside.is_empty() {
        for (live, next) in &beside {
            prepare_next(store, database, live.as_ref(), next.as_ref()).await?;
        }
        let nexts: Vec<Arc<dyn Projector>> = beside.iter().map(|(_, next)| next.clone()).collect();
        fill(store, &nexts).await?;
        for (live, next) in &beside {
            rebuilt.push(swap_in(store, live.as_ref(), next.as_ref()).await?);
        }
    }
    if !in_place.is_empty() {
        rebuilt.extend(rebuild_in_place_together(store, &in_place).await?);
    }
    rebuilt.sort_by_key(|one| {
        projectors
            .iter()
            .position(|projector| projector.name() == one.projector)
    });
    Ok(rebuilt)
}

async fn rebuild_in_place(
    store: &dyn EventStore,
    projector: &dyn Projector,
) -> Result<Rebuilt, ProjectionError> {
    let rebuilt = rebuild_in_place_together(store, &[projector]).await?;
    rebuilt.into_iter().next().ok_or(ProjectionError::Apply {
        projector: projector.name(),
        position: 0,
        reason: "nothing was rebuilt".into(),
    })
}

/// Clears and refills `projectors` from one read of the log, in one
/// transaction: readers see the old rows until it commits.
async fn rebuild_in_place_together<P: std::ops::Deref<Target = dyn Projector>>(
    store: &dyn EventStore,
    projectors: &[P],
) -> Result<Vec<Rebuilt>, ProjectionError> {
    if let Some(unnamed) = projectors.iter().find(|p| p.tables().is_empty()) {
        return Err(ProjectionError::Apply {
            projector: unnamed.name(),
            position: 0,
            reason: "this read model does not name its tables, so it cannot be rebuilt".into(),
        });
    }
    let mut tx = store.begin().await?;
    for projector in projectors {
        tx.load_checkpoint(projector.name()).await?;
    }
    // Referencing tables come after the ones they reference.
    for projector in projectors.iter().rev() {
        for table in projector.tables().iter().rev() {
            execute(&mut tx, format!("DELETE FROM {table}")).await?;
        }
    }
    let mut position = 0;
    loop {
        let batch = read_batch(store, position, REBUILD_BATCH).await?;
        let Some(last) = batch.last_position() else {
            break;
        };
        for projector in projectors {
            projector.apply(&mut tx, batch.all()).await?;
        }
        position = last;
    }
    for projector in projectors {
        tx.save_checkpoint(projector.name(), position).await?;
    }
    tx.commit().await?;
    Ok(projectors
        .iter()
        .map(|projector| Rebuilt {
            projector: projector.name(),
            method: "in_place",
            position,
            events: position,
        })
        .collect())
}

/// Creates empty `{table}_next` copies of `tables` (dropping leftovers of
/// an interrupted rebuild), with the same columns, constraints and indexes.
async fn create_next_tables(database: &Database, tables: &[&str]) -> Result<(), StoreError> {
    for table in tables {
        let next = format!("{table}_next");
        match database {
            Database::Sqlite { write, .. } => {
                let mut conn = write.acquire().await?;
                sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {next}")))
                    .execute(&mut *conn)
                    .await?;
                for statement in sqlite_copy_schema(database, table).await? {
                    sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Database::Postgres(pool) => {
                sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {next}")))
                    .execute(pool)
                    .await?;
                sqlx::query(AssertSqlSafe(format!(
                    "CREATE TABLE {next} (LIKE {table} INCLUDING ALL)"
                )))
                .execute(pool)
                .await?;
            }
        }
    }
    Ok(())
}

/// The statements that create `{table}_next` like `table` on SQLite: its
/// `CREATE TABLE` and `CREATE INDEX` texts with the names changed. Index
/// names alternate between `x` and `x_next`, so rebuild after rebuild never
/// collides with the live table's indexes.
async fn sqlite_copy_schema(database: &Database, table: &str) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String, String, String)> = on_reader!(database, |pool| {
        sqlx::query_as(
            "SELECT type, name, sql FROM sqlite_master
              WHERE tbl_name = $1 AND sql IS NOT NULL ORDER BY type DESC",
        )
        .bind(table)
        .fetch_all(pool)
        .await?
    });
    let next = format!("{table}_next");
    let mut statements = Vec::with_capacity(rows.len());
    for (kind, name, sql) in rows {
        let renamed = match kind.as_str() {
            "table" => rename(&sql, "TABLE ", table, &next),
            "index" => {
                let other = name
                    .strip_suffix("_next")
                    .map_or_else(|| format!("{name}_next"), str::to_owned);
                rename(&sql, "INDEX ", &name, &other)
                    .and_then(|sql| rename(&sql, " ON ", table, &next))
            }
            _ => None,
        };
        statements.push(renamed.ok_or_else(|| {
            StoreError::Corrupt(format!("cannot copy the schema of {table}: {sql}"))
        })?);
    }
    Ok(statements)
}

/// Renames the identifier that follows `keyword` in `sql`, written bare or
/// quoted (SQLite quotes it once a table has been renamed).
fn rename(sql: &str, keyword: &str, from: &str, to: &str) -> Option<String> {
    [
        (from.to_owned(), to.to_owned()),
        (format!("\"{from}\""), format!("\"{to}\"")),
    ]
    .iter()
    .flat_map(|(from, to)| {
        [" ", "(", "\n"].map(|after| {
            (
                format!("{keyword}{from}{after}"),
                format!("{keyword}{to}{after}"),
            )
        })
    })
    .find_map(|(from, to)| replace_once(sql, &from, &to))
}

fn replace_once(text: &str, from: &str, to: &str) -> Option<String> {
    text.find(from)
        .map(|at| format!("{}{to}{}", &text[..at], &text[at + from.len()..]))
}

/// Runs DDL or DML built from table names (constants of the code).
async fn execute(tx: &mut StoreTx, sql: String) -> Result<(), StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .execute(conn)
            .await
            .map(|_| ())?
    });
    Ok(())
}

/// Empties the read models and forgets their checkpoints, in one
/// transaction: the next catch-up rebuilds them from position 0 in place
/// (the projections benchmark times exactly that).
pub async fn reset(
    store: &dyn EventStore,
    projectors: &[Arc<dyn Projector>],
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for projector in projectors {
        tx.load_checkpoint(projector.name()).await?;
        for table in projector.tables().iter().rev() {
            execute(&mut tx, format!("DELETE FROM {table}")).await?;
        }
        tx.delete_checkpoint(projector.name()).await?;
    }
    tx.commit().await
}

/// One projector's progress.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub projector: &'static str,
    pub position: u64,
    pub lag: u64,
}

/// Every projector's position and how far it is behind the head.
pub async fn status(
    store: &dyn EventStore,
    projectors: &[Arc<dyn Projector>],
) -> Result<(u64, Vec<Status>), StoreError> {
    let head = store.head_position().await?;
    let mut statuses = Vec::with_capacity(projectors.len());
    for projector in projectors {
        let position = store.checkpoint(projector.name()).await?.unwrap_or(0);
        statuses.push(Status {
            projector: projector.name(),
            position,
            lag: head.saturating_sub(position),
        });
    }
    Ok((head, statuses))
}
