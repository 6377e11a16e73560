//! The store recovers alone from a database failure in the middle of a
//! transaction: no connection is handed out again in a half-open state.

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
