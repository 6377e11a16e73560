//! `textbank bench append`: event appends, batched and single, each beside
//! plain INSERTs of the same rows into a bare table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use textbank_domain::{Actor, ApiKeyId, EventMetadata, MemberId, OrgId, StreamId};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, SqlEventStore};
use textbank_testkit::ScratchDb;

use crate::baseline::BaselineTable;
use crate::{AppendArgs, BenchResult, print_figure};

pub(crate) async fn run(scratch: &ScratchDb, args: &AppendArgs) -> BenchResult {
    let store = Arc::new(SqlEventStore::on_database(scratch.database.clone()).await?);
    let backend = store.backend();
    let baseline = Arc::new(BaselineTable::create(&scratch.database).await?);
    let batch_size = args
        .batch_size
        .clamp(1, textbank_store::MAX_EVENTS_PER_APPEND as u64);
    let batches = (args.batched_events / batch_size).max(1);
    let mut generator = EventGenerator::new(args.seed);

    // Batched: one caller; only the calls are timed, not event generation.
    let mut baseline_time = Duration::ZERO;
    let mut store_time = Duration::ZERO;
    let streams = 10;
    for batch in 0..batches {
        let stream = stream(&format!("bench-list-{}", batch % streams));
        let first_version = (batch / streams) * batch_size;
        let events = generator.events(batch_size);
        let started = Instant::now();
        baseline
            .insert(&stream, first_version, events.clone())
            .await?;
        baseline_time += started.elapsed();
        let expected = match first_version {
            0 => ExpectedVersion::NoStream,
            next => ExpectedVersion::Exact(next - 1),
        };
        let started = Instant::now();
        store.append(&stream, expected, events).await?;
        store_time += started.elapsed();
    }
    let written = (batches * batch_size) as f64;
    print_figure(
        "append_batched",
        backend,
        written / store_time.as_secs_f64(),
        "events/s",
        written / baseline_time.as_secs_f64(),
        json!({"events": batches * batch_size, "batch_size": batch_size}),
    );

    // Single: many callers, one event per call, each on its own stream with
    // an exact expected version (the shape of a send click).
    let per_task = (args.single_events / args.concurrency.max(1)).max(1);
    let store_run = run_single(args, per_task, {
        let store = store.clone();
        move |stream, version, event| {
            let store = store.clone();
            async move {
                let expected = version
                    .checked_sub(1)
                    .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                store
                    .append(&stream, expected, vec![event])
                    .await
                    .map(|_| ())?;
                Ok(())
            }
        }
    })
    .await?;
    let baseline_run = run_single(args, per_task, {
        let baseline = baseline.clone();
        move |stream, version, event| {
            let baseline = baseline.clone();
            async move {
                baseline.insert(&stream, version, vec![event]).await?;
                Ok(())
            }
        }
    })
    .await?;
    print_figure(
        "append_single",
        backend,
        store_run.rate,
        "events/s",
        baseline_run.rate,
        json!({
            "events": per_task * args.concurrency,
            "concurrency": args.concurrency,
            "p50_ms": store_run.p50_ms,
            "p99_ms": store_run.p99_ms,
            "baseline_p99_ms": baseline_run.p99_ms,
        }),
    );
    drop(store);
    if let Ok(baseline) = Arc::try_unwrap(baseline) {
        baseline.drop_table().await?;
    }
    Ok(())
}

struct SingleRun {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `concurrency` tasks, each writing `per_task` events one call at a
/// time through `write(stream, version, event)`; returns events/s and call
/// latencies.
async fn run_single<W, F>(args: &AppendArgs, per_task: u64, write: W) -> BenchResult<SingleRun>
where
    W: Fn(StreamId, u64, NewEvent) -> F + Clone + Send + 'static,
    F: Future<Output = BenchResult> + Send,
{
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let write = write.clone();
        let mut generator = EventGenerator::new(args.seed + task);
        let stream = stream(&format!("bench-recipient-{run_id}-{task}"));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task as usize);
            for version in 0..per_task {
                let event = generator.event();
                let call = Instant::now();
                write(stream.clone(), version, event).await?;
                latencies.push(call.elapsed());
            }
            BenchResult::<Vec<Duration>>::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at =
        |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    Ok(SingleRun {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    })
}

fn stream(name: &str) -> StreamId {
    StreamId::parse(name).unwrap_or_else(|err| panic!("benchmark stream name {name:?}: {err}"))
}

/// Seeded generator of realistic send-click events: about 500 bytes of JSON
/// (data and metadata together), as the foundation issue specifies.
struct EventGenerator {
    rng: StdRng,
    org: OrgId,
    campaign: uuid::Uuid,
    texters: Vec<(MemberId, ApiKeyId)>,
}

const FIRST_NAMES: [&str; 8] = [
    "Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Dmitri", "Nia",
];
const TEXTER_NAMES: [&str; 4] = ["Sam", "Priya", "Jordan", "Lee"];

impl EventGenerator {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let texters = (0..4).map(|_| (MemberId::new(), ApiKeyId::new())).collect();
        let _ = rng.random::<u64>();
        Self {
            rng,
            org: OrgId::new(),
            campaign: uuid::Uuid::now_v7(),
            texters,
        }
    }

    /// One call's worth of events: like a list-import chunk, they come from
    /// one request and so share its metadata.
    fn events(&mut self, count: u64) -> Vec<NewEvent> {
        let metadata = self.event().metadata;
        (0..count)
            .map(|_| {
                let mut event = self.event();
                event.metadata = metadata.clone();
                event
            })
            .collect()
    }

    fn event(&mut self) -> NewEvent {
        let texter = self.rng.random_range(0..self.texters.len());
        let (member_id, key_id) = self.texters[texter];
        let name = FIRST_NAMES[self.rng.random_range(0..FIRST_NAMES.len())];
        let phone = format!("+1555{:07}", self.rng.random_range(0..10_000_000u32));
        let body = format!(
            "Hi {name}, it's {} with Rivera for Council. Early voting starts Saturday. \
             Can we count on you? Reply STOP to opt out.",
            TEXTER_NAMES[texter]
        );
        let presented_ms: i64 = 1_795_000_000_000 + self.rng.random_range(0..86_400_000);
        let data = json!({
            "message_id": uuid::Uuid::now_v7(),
            "campaign_id": self.campaign,
            "texter_id": member_id,
            "phone": phone,
            "body": body,
            "script_version": 3,
            "presented_at_ms": presented_ms,
            "clicked_at_ms": presented_ms + self.rng.random_range(400..4_000),
        });
        let mut metadata = EventMetadata::new(
            Some(self.org),
            Actor::ApiKey {
                key_id,
                member_id: None,
            },
        );
        metadata.ip = Some(format!("198.51.100.{}", self.rng.random_range(1..255)));
        NewEvent::new("MessageSendClicked", data, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use textbank_store::chain::canonical_json;

    #[test]
    fn generated_events_carry_about_500_bytes_of_json() {
        let mut generator = EventGenerator::new(1);
        for _ in 0..20 {
            let event = generator.event();
            let metadata = serde_json::to_value(&event.metadata).unwrap();
            let size = canonical_json(&event.data).len() + canonical_json(&metadata).len();
            assert!((420..=620).contains(&size), "{size} bytes");
        }
    }
}
