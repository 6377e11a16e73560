//! Rebuilding a read model from position 0 beside the live one while a
//! follower keeps it current and events keep arriving, on both backends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use textbank_projections::rebuild::{rebuild, rebuild_all, status};
use textbank_projections::{Batch, ProjectionError, Projector, Tables, catch_up, follow};
use textbank_store::{Database, EventStore, SqlEventStore, StoreTx};
use textbank_testkit::ScratchDb;

#[macro_use]
mod common;

on_both_backends!(a_rebuild_swaps_in_fresh_tables_while_following);

/// Counts how often each position was applied, in table `tally` (or
/// `tally_next` while rebuilt).
struct Tally {
    tables: Tables,
}

#[async_trait]
impl Projector for Tally {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "tally",
            Tables::Next => "tally_next",
        }
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let sql = format!(
            "INSERT INTO {} (position, times) VALUES ($1, 1)
             ON CONFLICT (position) DO UPDATE SET times = excluded.times + 1",
            self.tables.name("tally")
        );
        for event in batch.events() {
            let position = i64::try_from(event.position).unwrap();
            textbank_store::on_tx!(tx, |conn| {
                sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(position)
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(textbank_store::StoreError::from)?
            });
        }
        Ok(())
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tally"]
    }

    fn next(&self) -> Option<Arc<dyn Projector>> {
        Some(Arc::new(Tally {
            tables: Tables::Next,
        }))
    }
}

async fn tallies(db: &ScratchDb) -> Vec<(i64, i64)> {
    db.int_pairs("SELECT position, times FROM tally ORDER BY position")
        .await
}

async fn table_exists(db: &Database, table: &str) -> bool {
    let count: i64 = match db {
        Database::Sqlite { read, .. } => sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        )
        .bind(table)
        .fetch_one(read)
        .await
        .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    count > 0
}

async fn append(store: &SqlEventStore, n: u64) {
    common::append(store, "tally-1", "Tallied", n).await;
}

fn exactly_once_up_to(rows: &[(i64, i64)], head: u64) -> bool {
    rows.len() as u64 == head
        && rows
            .iter()
            .zip(1i64..)
            .all(|(&(position, times), want)| position == want && times == 1)
}

async fn a_rebuild_swaps_in_fresh_tables_while_following(db: ScratchDb) {
    db.execute("CREATE TABLE tally (position BIGINT PRIMARY KEY, times BIGINT NOT NULL)")
        .await;
    db.execute("CREATE INDEX tally_by_times ON tally (times)")
        .await;
    let store = Arc::new(
        SqlEventStore::on_database(db.database.clone())
            .await
            .unwrap(),
    );
    let live = Tally {
        tables: Tables::Live,
    };
    append(&store, 3_000).await;
    catch_up(store.as_ref(), &live).await.unwrap();
    // A read model gone wrong: rows lost, one counted twice.
    db.execute("DELETE FROM tally WHERE position > 2000").await;
    db.execute("UPDATE tally SET times = 2 WHERE position = 7")
        .await;

    // A follower keeps the live model current and events keep arriving
    // while the rebuild runs.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(follow(
        store.clone(),
        Arc::new(Tally {
            tables: Tables::Live,
        }),
        stopped,
        tokio::sync::watch::channel(0).0,
    ));
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                append(&store, 25).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let rebuilt = rebuild(store.as_ref(), &db.database, &live).await.unwrap();
    assert_eq!(rebuilt.method, "swapped");
    assert!(rebuilt.position >= 3_000);
    writer.await.unwrap();
    let head = store.head_position().await.unwrap();
    assert_eq!(head, 3_500);
    let settled =
        common::eventually(200, async || exactly_once_up_to(&tallies(&db).await, head)).await;
    stop.send(true).unwrap();
    follower.await.unwrap();
    assert!(settled, "every event applied exactly once after the swap");
    assert!(!table_exists(&db.database, "tally_next").await);
    assert_eq!(store.checkpoint("tally_next").await.unwrap(), None);
    let projectors: Vec<Arc<dyn Projector>> = vec![Arc::new(Tally {
        tables: Tables::Live,
    })];
    let (status_head, statuses) = status(store.as_ref(), &projectors).await.unwrap();
    assert_eq!(status_head, head);
    assert_eq!((statuses[0].position, statuses[0].lag), (head, 0));

    // Again, through the rebuild of several read models: the copied index
    // names alternate, so a second rebuild works.
    let again = rebuild_all(store.as_ref(), &db.database, &projectors)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].method, again[0].position), ("swapped", head));
    assert!(exactly_once_up_to(&tallies(&db).await, head));
    drop(store);
    db.cleanup().await;
}
