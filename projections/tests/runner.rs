//! The runner applies each event exactly once, across failures, on both
//! backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use textbank_projections::{Batch, ProjectionError, Projector, catch_up, follow};
use textbank_store::{SqlEventStore, StoreTx};
use textbank_testkit::ScratchDb;

#[macro_use]
mod common;

on_both_backends!(each_event_is_applied_exactly_once_across_a_failed_batch);

/// Counts events per position in its own table; fails once at `fail_at`.
struct Counter {
    fail_at: AtomicU64,
}

#[async_trait]
impl Projector for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for event in batch.events() {
            let position = event.position as i64;
            match tx {
                StoreTx::Sqlite(tx, _) => {
                    sqlx::query("INSERT INTO counted (position, times) VALUES ($1, 1) ON CONFLICT (position) DO UPDATE SET times = counted.times + 1")
                        .bind(position)
                        .execute(&mut **tx)
                        .await
                        .map_err(textbank_store::StoreError::from)?;
                }
                StoreTx::Postgres(tx) => {
                    sqlx::query("INSERT INTO counted (position, times) VALUES ($1, 1) ON CONFLICT (position) DO UPDATE SET times = counted.times + 1")
                        .bind(position)
                        .execute(&mut **tx)
                        .await
                        .map_err(textbank_store::StoreError::from)?;
                }
            }
            if self.fail_at.load(Ordering::SeqCst) == event.position {
                self.fail_at.store(0, Ordering::SeqCst);
                return Err(ProjectionError::Apply {
                    projector: "counter",
                    position: event.position,
                    reason: "simulated crash mid-batch".into(),
                });
            }
        }
        Ok(())
    }
}

async fn counts(db: &ScratchDb) -> Vec<(i64, i64)> {
    db.int_pairs("SELECT position, times FROM counted ORDER BY position")
        .await
}

async fn create_table(db: &ScratchDb) {
    db.execute("CREATE TABLE counted (position BIGINT PRIMARY KEY, times BIGINT NOT NULL)")
        .await;
}

async fn append(store: &SqlEventStore, n: u64) {
    common::append(store, "counter-1", "Counted", n).await;
}

async fn each_event_is_applied_exactly_once_across_a_failed_batch(db: ScratchDb) {
    create_table(&db).await;
    let store = Arc::new(
        SqlEventStore::on_database(db.database.clone())
            .await
            .unwrap(),
    );
    append(&store, 5_000).await;
    let counter = Counter {
        fail_at: AtomicU64::new(3_700),
    };

    // The batch holding position 3700 fails there: its rows and its
    // checkpoint roll back together.
    let err = catch_up(store.as_ref(), &counter).await.unwrap_err();
    assert!(matches!(
        err,
        ProjectionError::Apply {
            position: 3_700,
            ..
        }
    ));
    // Batches before the failing one stay applied, each event once.
    let before = counts(&db).await;
    assert!(
        !before.is_empty() && before.len() < 3_700,
        "{}",
        before.len()
    );
    assert!(
        before
            .iter()
            .zip(1i64..)
            .all(|(&(p, times), want)| p == want && times == 1)
    );

    assert_eq!(catch_up(store.as_ref(), &counter).await.unwrap(), 5_000);
    let counted = counts(&db).await;
    assert_eq!(counted.len(), 5_000);
    assert!(
        counted
            .iter()
            .zip(1i64..)
            .all(|(&(p, times), want)| p == want && times == 1)
    );

    // Following: new events are applied after a wake-up, once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = tokio::spawn(follow(
        store.clone(),
        Arc::new(Counter {
            fail_at: AtomicU64::new(0),
        }),
        stopped,
        tokio::sync::watch::channel(0).0,
    ));
    append(&store, 10).await;
    let reached = common::eventually(100, async || counts(&db).await.len() == 5_010).await;
    stop.send(true).unwrap();
    follower.await.unwrap();
    assert!(reached, "the follower applied the new events");
    assert!(counts(&db).await.iter().all(|&(_, times)| times == 1));
    drop(store);
    db.cleanup().await;
}
