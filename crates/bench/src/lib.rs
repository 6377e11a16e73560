//! `textbank bench …`: benchmarks that print one JSON line per figure, each
//! with a baseline measured in the same run so the ratio survives a noisy
//! machine. They run on a scratch database (a temp SQLite file, or a new
//! schema in the PostgreSQL database given) that is removed afterwards, so
//! they never write into real data. A crate of their own: the shipping
//! server's crates carry no benchmark code; the `textbank` binary only
//! dispatches `textbank bench` here.
#![forbid(unsafe_code)]

mod append;
mod baseline;
mod big_list;
mod import;
mod memory;
mod projections;
mod send;
mod webhooks_out;

use clap::{Args, Subcommand};
use serde_json::json;
use textbank_store::Backend;
use textbank_testkit::ScratchDb;

/// A benchmark's outcome; its error is printed by the binary.
pub type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub bench: Bench,
}

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Event appends: batched (one caller, N events per call) and single
    /// (many concurrent callers, one event per call), each beside plain
    /// INSERTs of the same rows into a bare table.
    Append(AppendArgs),
    /// Contact-list import: a generated CSV through the same pipeline as
    /// `POST /v1/lists`, beside reading and parsing the same CSV alone.
    Import(ImportArgs),
    /// Send clicks over HTTP: concurrent texters each fetching their queue
    /// and clicking Send on the in-process server (dispatcher and simulated
    /// carrier running), beside an axum endpoint doing one plain INSERT.
    Send(SendArgs),
    /// Every read model rebuilt from position 0 over a generated campaign's
    /// log, beside reading the log alone; then the inbox, audit and metrics
    /// queries timed over HTTP, and the audit export's memory.
    Projections(ProjectionsArgs),
    /// Signed Twilio delivery reports posted concurrently to the in-process
    /// server, beside the same plain-INSERT axum endpoint.
    Webhooks(WebhooksArgs),
    /// Outbound webhook deliveries per second to a local receiver that
    /// answers after a millisecond, beside plain loops posting the same
    /// body to it; then a STOP's latency from the carrier's webhook to a
    /// subscribed receiver (p99).
    WebhooksOut(WebhooksOutArgs),
    /// The resident memory of a `textbank serve` child process: idle, through
    /// many list uploads, then through clicks on the simulated carrier;
    /// the final figure beside the one after the first upload.
    Memory(MemoryArgs),
    /// One large list through a `textbank serve` child process: upload, a
    /// campaign over it (the create request's time), the background copy of
    /// its contacts, launch; the server's peak RSS beside its idle RSS.
    BigList(BigListArgs),
}

#[derive(Debug, Args)]
pub struct BigListArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Generated rows in the list (at most 1,000,000, the upload limit).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// The server's database pool size (`textbank serve`'s default).
    #[arg(long, default_value_t = 16)]
    pub db_max_connections: u32,
    /// Seed of the list generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Contact lists uploaded, one after another.
    #[arg(long, default_value_t = 100)]
    pub uploads: u64,
    /// Generated rows in each list; the lists share no phone, and one
    /// campaign goes to all of them.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Send clicks after the uploads (at most uploads × rows).
    #[arg(long, default_value_t = 1_000_000)]
    pub clicks: u64,
    /// Clicks between two memory readings.
    #[arg(long, default_value_t = 100_000)]
    pub report_every: u64,
    /// Concurrent texters, each with its own API key and HTTP connection.
    #[arg(long, default_value_t = 50)]
    pub texters: u32,
    /// The server's database pool size (`textbank serve`'s default).
    #[arg(long, default_value_t = 16)]
    pub db_max_connections: u32,
    /// Seed of the list generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ProjectionsArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Contacts in the campaign; each gets one click, its dispatch and
    /// three delivery reports; one in five replies.
    #[arg(long, default_value_t = 200_000)]
    pub contacts: u64,
    /// Texters sharing the contacts.
    #[arg(long, default_value_t = 100)]
    pub texters: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Concurrent texters, each with its own API key and HTTP connection.
    #[arg(long, default_value_t = 64)]
    pub texters: u32,
    /// Messages each texter sends; the list holds texters × this contacts.
    #[arg(long, default_value_t = 150)]
    pub clicks_per_texter: u32,
    /// The server's database pool size (`textbank serve`'s default).
    #[arg(long, default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Delivery reports posted (four statuses per sent message).
    #[arg(long, default_value_t = 20_000)]
    pub reports: u32,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u32,
    /// The server's database pool size (`textbank serve`'s default).
    #[arg(long, default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Args)]
pub struct WebhooksOutArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Subscriptions to the same receiver; each delivers on its own, in
    /// order (the baseline runs one plain loop per subscription).
    #[arg(long, default_value_t = 8)]
    pub subscriptions: u32,
    /// Events appended; each subscription delivers every one.
    #[arg(long, default_value_t = 2_500)]
    pub events: u64,
    /// How long the receiver takes to answer, in microseconds.
    #[arg(long, default_value_t = 1_000)]
    pub receiver_micros: u64,
    /// STOP replies for the latency figure, one after another.
    #[arg(long, default_value_t = 200)]
    pub stops: u32,
    /// Milliseconds between two STOP replies.
    #[arg(long, default_value_t = 20)]
    pub stop_pause_ms: u64,
    /// The server's database pool size (`textbank serve`'s default).
    #[arg(long, default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// `sqlite` (scratch file) or a `postgres://…` URL (scratch schema).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Data rows in the generated file.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// Where to run: `sqlite` (a scratch file in the temp directory) or a
    /// `postgres://…` URL (a scratch schema in that database, dropped after).
    #[arg(long, env = "TEXTBANK_BENCH_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// Events written by the batched figure (and by its baseline).
    #[arg(long, default_value_t = 200_000)]
    pub batched_events: u64,
    /// Events per append call in the batched figure.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: u64,
    /// Events written by the single-event figure (and by its baseline).
    #[arg(long, default_value_t = 30_000)]
    pub single_events: u64,
    /// Concurrent callers in the single-event figure.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u64,
    /// Seed of the event generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Runs the chosen benchmark.
pub async fn run(args: BenchArgs) -> BenchResult {
    let url = match &args.bench {
        Bench::Append(args) => &args.database_url,
        Bench::Import(args) => &args.database_url,
        Bench::Send(args) => &args.database_url,
        Bench::Webhooks(args) => &args.database_url,
        Bench::WebhooksOut(args) => &args.database_url,
        Bench::Projections(args) => &args.database_url,
        Bench::Memory(args) => &args.database_url,
        Bench::BigList(args) => &args.database_url,
    };
    on_scratch(url, async |scratch| match &args.bench {
        Bench::Append(args) => append::run(scratch, args).await,
        Bench::Import(args) => import::run(scratch, args).await,
        Bench::Send(args) => send::send(scratch, args).await,
        Bench::Webhooks(args) => send::webhooks(scratch, args).await,
        Bench::WebhooksOut(args) => webhooks_out::run(scratch, args).await,
        Bench::Projections(args) => projections::run(scratch, args).await,
        Bench::Memory(args) => memory::run(scratch, args).await,
        Bench::BigList(args) => big_list::run(scratch, args).await,
    })
    .await
}

/// Runs `bench` on a scratch database made from `url` (`sqlite` or a
/// PostgreSQL URL), dropped afterwards whatever the outcome.
async fn on_scratch(url: &str, bench: impl AsyncFnOnce(&ScratchDb) -> BenchResult) -> BenchResult {
    let scratch = if url == "sqlite" || url.starts_with("sqlite:") {
        ScratchDb::sqlite_file("textbank-bench").await?
    } else {
        ScratchDb::postgres_schema_in(url, "textbank_bench").await?
    };
    let outcome = bench(&scratch).await;
    scratch.cleanup().await;
    outcome
}

/// Prints one figure (a rate in `unit`) beside its baseline, with `extra`'s
/// fields added to the line.
pub(crate) fn print_figure(
    bench: &str,
    backend: Backend,
    value: f64,
    unit: &str,
    baseline: f64,
    extra: serde_json::Value,
) {
    let mut line = json!({
        "bench": bench,
        "backend": backend.name(),
        "value": value.round(),
        "unit": unit,
        "baseline": baseline.round(),
        "ratio": (value / baseline * 100.0).round() / 100.0,
    });
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    println!("{line}");
}

/// A memory figure (`VmRSS`, `VmHWM`, …) of a process (`self` or a process
/// id) from /proc, in MiB to a tenth; `None` off Linux.
pub(crate) fn memory_mb(process: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|line| {
        line.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 102.4).round() / 10.0)
}
