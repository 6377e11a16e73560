//! `textbank bench big-list`: one large list through a real `textbank
//! serve` child process, as a campaign manager would use it. The list is
//! uploaded, a campaign is created over it (the request's time, against
//! the 1 s target), its contacts are copied into the campaign in the
//! background (how long until it can launch), and it is launched and a
//! batch assigned. The server's peak RSS through all of it is the figure,
//! beside its idle RSS.

use std::time::{Duration, Instant};

use serde_json::json;
use textbank_testkit::ScratchDb;

use crate::memory::{round_ms, serve_child};
use crate::{BenchResult, BigListArgs, memory_mb, print_figure};

/// The targets: peak RSS through the upload and the campaign, and the
/// campaign creation request's time.
const PEAK_TARGET_MB: f64 = 300.0;
const CREATE_TARGET_MS: f64 = 1_000.0;

pub async fn run(scratch: &ScratchDb, args: &BigListArgs) -> BenchResult {
    let http = textbank_sms::http_client(Duration::from_secs(600))?;
    let (_server, meter, _store, team) =
        serve_child(scratch, &http, args.db_max_connections, 1).await?;
    let idle = meter
        .print("idle", json!({}))
        .ok_or("no /proc/<pid>/status to read memory from")?;

    let started = Instant::now();
    let list_id = team.upload_contacts(0, args.rows, args.seed).await?;
    meter.print(
        "upload",
        json!({"rows": args.rows, "seconds": round_ms(started.elapsed())}),
    );

    let lists = vec![list_id];
    let (campaign_id, create) = team.create_campaign(&lists).await?;
    let create_ms = create.as_secs_f64() * 1000.0;
    meter.print("campaign_created", json!({"create_ms": create_ms.round()}));
    let copied = team.await_contacts(&campaign_id).await?;
    meter.print(
        "contacts_copied",
        json!({"seconds_after_create": round_ms(copied)}),
    );
    let started = Instant::now();
    let batch = u32::try_from(args.rows.min(1_000))?;
    team.launch_created(campaign_id, lists, batch).await?;
    meter.print(
        "launched",
        json!({"assigned": batch, "seconds": round_ms(started.elapsed())}),
    );

    let peak = memory_mb(&meter.pid, "VmHWM").ok_or("no peak RSS to read")?;
    print_figure(
        "big_list",
        meter.backend,
        peak,
        "MiB",
        idle,
        json!({
            "value_is": "peak RSS through the upload, the campaign and its launch",
            "baseline_is": "idle RSS",
            "rows": args.rows,
            "peak_target_mb": PEAK_TARGET_MB,
            "peak_verdict": if peak <= PEAK_TARGET_MB { "met" } else { "over" },
            "create_ms": create_ms.round(),
            "create_target_ms": CREATE_TARGET_MS,
            "create_verdict": if create_ms <= CREATE_TARGET_MS { "met" } else { "over" },
            "contacts_copied_s": round_ms(copied),
        }),
    );
    Ok(())
}
