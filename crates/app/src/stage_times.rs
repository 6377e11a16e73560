//! Where a click's time goes: the total time and count of each stage the
//! send path goes through (and of authenticating any request), so that
//! `/metrics` and `textbank bench send` show the bottleneck without a
//! profiler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A stage of handling a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Finding the caller's key or session (any request).
    Auth,
    /// The click token's signature and claims, the pace and length rules.
    Checks,
    /// The campaign, the texter's assignment and the carrier's readiness.
    Campaign,
    /// Claiming the click's `Idempotency-Key` (its own transaction).
    IdempotencyKey,
    /// Loading the recipient's stream (from the cache, or the log).
    StreamRead,
    /// Appending the click's event: the wait for the writer's turn, the
    /// insert and the commit.
    Append,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Auth,
        Stage::Checks,
        Stage::Campaign,
        Stage::IdempotencyKey,
        Stage::StreamRead,
        Stage::Append,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Auth => "auth",
            Stage::Checks => "checks",
            Stage::Campaign => "campaign",
            Stage::IdempotencyKey => "idempotency_key",
            Stage::StreamRead => "stream_read",
            Stage::Append => "append",
        }
    }
}

/// One stage's totals since the server started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageTotal {
    pub stage: Stage,
    pub count: u64,
    pub seconds: f64,
}

/// Running totals per stage; lock-free, recorded on every click.
#[derive(Debug, Default)]
pub struct StageTimes {
    nanos: [AtomicU64; Stage::ALL.len()],
    counts: [AtomicU64; Stage::ALL.len()],
}

impl StageTimes {
    pub fn record(&self, stage: Stage, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[stage as usize].fetch_add(nanos, Ordering::Relaxed);
        self.counts[stage as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self) -> Vec<StageTotal> {
        Stage::ALL
            .iter()
            .map(|&stage| StageTotal {
                stage,
                count: self.counts[stage as usize].load(Ordering::Relaxed),
                seconds: self.nanos[stage as usize].load(Ordering::Relaxed) as f64 / 1e9,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_per_stage() {
        let times = StageTimes::default();
        times.record(Stage::Append, Duration::from_millis(3));
        times.record(Stage::Append, Duration::from_millis(5));
        times.record(Stage::Auth, Duration::from_micros(250));
        let totals = times.totals();
        let append = totals.iter().find(|t| t.stage == Stage::Append).unwrap();
        assert_eq!(append.count, 2);
        assert!((append.seconds - 0.008).abs() < 1e-9);
        let auth = totals.iter().find(|t| t.stage == Stage::Auth).unwrap();
        assert_eq!((auth.count, auth.seconds), (1, 0.000_25));
        let read = totals
            .iter()
            .find(|t| t.stage == Stage::StreamRead)
            .unwrap();
        assert_eq!(read.count, 0);
        assert_eq!(
            Stage::ALL.map(Stage::name),
            [
                "auth",
                "checks",
                "campaign",
                "idempotency_key",
                "stream_read",
                "append"
            ]
        );
    }
}
