//! The store recovers alone from a database failure in the middle of a
//! transaction: no connection is handed out again in a half-open state.

use sha2::{Digest, Sha256};
use textbank_store::{ConnectOptions, Database, EventStore, SqlEventStore};
use textbank_testkit::ScratchDb;

#[tokio::test]
async fn a_connection_left_inside_a_failed_transaction_is_replaced_not_reused() {
    let scratch = ScratchDb::sqlite_file("textbank-wedge")
        .await
        .expect("a scratch database");
    // One pooled connection, so the next transaction gets the same one.
    let options = ConnectOptions {
        max_connections: 1,
        migrate: false,
        ..ConnectOptions::default()
    };
    let database = Database::connect(scratch.url(), &options)
        .await
        .expect("open");
    let store = SqlEventStore::on_database(database).await.expect("store");
    let mut tx = store.begin().await.expect("begin");
    // SQLite ends the transaction by itself, as it does when a COMMIT fails
    // on a full disk; sqlx still counts it open, so the ROLLBACK it sends
    // when the transaction is dropped fails and the count stays at one.
    textbank_store::on_tx!(&mut tx, |conn| {
        sqlx::query("ROLLBACK")
            .execute(conn)
            .await
            .map(|_| ())
            .expect("rollback")
    });
    drop(tx);
    for position in 1..=3 {
        let mut tx = store
            .begin()
            .await
            .expect("a transaction on a clean connection");
        tx.save_checkpoint("recovered", position)
            .await
            .expect("write");
        tx.commit().await.expect("commit");
    }
    assert_eq!(store.checkpoint("recovered").await.expect("read"), Some(3));
    scratch.cleanup().await;
}

#[tokio::test]
async fn a_leader_whose_lock_connection_ends_knows_it_no_longer_leads() {
    let Some(scratch) = ScratchDb::postgres("leader_lost").await else {
        return;
    };
    let leader = textbank_store::try_lead(&scratch.database, "dispatch-test")
        .await
        .expect("try")
        .expect("nobody else leads");
    assert!(leader.still_leads());
    assert!(
        textbank_store::try_lead(&scratch.database, "dispatch-test")
            .await
            .expect("try")
            .is_none(),
        "the lock is held"
    );
    // The server ends the session holding the advisory lock.
    let Database::Postgres(pool) = &scratch.database else {
        unreachable!("a PostgreSQL scratch database")
    };
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await
        .expect("schema");
    let digest = Sha256::digest(format!("textbank-leader:{schema}:dispatch-test"));
    let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND objsubid = 1
            AND ((classid::bigint << 32) | objid::bigint) = $1",
    )
    .bind(key)
    .fetch_all(pool)
    .await
    .expect("terminate");
    assert_eq!(ended, [true]);
    // The leader's watch asks the lock's connection four times a second.
    let mut noticed = false;
    for _ in 0..40 {
        if !leader.still_leads() {
            noticed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        noticed,
        "the lock went with its session, and the leader knows"
    );
    let mut next = None;
    for _ in 0..50 {
        next = textbank_store::try_lead(&scratch.database, "dispatch-test")
            .await
            .expect("try");
        if next.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(next.is_some(), "another process can take the lead");
    drop(leader);
    drop(next);
    scratch.cleanup().await;
}

#[tokio::test]
async fn the_sqlite_memory_map_and_memory_limit_are_settings() {
    let scratch = ScratchDb::sqlite_file("textbank-mmap")
        .await
        .expect("a scratch database");
    // The map can be turned off; SQLite's own memory has a process-wide limit.
    for bytes in [0, 1 << 20] {
        let options = ConnectOptions {
            sqlite_mmap_bytes: bytes,
            sqlite_cache_bytes: bytes + (8 << 20),
            migrate: false,
            ..ConnectOptions::default()
        };
        let database = Database::connect(scratch.url(), &options)
            .await
            .expect("open");
        let Database::Sqlite { read, .. } = &database else {
            unreachable!("a SQLite scratch database")
        };
        let mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size")
            .fetch_one(read)
            .await
            .expect("pragma");
        assert_eq!(mapped as u64, bytes);
        let limit: i64 = sqlx::query_scalar("PRAGMA soft_heap_limit")
            .fetch_one(read)
            .await
            .expect("pragma");
        assert_eq!(limit as u64, bytes + (8 << 20));
        database.close().await;
    }
    scratch.cleanup().await;
}
