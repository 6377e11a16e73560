//! The event-store contract: the same tests run against SQLite, PostgreSQL
//! and (with the `kurrentdb` feature) KurrentDB. Each test gets a fresh
//! database (a SQLite file, or a schema of the database in
//! TEXTBANK_TEST_POSTGRES_URL); on KurrentDB, the server named by
//! TEXTBANK_TEST_KURRENTDB_URL with a namespace of its own, beside a SQLite
//! file for checkpoints. Where a test plays the attacker or the broken disk
//! through SQL, it says so and skips the KurrentDB run; where it counts
//! positions, SQL's are gap-free and KurrentDB's only rise (ADR 0030).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use textbank_domain::{Actor, EventMetadata, OrgId, StreamId};
use textbank_store::{
    AppendResult, Backend, BreakReason, Database, EventStore, ExpectedVersion, NewEvent,
    SqlEventStore, StoreError, wait_beyond,
};
use textbank_testkit::ScratchDb;
use uuid::Uuid;

struct Ctx {
    db: ScratchDb,
    store: Arc<dyn EventStore>,
    /// The KurrentDB server and this test's namespace on it.
    #[cfg_attr(not(feature = "kurrentdb"), allow(dead_code))]
    kurrentdb: Option<(String, String)>,
}

impl Ctx {
    async fn new(db: ScratchDb) -> Self {
        let store = Arc::new(
            SqlEventStore::on_database(db.database.clone())
                .await
                .unwrap(),
        );
        Self {
            db,
            store,
            kurrentdb: None,
        }
    }

    /// The log on the KurrentDB server of TEXTBANK_TEST_KURRENTDB_URL, in a
    /// namespace of its own, beside a SQLite file; `None` (said) without it.
    #[cfg(feature = "kurrentdb")]
    async fn kurrentdb(test: &str) -> Option<Self> {
        let url = textbank_testkit::kurrentdb_url(test)?;
        let namespace = format!("t{}-", Uuid::now_v7().simple());
        let db = ScratchDb::sqlite().await;
        let store = Self::kurrentdb_store(&db, &url, &namespace).await;
        Some(Self {
            db,
            store,
            kurrentdb: Some((url, namespace)),
        })
    }

    #[cfg(feature = "kurrentdb")]
    async fn kurrentdb_store(db: &ScratchDb, url: &str, namespace: &str) -> Arc<dyn EventStore> {
        let sql = Arc::new(
            SqlEventStore::open(db.url(), &Default::default())
                .await
                .unwrap(),
        );
        let options = textbank_store::KurrentDbOptions {
            namespace: namespace.to_owned(),
        };
        Arc::new(
            textbank_store::KurrentDbStore::open(url, sql, &options)
                .await
                .unwrap(),
        )
    }

    /// A second store on the same database, as another process would open it.
    async fn second_process(&self) -> Arc<dyn EventStore> {
        #[cfg(feature = "kurrentdb")]
        if let Some((url, namespace)) = &self.kurrentdb {
            return Self::kurrentdb_store(&self.db, url, namespace).await;
        }
        Arc::new(
            SqlEventStore::open(self.db.url(), &Default::default())
                .await
                .unwrap(),
        )
    }

    fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Is the log in the SQL database (so SQL can tamper with it)?
    fn log_in_sql(&self) -> bool {
        self.store.log_name() != "kurrentdb"
    }

    /// Whether the log is the SQL database's; if not, says that `test`
    /// was skipped there and why.
    fn sql_only(&self, test: &str, why: &str) -> bool {
        if !self.log_in_sql() {
            eprintln!("skipped {test} on {}: {why}", self.store.log_name());
        }
        self.log_in_sql()
    }

    /// Positions of consecutive events: rising, and on SQL exactly
    /// `first, first + 1, …`.
    fn assert_consecutive(&self, positions: &[u64], first: u64) {
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "positions rise: {positions:?}"
        );
        if self.log_in_sql() {
            let dense: Vec<u64> = (first..).take(positions.len()).collect();
            assert_eq!(positions, dense, "SQL positions are gap-free");
        }
    }

    /// The log's head: on SQL exactly `count`, the number of events, and on
    /// KurrentDB the last event's position.
    async fn assert_head(&self, count: u64) {
        let head = self.store.head_position().await.unwrap();
        if self.log_in_sql() {
            assert_eq!(head, count);
        } else {
            let all = self.store.read_all(1, 10_000).await.unwrap();
            assert_eq!(all.len() as u64, count);
            assert_eq!(head, all.last().map_or(0, |event| event.position));
        }
    }

    /// An append that must succeed.
    async fn append_ok(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> AppendResult {
        self.store.append(stream, expected, events).await.unwrap()
    }

    /// A new stream of `n` events numbered from 0.
    async fn new_stream(&self, name: &str, n: u64) -> StreamId {
        let s = stream(name);
        self.append_ok(&s, ExpectedVersion::NoStream, events(0..n))
            .await;
        s
    }

    /// Makes the database itself refuse every event of type `Poison`.
    async fn poison_events(&self) {
        match self.backend() {
            Backend::Sqlite => {
                self.execute(
                    "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.event_type = 'Poison'
                     BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
                )
                .await
            }
            Backend::Postgres => {
                self.execute(
                    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN IF NEW.event_type = 'Poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                     RETURN NEW; END; $$",
                )
                .await;
                self.execute("CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()")
                    .await
            }
        }
    }

    /// Raw SQL, for tests that play the attacker or the broken disk.
    async fn execute(&self, sql: &str) {
        self.db.execute(sql).await;
    }
}

/// Runs each listed test once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let ctx = super::Ctx::new(super::ScratchDb::sqlite().await).await;
                    super::$name(&ctx).await;
                    ctx.db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::ScratchDb::postgres(stringify!($name)).await else { return };
                    let ctx = super::Ctx::new(db).await;
                    super::$name(&ctx).await;
                    ctx.db.cleanup().await;
                }
            )*
        }
        #[cfg(feature = "kurrentdb")]
        mod kurrentdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(ctx) = super::Ctx::kurrentdb(stringify!($name)).await else { return };
                    super::$name(&ctx).await;
                    ctx.db.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    appended_events_read_back_exactly,
    a_moved_stream_is_a_conflict_naming_both_versions,
    reappending_the_same_event_ids_returns_the_original_result_and_writes_nothing,
    event_ids_stored_by_another_append_are_refused,
    a_failed_multi_event_append_leaves_nothing_behind,
    a_failing_append_does_not_sink_the_appends_committed_with_it,
    malformed_appends_are_refused,
    read_stream_pages_by_version,
    read_all_pages_by_position,
    a_big_page_reads_back_exactly,
    corrupt_metadata_is_reported_with_its_position,
    a_bounded_read_stops_at_its_byte_budget,
    checkpoints_load_and_save_together,
    a_follower_sees_every_event_once_in_gap_free_order_under_concurrent_writers,
    two_processes_appending_at_once_keep_positions_gap_free,
    subscribers_wake_when_events_are_appended,
    the_hash_chain_links_each_event_to_the_previous_one,
    verification_finds_a_tampered_event,
    verification_finds_a_deleted_event,
    the_log_refuses_updates_and_deletes,
    checkpoints_commit_with_their_transaction_and_vanish_without_it,
    a_write_fenced_by_a_former_leader_is_refused_and_recorded_nowhere,
);

fn stream(name: &str) -> StreamId {
    StreamId::parse(name).unwrap()
}

fn meta() -> EventMetadata {
    EventMetadata::new(Some(OrgId::new()), Actor::System)
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Counted", json!({"n": n, "note": "déjà vu ✓"}), meta())
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

async fn a_bounded_read_stops_at_its_byte_budget(ctx: &Ctx) {
    // Ten events of ~10 KB each.
    let big: Vec<NewEvent> = (0..10)
        .map(|n| NewEvent::new("Big", json!({"n": n, "pad": "x".repeat(10_000)}), meta()))
        .collect();
    ctx.append_ok(&stream("big-1"), ExpectedVersion::NoStream, big)
        .await;
    let all: Vec<u64> = ctx
        .store
        .read_all(1, 100)
        .await
        .unwrap()
        .iter()
        .map(|event| event.position)
        .collect();
    ctx.assert_consecutive(&all, 1);
    assert_eq!(all.len(), 10);
    let read = ctx.store.read_all_bounded(1, 100, 35_000).await.unwrap();
    let positions: Vec<u64> = read.iter().map(|event| event.position).collect();
    assert!(
        (3..=4).contains(&positions.len()) && positions[0] == all[0],
        "{positions:?}"
    );
    assert_eq!(positions, all[..positions.len()]);
    // The first event always comes, whatever the budget.
    let one = ctx.store.read_all_bounded(all[4], 100, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].position, all[4]);
    // The event count still bounds it.
    let two = ctx.store.read_all_bounded(1, 2, u64::MAX).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].data, ctx.store.read_all(1, 1).await.unwrap()[0].data);
}

async fn checkpoints_load_and_save_together(ctx: &Ctx) {
    let mut tx = ctx.store.begin().await.unwrap();
    tx.save_checkpoints(&[("alpha", 3), ("beta", 7)])
        .await
        .unwrap();
    assert_eq!(
        tx.load_checkpoints(&["beta", "gamma", "alpha"])
            .await
            .unwrap(),
        vec![Some(7), None, Some(3)]
    );
    tx.commit().await.unwrap();
    let mut tx = ctx.store.begin().await.unwrap();
    tx.save_checkpoints(&[("alpha", 9)]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        ctx.store
            .checkpoints(&["alpha", "beta", "gamma"])
            .await
            .unwrap(),
        vec![Some(9), Some(7), None]
    );
}

async fn appended_events_read_back_exactly(ctx: &Ctx) {
    let s = stream("counter-1");
    let sent = events(0..3);
    let result = ctx
        .append_ok(&s, ExpectedVersion::NoStream, sent.clone())
        .await;
    assert_eq!((result.first_version, result.last_version), (0, 2));

    let read = ctx.store.read_stream(&s, 0, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    let positions: Vec<u64> = read.iter().map(|e| e.position).collect();
    ctx.assert_consecutive(&positions, 1);
    assert_eq!(
        (result.first_position, result.last_position),
        (positions[0], positions[2])
    );
    for (got, want) in read.iter().zip(&sent) {
        assert_eq!(got.event_id, want.event_id);
        assert_eq!(got.event_type, want.event_type);
        assert_eq!(got.data, want.data);
        assert_eq!(got.metadata, want.metadata);
        assert_eq!(got.stream_id, s);
    }
    assert_eq!(read[1].prev_hash, read[0].hash);
    ctx.assert_head(3).await;
}

async fn a_moved_stream_is_a_conflict_naming_both_versions(ctx: &Ctx) {
    let s = ctx.new_stream("campaign-1", 2).await;

    let err = ctx
        .store
        .append(&s, ExpectedVersion::Exact(0), events(2..3))
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, &s);
            assert_eq!(*expected, ExpectedVersion::Exact(0));
            assert_eq!(*actual, Some(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "stream campaign-1 expected version 0 but is at version 1"
    );

    let err = ctx
        .store
        .append(&s, ExpectedVersion::NoStream, events(2..3))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Conflict {
            actual: Some(1),
            ..
        }
    ));
    let err = ctx
        .store
        .append(
            &stream("never-written"),
            ExpectedVersion::Exact(0),
            events(2..3),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { actual: None, .. }));

    assert_eq!(ctx.store.read_stream(&s, 0, 100).await.unwrap().len(), 2);
    ctx.append_ok(&s, ExpectedVersion::Exact(1), events(2..3))
        .await;
    ctx.append_ok(&s, ExpectedVersion::Any, events(3..4)).await;
    assert_eq!(ctx.store.read_stream(&s, 0, 100).await.unwrap().len(), 4);
}

async fn reappending_the_same_event_ids_returns_the_original_result_and_writes_nothing(ctx: &Ctx) {
    let s = ctx.new_stream("recipient-1", 1).await;
    let batch = events(1..3);
    let first = ctx
        .append_ok(&s, ExpectedVersion::Exact(0), batch.clone())
        .await;
    // A retry after a lost response: the stream has moved, yet the answer is
    // the original one and nothing is written twice.
    let again = ctx
        .append_ok(&s, ExpectedVersion::Exact(0), batch.clone())
        .await;
    assert_eq!(first, again);
    let concurrent = futures_like_join(
        ctx.store.append(&s, ExpectedVersion::Any, batch.clone()),
        ctx.store.append(&s, ExpectedVersion::Any, batch),
    )
    .await;
    assert_eq!(concurrent.0.unwrap(), first);
    assert_eq!(concurrent.1.unwrap(), first);
    assert_eq!(ctx.store.read_stream(&s, 0, 100).await.unwrap().len(), 3);
    ctx.assert_head(3).await;
}

async fn futures_like_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

async fn event_ids_stored_by_another_append_are_refused(ctx: &Ctx) {
    let stored = events(0..2);
    ctx.append_ok(&stream("a-1"), ExpectedVersion::Any, stored.clone())
        .await;

    let mixed = vec![stored[1].clone(), event(9)];
    let err = ctx
        .store
        .append(&stream("a-1"), ExpectedVersion::Any, mixed)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IdempotencyMismatch { event_id } if event_id == stored[1].event_id)
    );

    if !ctx.sql_only(
        "event_ids_stored_by_another_append_are_refused (in another stream)",
        "event ids are looked up in their own stream only (ADR 0030)",
    ) {
        return ctx.assert_head(2).await;
    }
    let elsewhere = ctx
        .store
        .append(&stream("b-1"), ExpectedVersion::Any, stored)
        .await;
    assert!(matches!(
        elsewhere,
        Err(StoreError::IdempotencyMismatch { .. })
    ));
    ctx.assert_head(2).await;
}

async fn a_failed_multi_event_append_leaves_nothing_behind(ctx: &Ctx) {
    const WHY: &str = "the test makes the SQL database refuse an event";
    if !ctx.sql_only("a_failed_multi_event_append_leaves_nothing_behind", WHY) {
        return;
    }
    // Make the database itself refuse the third event of a batch.
    ctx.poison_events().await;
    let s = ctx.new_stream("list-1", 1).await;
    let mut batch = events(1..3);
    batch.push(NewEvent::new("Poison", json!({}), meta()));
    batch.push(event(4));
    let err = ctx
        .store
        .append(&s, ExpectedVersion::Exact(0), batch)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");

    assert_eq!(ctx.store.read_stream(&s, 0, 100).await.unwrap().len(), 1);
    assert_eq!(ctx.store.head_position().await.unwrap(), 1);
    // The stream is untouched: the same expectation still holds.
    let next = ctx
        .append_ok(&s, ExpectedVersion::Exact(0), events(1..2))
        .await;
    assert_eq!((next.first_position, next.first_version), (2, 1));
    assert!(ctx.store.verify_stream(&s).await.unwrap().is_intact());
}

async fn a_failing_append_does_not_sink_the_appends_committed_with_it(ctx: &Ctx) {
    const WHY: &str = "the test makes the SQL database refuse an event";
    if !ctx.sql_only(
        "a_failing_append_does_not_sink_the_appends_committed_with_it",
        WHY,
    ) {
        return;
    }
    ctx.poison_events().await;
    // Many concurrent appends share write transactions; the poisoned ones
    // must fail alone.
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let store = ctx.store.clone();
        tasks.push(tokio::spawn(async move {
            let event = if i % 8 == 0 {
                NewEvent::new("Poison", json!({}), meta())
            } else {
                event(i)
            };
            store
                .append(
                    &stream(&format!("s-{i}")),
                    ExpectedVersion::NoStream,
                    vec![event],
                )
                .await
        }));
    }
    let mut failed = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => assert_ne!(i % 8, 0),
            Err(_) => {
                assert_eq!(i % 8, 0);
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 8);
    let all = ctx.store.read_all(1, 1000).await.unwrap();
    assert_eq!(all.len(), 56);
    assert!(all.iter().zip(1u64..).all(|(e, p)| e.position == p));
}

async fn malformed_appends_are_refused(ctx: &Ctx) {
    let s = stream("x-1");
    let none = ctx.store.append(&s, ExpectedVersion::Any, vec![]).await;
    assert!(matches!(none, Err(StoreError::InvalidInput(_))));
    let e = event(0);
    let twice = ctx
        .store
        .append(&s, ExpectedVersion::Any, vec![e.clone(), e])
        .await;
    assert!(matches!(twice, Err(StoreError::InvalidInput(_))));
    ctx.assert_head(0).await;
}

async fn read_stream_pages_by_version(ctx: &Ctx) {
    let s = stream("paged-1");
    ctx.append_ok(&stream("other-1"), ExpectedVersion::Any, events(0..5))
        .await;
    ctx.append_ok(&s, ExpectedVersion::NoStream, events(0..25))
        .await;
    let mut from = 0;
    let mut seen = Vec::new();
    loop {
        let page = ctx.store.read_stream(&s, from, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        from = page.last().unwrap().version + 1;
        seen.extend(page.into_iter().map(|e| e.version));
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert!(
        ctx.store
            .read_stream(&stream("missing-1"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A page big enough to be decoded on a blocking thread comes back exactly
/// as appended, in order, through every read.
async fn a_big_page_reads_back_exactly(ctx: &Ctx) {
    let s = stream("counter-big");
    let sent = events(0..1_200);
    ctx.append_ok(&s, ExpectedVersion::NoStream, sent.clone())
        .await;
    let reads = [
        ctx.store.read_all(1, 2_000).await.unwrap(),
        ctx.store
            .read_all_bounded(1, 2_000, u64::MAX)
            .await
            .unwrap(),
        ctx.store.read_stream(&s, 0, 2_000).await.unwrap(),
    ];
    for read in reads {
        assert_eq!(read.len(), sent.len());
        let positions: Vec<u64> = read.iter().map(|e| e.position).collect();
        ctx.assert_consecutive(&positions, 1);
        for (got, want) in read.iter().zip(&sent) {
            assert_eq!(got.event_id, want.event_id);
            assert_eq!(got.data, want.data);
            assert_eq!(got.metadata, want.metadata);
            assert_eq!(got.stream_id, s);
        }
    }
}

/// Metadata is decoded straight into its type: a stored row it does not fit
/// is reported as corrupt, with its position, by small and big pages alike.
async fn corrupt_metadata_is_reported_with_its_position(ctx: &Ctx) {
    const WHY: &str = "the test edits a stored event with SQL (the mapping's unit tests cover it)";
    if !ctx.sql_only("corrupt_metadata_is_reported_with_its_position", WHY) {
        return;
    }
    ctx.append_ok(
        &stream("counter-m"),
        ExpectedVersion::NoStream,
        events(0..600),
    )
    .await;
    drop_append_only_guards(ctx).await;
    ctx.execute(r#"UPDATE events SET metadata = '{"actor": 7}' WHERE position = 3"#)
        .await;
    for read in [
        ctx.store.read_all(1, 10).await,
        ctx.store.read_all(1, 1_000).await,
        ctx.store.read_all_bounded(1, 1_000, u64::MAX).await,
    ] {
        let err = read.expect_err("the broken row is refused").to_string();
        assert!(
            err.contains("corrupt") && err.contains("position 3") && err.contains("metadata"),
            "{err}"
        );
    }
}

async fn read_all_pages_by_position(ctx: &Ctx) {
    for i in 0..7 {
        ctx.append_ok(
            &stream(&format!("s-{}", i % 3)),
            ExpectedVersion::Any,
            events(0..3),
        )
        .await;
    }
    let mut from = 1;
    let mut positions = Vec::new();
    loop {
        let page = ctx.store.read_all(from, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        from = page.last().unwrap().position + 1;
        positions.extend(page.into_iter().map(|e| e.position));
    }
    assert_eq!(positions.len(), 21);
    ctx.assert_consecutive(&positions, 1);
}

/// Reads the log by position until `total` events were seen, asserting that
/// each position follows the previous one (on SQL, as the next integer).
async fn follow(store: Arc<dyn EventStore>, total: usize, dense: bool) -> Vec<(u64, Uuid)> {
    let mut seen = Vec::with_capacity(total);
    let mut last = 0;
    while seen.len() < total {
        let page = store.read_all(last + 1, 500).await.unwrap();
        if page.is_empty() {
            wait_beyond(store.as_ref(), last, Duration::from_millis(200)).await;
            continue;
        }
        for event in page {
            assert!(
                event.position > last && (!dense || event.position == last + 1),
                "the follower skipped or repeated a position: {} after {last}",
                event.position
            );
            last = event.position;
            seen.push((event.position, event.event_id));
        }
    }
    seen
}

async fn a_follower_sees_every_event_once_in_gap_free_order_under_concurrent_writers(ctx: &Ctx) {
    const TASKS: u64 = 16;
    const APPENDS: u64 = 500;
    let follower = tokio::spawn(follow(
        ctx.store.clone(),
        (TASKS * APPENDS) as usize,
        ctx.log_in_sql(),
    ));
    let mut writers = Vec::new();
    for task in 0..TASKS {
        let store = ctx.store.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..APPENDS {
                // Overlapping streams: every stream is written by 4 tasks.
                let s = stream(&format!("shared-{}", (task + n) % 4));
                let e = event(n);
                ids.push(e.event_id);
                store
                    .append(&s, ExpectedVersion::Any, vec![e])
                    .await
                    .unwrap();
            }
            ids
        }));
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), follower)
        .await
        .unwrap()
        .unwrap();
    let mut seen_ids: Vec<Uuid> = seen.iter().map(|(_, id)| *id).collect();
    seen_ids.sort();
    written.sort();
    assert_eq!(
        seen_ids, written,
        "the follower saw each event exactly once"
    );

    // Versions per stream are gap-free too, and every chain holds.
    for n in 0..4 {
        let s = stream(&format!("shared-{n}"));
        let report = ctx.store.verify_stream(&s).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.events_checked, TASKS * APPENDS / 4);
    }
}

async fn two_processes_appending_at_once_keep_positions_gap_free(ctx: &Ctx) {
    let other = ctx.second_process().await;
    let stores = [ctx.store.clone(), other.clone()];
    let mut writers = Vec::new();
    for task in 0..8u64 {
        let store = stores[(task % 2) as usize].clone();
        writers.push(tokio::spawn(async move {
            for n in 0..100 {
                let s = stream(&format!("shared-{}", n % 3));
                // Read-then-append with a retry on conflict: the usual
                // command-handler loop, racing another process.
                loop {
                    let last = store
                        .read_stream(&s, 0, 10_000)
                        .await
                        .unwrap()
                        .last()
                        .map(|e| e.version);
                    match store
                        .append(
                            &s,
                            ExpectedVersion::after(last),
                            vec![event(task * 1000 + n)],
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(err) if err.is_conflict() => continue,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let all = ctx.store.read_all(1, 10_000).await.unwrap();
    assert_eq!(all.len(), 800);
    ctx.assert_consecutive(&all.iter().map(|e| e.position).collect::<Vec<_>>(), 1);
    let mut per_stream: HashMap<String, u64> = HashMap::new();
    for e in &all {
        let next = per_stream.entry(e.stream_id.to_string()).or_default();
        assert_eq!(e.version, *next);
        *next += 1;
    }
    for n in 0..3 {
        assert!(
            ctx.store
                .verify_stream(&stream(&format!("shared-{n}")))
                .await
                .unwrap()
                .is_intact()
        );
    }
    if ctx.backend() == Backend::Postgres || !ctx.log_in_sql() {
        // Another process's commits reach this one's subscribers.
        let last = all[799].position;
        let head = wait_beyond(ctx.store.as_ref(), last - 1, Duration::from_secs(5)).await;
        assert_eq!(head, last);
        let late = other
            .append(&stream("late-1"), ExpectedVersion::Any, events(0..1))
            .await
            .unwrap();
        let head = wait_beyond(ctx.store.as_ref(), last, Duration::from_secs(5)).await;
        assert_eq!(head, late.last_position);
    }
}

async fn a_write_fenced_by_a_former_leader_is_refused_and_recorded_nowhere(ctx: &Ctx) {
    let first = textbank_store::try_lead(&ctx.db.database, "fenced-role")
        .await
        .unwrap()
        .expect("nobody leads yet");
    let s = stream("fenced-1");
    ctx.store
        .append_fenced(&s, ExpectedVersion::Any, events(0..1), first.fence())
        .await
        .expect("the current leader writes");
    let former = first.fence().clone();
    // The lead passes to another process (on PostgreSQL the lock must be let
    // go first; on SQLite a restart does the same).
    drop(first);
    let mut second = None;
    for _ in 0..100 {
        second = textbank_store::try_lead(&ctx.db.database, "fenced-role")
            .await
            .unwrap();
        if second.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = second.expect("the lock was let go");
    assert_eq!(second.fence().term, former.term + 1);
    let late = ctx
        .store
        .append_fenced(&s, ExpectedVersion::Any, events(1..2), &former)
        .await;
    assert!(
        matches!(late, Err(StoreError::Fenced { term, current, .. }) if term == former.term && current == former.term + 1),
        "{late:?}"
    );
    ctx.store
        .append_fenced(&s, ExpectedVersion::Exact(0), events(2..3), second.fence())
        .await
        .expect("the new leader writes after the refused one");
    let stored = ctx.store.read_stream(&s, 0, 10).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|e| e.data["n"].clone())
            .collect::<Vec<_>>(),
        [json!(0), json!(2)]
    );
}

async fn subscribers_wake_when_events_are_appended(ctx: &Ctx) {
    let mut head = ctx.store.subscribe();
    let before = *head.borrow_and_update();
    let store = ctx.store.clone();
    let waiter =
        tokio::spawn(
            async move { wait_beyond(store.as_ref(), before, Duration::from_secs(10)).await },
        );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let appended = ctx
        .append_ok(&stream("wake-1"), ExpectedVersion::Any, events(0..2))
        .await;
    assert_eq!(waiter.await.unwrap(), appended.last_position);
    head.changed().await.unwrap();
    assert_eq!(*head.borrow(), appended.last_position);
    // Nothing new: the wait ends at the timeout with the same head.
    let idle = wait_beyond(
        ctx.store.as_ref(),
        appended.last_position,
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(idle, appended.last_position);
}

async fn the_hash_chain_links_each_event_to_the_previous_one(ctx: &Ctx) {
    let s = ctx.new_stream("org-1", 3).await;
    ctx.append_ok(&s, ExpectedVersion::Exact(2), events(3..5))
        .await;
    let read = ctx.store.read_stream(&s, 0, 100).await.unwrap();
    assert_eq!(read[0].prev_hash, [0; 32]);
    for pair in read.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_ne!(pair[1].hash, pair[0].hash);
    }
    let report = ctx.store.verify_stream(&s).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events_checked, 5);
}

async fn drop_append_only_guards(ctx: &Ctx) {
    match ctx.backend() {
        Backend::Sqlite => {
            ctx.execute("DROP TRIGGER events_are_append_only_update")
                .await;
            ctx.execute("DROP TRIGGER events_are_append_only_delete")
                .await;
        }
        Backend::Postgres => {
            ctx.execute("DROP TRIGGER events_are_append_only ON events")
                .await
        }
    }
}

async fn verification_finds_a_tampered_event(ctx: &Ctx) {
    const WHY: &str = "the test edits stored events with SQL (the mapping's unit tests cover it)";
    if !ctx.sql_only("verification_finds_a_tampered_event", WHY) {
        return;
    }
    let s = ctx.new_stream("recipient-7", 4).await;
    drop_append_only_guards(ctx).await;
    ctx.execute(
        r#"UPDATE events SET data = '{"n": 999}' WHERE stream_id = 'recipient-7' AND version = 2"#,
    )
    .await;
    let report = ctx.store.verify_stream(&s).await.unwrap();
    let broken = report.first_broken.expect("the edit is detected");
    assert_eq!(broken.version, 2);
    assert_eq!(broken.reason, BreakReason::HashMismatch);
    assert_eq!(report.events_checked, 2);

    // Re-hashing the edited row does not help: the next link breaks.
    let s2 = ctx.new_stream("recipient-8", 3).await;
    ctx.execute(
        "UPDATE events SET hash = prev_hash WHERE stream_id = 'recipient-8' AND version = 1",
    )
    .await;
    let report = ctx.store.verify_stream(&s2).await.unwrap();
    assert_eq!(report.first_broken.unwrap().version, 1);
}

async fn verification_finds_a_deleted_event(ctx: &Ctx) {
    const WHY: &str = "the test deletes a stored event with SQL; KurrentDB deletes no single event";
    if !ctx.sql_only("verification_finds_a_deleted_event", WHY) {
        return;
    }
    let s = ctx.new_stream("recipient-9", 4).await;
    drop_append_only_guards(ctx).await;
    ctx.execute("DELETE FROM events WHERE stream_id = 'recipient-9' AND version = 1")
        .await;
    let broken = ctx
        .store
        .verify_stream(&s)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.version, 2);
    assert_eq!(broken.reason, BreakReason::VersionGap);
}

async fn the_log_refuses_updates_and_deletes(ctx: &Ctx) {
    const WHY: &str = "the guards tested are SQL triggers; KurrentDB's events are immutable";
    if !ctx.sql_only("the_log_refuses_updates_and_deletes", WHY) {
        return;
    }
    ctx.append_ok(&stream("org-2"), ExpectedVersion::Any, events(0..1))
        .await;
    for sql in [
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
    ] {
        let refused = match &ctx.db.database {
            Database::Sqlite { write, .. } => sqlx::query(sql).execute(write).await.err(),
            Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.err(),
        };
        let err = refused.expect("the log refuses the change");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(
        ctx.store.read_all(1, 10).await.unwrap()[0].event_type,
        "Counted"
    );
}

async fn checkpoints_commit_with_their_transaction_and_vanish_without_it(ctx: &Ctx) {
    let mut tx = ctx.store.begin().await.unwrap();
    assert_eq!(tx.load_checkpoint("inbox").await.unwrap(), None);
    tx.save_checkpoint("inbox", 42).await.unwrap();
    assert_eq!(tx.load_checkpoint("inbox").await.unwrap(), Some(42));
    tx.commit().await.unwrap();

    let mut tx = ctx.store.begin().await.unwrap();
    tx.save_checkpoint("inbox", 99).await.unwrap();
    tx.rollback().await.unwrap();

    {
        let mut tx = ctx.store.begin().await.unwrap();
        tx.save_checkpoint("inbox", 123).await.unwrap();
        // dropped without commit
    }

    let mut tx = ctx.store.begin().await.unwrap();
    assert_eq!(tx.load_checkpoint("inbox").await.unwrap(), Some(42));
    assert_eq!(tx.load_checkpoint("audit").await.unwrap(), None);
    assert!(tx.save_checkpoint("", 1).await.is_err());
    tx.commit().await.unwrap();
}
