//! What the projection runner's integration tests share.

/// Runs each listed `async fn(ScratchDb)` once per backend, as
/// `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(textbank_testkit::ScratchDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = textbank_testkit::ScratchDb::postgres(stringify!($name)).await;
                    let Some(db) = db else { return };
                    super::$name(db).await;
                }
            )*
        }
    };
}

use serde_json::json;
use textbank_domain::{Actor, EventMetadata, StreamId};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, SqlEventStore};

/// Appends `n` events of `event_type`, numbered in their data, to `stream`.
pub async fn append(store: &SqlEventStore, stream: &str, event_type: &str, n: u64) {
    let events = (0..n)
        .map(|i| {
            let metadata = EventMetadata::new(None, Actor::System);
            NewEvent::new(event_type, json!({"i": i}), metadata)
        })
        .collect();
    let stream = StreamId::parse(stream).expect("a stream id");
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

/// Checks `done` every 20 ms, `tries` times at most; whether it came true.
pub async fn eventually(tries: u32, mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..tries {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}
