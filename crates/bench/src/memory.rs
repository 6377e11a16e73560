//! `textbank bench memory`: the resident memory of a real `textbank serve`
//! over a scratch database — idle, after the first and the last of many
//! contact-list uploads, then every so many send clicks through the
//! simulated carrier — and the final figure as a ratio of the one after the
//! first upload, with the verdict "within 20%" or "over 20%"; and beside
//! the one after the first round of clicks (the steady state: caches full).
//!
//! The server runs as a child process (this same executable's `serve`), and
//! its memory is read from /proc/<pid>/status. The other benchmarks run the
//! server in-process, but here that would count the driver too: the
//! generated CSVs, every click's body and latency, the HTTP clients' pools,
//! and whatever the allocator keeps of them.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use textbank_app::{App, Config, SecretKeySource};
use textbank_store::{Backend, EventStore, SqlEventStore};
use textbank_testkit::ScratchDb;

use crate::send::{Tally, Team, await_dispatch, click, server_database};
use crate::{BenchResult, MemoryArgs, memory_mb, print_figure};

/// The share of growth over the level after the first upload that still
/// counts as bounded.
const TOLERANCE: f64 = 0.20;

pub async fn run(scratch: &ScratchDb, args: &MemoryArgs) -> BenchResult {
    let texters = u64::from(args.texters.max(1));
    let contacts = args.uploads * args.rows;
    // Each round's clicks are split evenly among the texters, rounding up,
    // and each texter is assigned all its rounds' shares at the start.
    let rounds = rounds(args.clicks, args.report_every.max(1), texters);
    let per_texter: u64 = rounds.iter().sum();
    if args.uploads == 0 || per_texter * texters > contacts {
        return Err(format!(
            "{} clicks by {texters} texters need {} contacts; {} uploads of {} rows hold {contacts}",
            args.clicks,
            per_texter * texters,
            args.uploads,
            args.rows
        )
        .into());
    }
    let http = textbank_sms::http_client(Duration::from_secs(300))?;
    let (server, meter, store, team) =
        serve_child(scratch, &http, args.db_max_connections, args.texters).await?;
    let base = server.base.as_str();
    meter.print("idle", json!({}));
    let started = Instant::now();
    let mut list_ids = Vec::new();
    let mut after_first = None;
    for upload in 0..args.uploads {
        let seed = args.seed + upload;
        let first = upload * args.rows;
        list_ids.push(team.upload_contacts(first, args.rows, seed).await?);
        if upload == 0 || upload + 1 == args.uploads {
            let rss = meter.print(
                "upload",
                json!({
                    "uploads": upload + 1,
                    "rows": (upload + 1) * args.rows,
                    "seconds": round_ms(started.elapsed()),
                }),
            );
            after_first = after_first.or(rss);
        }
    }
    let started = Instant::now();
    let fixture = team.launch(list_ids, u32::try_from(per_texter)?).await?;
    meter.print(
        "campaign",
        json!({"contacts_assigned": per_texter * texters,
               "seconds": round_ms(started.elapsed())}),
    );

    let mut clicked = 0;
    // The level once sending is under way: from here the caches are warm,
    // and growth would be a leak rather than a cache filling.
    let mut after_first_round = None;
    for &share in &rounds {
        let from = store.head_position().await?;
        let (elapsed, runs) = click(base, &http, &fixture, u32::try_from(share)?).await?;
        let mut clicks = Tally::default();
        for run in runs {
            clicks.merge(run.clicks);
        }
        let accepted = clicks.statuses.get(&202).copied().unwrap_or(0);
        // Read after the dispatcher has handed the round's messages to the
        // simulator, so each reading is of a server at rest between rounds.
        let dispatched = await_dispatch(&store, from, accepted).await?;
        clicked += clicks.latencies.len();
        let rss = meter.print(
            "clicks",
            json!({
                "clicks": clicked,
                "clicks_per_s": (clicks.latencies.len() as f64 / elapsed.as_secs_f64()).round(),
                "statuses": clicks.statuses,
                "handed_to_carrier": dispatched.submitted.len(),
                "not_handed": dispatched.not_submitted,
                "first_error": clicks.first_error,
            }),
        );
        after_first_round = after_first_round.or(rss);
    }

    let last = memory_mb(&meter.pid, "VmRSS");
    let peak = memory_mb(&meter.pid, "VmHWM");
    let (Some(last), Some(after_first)) = (last, after_first) else {
        return Err(format!("no /proc/{}/status to read memory from", meter.pid).into());
    };
    let within = last <= after_first * (1.0 + TOLERANCE);
    let steady = after_first_round.map(|sending| {
        json!({
            "rss_after_first_round_mb": sending,
            "ratio": (last / sending * 100.0).round() / 100.0,
            "verdict": if last <= sending * (1.0 + TOLERANCE) { "within 20%" } else { "over 20%" },
        })
    });
    print_figure(
        "memory",
        meter.backend,
        last,
        "MiB",
        after_first,
        json!({
            "value_is": "final RSS",
            "baseline_is": "RSS after the first upload",
            "peak_rss_mb": peak,
            "uploads": args.uploads,
            "rows_per_upload": args.rows,
            "clicks": clicked,
            "verdict": if within { "within 20%" } else { "over 20%" },
            // The final RSS beside the first round of clicks': whether the
            // server stops growing once its caches are full.
            "steady_state": steady,
        }),
    );
    Ok(())
}

/// A `textbank serve` child process on `scratch` with an org on the
/// simulated carrier and its `texters`, the meter reading its memory, and
/// the log (read from here to tell when the dispatcher is done).
pub(crate) async fn serve_child(
    scratch: &ScratchDb,
    http: &reqwest::Client,
    db_max_connections: u32,
    texters: u32,
) -> BenchResult<(Served, Meter, SqlEventStore, Team)> {
    // The org is created as `textbank admin create-org` would, before the
    // server starts: no HTTP route creates one.
    let app = App::open(&Config {
        max_connections: 2,
        secret_key: SecretKeySource::Generated,
        ..Config::with_open_database(server_database(scratch, 2).await?)
    })
    .await?;
    let created = app.create_org("Benchmark").await;
    app.close().await;
    let created = created?;
    let store = SqlEventStore::on_database(scratch.database.clone()).await?;
    let server = Served::start(scratch.url(), db_max_connections).await?;
    let meter = Meter {
        pid: server.child.id().to_string(),
        backend: store.backend(),
    };
    let team = Team::enlist(
        &server.base,
        http,
        created.org_id,
        created.owner_key,
        texters,
    )
    .await?;
    Ok((server, meter, store, team))
}

/// Each round's clicks per texter.
fn rounds(clicks: u64, every: u64, texters: u64) -> Vec<u64> {
    (0..clicks.div_ceil(every))
        .map(|round| (clicks - round * every).min(every).div_ceil(texters))
        .collect()
}

pub(crate) fn round_ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Reads and prints the server's memory.
pub(crate) struct Meter {
    pub(crate) pid: String,
    pub(crate) backend: Backend,
}

impl Meter {
    /// Prints one reading at `stage` with `extra`'s fields; its RSS.
    pub(crate) fn print(&self, stage: &str, extra: Value) -> Option<f64> {
        let rss = memory_mb(&self.pid, "VmRSS");
        let mut line = json!({
            "bench": "memory_stage",
            "backend": self.backend.name(),
            "stage": stage,
            "rss_mb": rss,
            "peak_rss_mb": memory_mb(&self.pid, "VmHWM"),
            // The heap, and the file pages mapped in (SQLite's memory map
            // of the database): growth in one is not growth in the other.
            "rss_anon_mb": memory_mb(&self.pid, "RssAnon"),
            "rss_file_mb": memory_mb(&self.pid, "RssFile"),
        });
        if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), extra) {
            line.extend(extra);
        }
        println!("{line}");
        rss
    }
}

/// `textbank serve` as a child process, killed when dropped: the scratch
/// database it used is removed after it, so nothing needs a clean stop.
pub(crate) struct Served {
    child: Child,
    base: String,
    /// Kept open: the server may print more, and a closed pipe would fail it.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Served {
    async fn start(database_url: &str, max_connections: u32) -> BenchResult<Self> {
        let key: [u8; 32] = rand::rng().random();
        let key: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(["--database-url", database_url])
            .args(["--db-max-connections", &max_connections.to_string()])
            // As in `bench send`: the texters are programs that click as
            // soon as a message shows, and the simulator has no carrier
            // throughput limit to pace for, nor failures or replies.
            .args(["--min-click-ms", "0", "--sender-rate", "1000000"])
            .args(["--sim-failure-rate", "0", "--sim-reply-rate", "0"])
            .args(["--sim-opt-out-rate", "0", "--sim-delivery-ms", "20"])
            // In the environment, not on the command line that `ps` shows;
            // set, so that no key file is created where the bench runs.
            .env("TEXTBANK_SECRET_KEY", key)
            .env("TEXTBANK_DEMO", "false")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        // Killed on drop from here on, whatever fails next.
        let mut served = Self {
            child,
            base: String::new(),
            _stdout: None,
        };
        let stdout = served
            .child
            .stdout
            .take()
            .ok_or("textbank serve has no stdout")?;
        let (line, stdout) = tokio::task::spawn_blocking(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            (read.map(|_| line), stdout)
        })
        .await?;
        served._stdout = Some(stdout);
        let line = line?;
        served.base = line
            .trim()
            .strip_prefix("textbank listening on ")
            .ok_or_else(|| format!("textbank serve did not start: {line:?}"))?
            .to_owned();
        Ok(served)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
