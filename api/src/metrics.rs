//! Prometheus metrics in the text exposition format, kept in-process: request
//! counts and latencies by route (the route template, never the raw path, so
//! ids cannot blow up cardinality), and gauges read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use textbank_app::stage_times::StageTotal;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Recorded {
    /// (method, route, status) → count
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency
    latency: BTreeMap<String, Histogram>,
}

/// The server's metrics registry.
pub struct Metrics {
    started: Instant,
    recorded: Mutex<Recorded>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            recorded: Mutex::default(),
        }
    }
}

/// Writes one unlabelled gauge with its help and type lines.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Writes one gauge per read model, `value` of its checkpoint position.
fn per_projector(
    out: &mut String,
    name: &str,
    help: &str,
    gauges: &Gauges,
    value: impl Fn(u64) -> u64,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (projector, position) in &gauges.projections {
        let _ = writeln!(
            out,
            "{name}{{projector=\"{}\"}} {}",
            escape(projector),
            value(*position)
        );
    }
}

/// [`Gauges::event_log`] of a log on KurrentDB.
const KURRENTDB: &str = "kurrentdb";

/// Gauges sampled when `/metrics` is scraped.
pub struct Gauges {
    pub event_log_head: u64,
    /// Where the log is (`EventStore::log_name`).
    pub event_log: &'static str,
    /// Whether the log answered the scrape's ping (the database's answer
    /// when the log is in it).
    pub event_log_up: bool,
    pub database_up: bool,
    /// Each read model's checkpoint (from the database, so it covers the
    /// projectors of every server sharing it).
    pub projections: Vec<(&'static str, u64)>,
    /// Where clicks spent their time since the start, stage by stage.
    pub stages: Vec<StageTotal>,
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        *recorded
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        recorded
            .latency
            .entry(route.to_owned())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    fn render_stages(&self, out: &mut String, gauges: &Gauges) {
        type Value = fn(&StageTotal) -> String;
        let counters: [(&str, &str, Value); 2] = [
            (
                "textbank_click_stage_seconds_total",
                "Time spent in each stage of handling clicks (auth: of any request).",
                |total| format!("{:.6}", total.seconds),
            ),
            (
                "textbank_click_stage_total",
                "Times each stage of handling clicks ran.",
                |total| total.count.to_string(),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for total in &gauges.stages {
                let _ = writeln!(
                    out,
                    "{name}{{stage=\"{}\"}} {}",
                    total.stage.name(),
                    value(total)
                );
            }
        }
    }

    fn render_projections(&self, out: &mut String, gauges: &Gauges) {
        let lag = |position: u64| gauges.event_log_head.saturating_sub(position);
        per_projector(
            out,
            "textbank_projection_position",
            "Last log position a read model applied.",
            gauges,
            |position| position,
        );
        if gauges.event_log == KURRENTDB {
            return self.render_kurrentdb(out, gauges);
        }
        per_projector(
            out,
            "textbank_projection_lag_events",
            "Events in the log a read model has not applied yet.",
            gauges,
            lag,
        );
    }

    /// A KurrentDB log's gauges. Its positions are `$all` commit positions
    /// (bytes into the cluster's log, ADR 0030), so a follower's lag is
    /// given in them, not in events.
    fn render_kurrentdb(&self, out: &mut String, gauges: &Gauges) {
        gauge(
            out,
            "textbank_kurrentdb_up",
            "Whether KurrentDB answered the scrape's ping.",
            u8::from(gauges.event_log_up),
        );
        gauge(
            out,
            "textbank_kurrentdb_head_position",
            "Commit position of the last textbank event in $all.",
            gauges.event_log_head,
        );
        per_projector(
            out,
            "textbank_kurrentdb_follower_lag_positions",
            "$all positions between the head and what a read model applied.",
            gauges,
            |position| gauges.event_log_head.saturating_sub(position),
        );
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# HELP textbank_build_info textbank version.");
        let _ = writeln!(out, "# TYPE textbank_build_info gauge");
        let _ = writeln!(
            out,
            "textbank_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP textbank_uptime_seconds Seconds since the server started."
        );
        let _ = writeln!(out, "# TYPE textbank_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "textbank_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        gauge(
            &mut out,
            "textbank_database_up",
            "Whether the database answered the scrape's ping.",
            u8::from(gauges.database_up),
        );
        gauge(
            &mut out,
            "textbank_event_log_head_position",
            "Last position visible in the event log.",
            gauges.event_log_head,
        );
        self.render_projections(&mut out, gauges);
        self.render_stages(&mut out, gauges);
        let _ = writeln!(
            out,
            "# HELP textbank_http_requests_total HTTP requests answered, by method, route and status."
        );
        let _ = writeln!(out, "# TYPE textbank_http_requests_total counter");
        for ((method, route, status), count) in &recorded.requests {
            let _ = writeln!(
                out,
                "textbank_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP textbank_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(
            out,
            "# TYPE textbank_http_request_duration_seconds histogram"
        );
        for (route, histogram) in &recorded.latency {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    out,
                    "textbank_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "textbank_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "textbank_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "textbank_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use textbank_app::stage_times::Stage;

    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status_with_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.record_request("GET", "/health", 200, Duration::from_millis(2));
        metrics.record_request("GET", "/health", 200, Duration::from_millis(30));
        metrics.record_request("GET", "unmatched", 404, Duration::from_millis(1));
        let text = metrics.render(&Gauges {
            event_log_head: 7,
            event_log: "sqlite",
            event_log_up: true,
            database_up: true,
            projections: vec![("inbox", 5)],
            stages: vec![StageTotal {
                stage: Stage::Append,
                count: 3,
                seconds: 0.012,
            }],
        });
        assert!(text.contains(
            "textbank_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains(
            "textbank_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "textbank_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.05\"} 2"
        ));
        assert!(text.contains("textbank_http_request_duration_seconds_count{route=\"/health\"} 2"));
        assert!(text.contains("textbank_event_log_head_position 7"));
        assert!(text.contains("textbank_database_up 1"));
        assert!(text.contains("textbank_projection_position{projector=\"inbox\"} 5"));
        assert!(text.contains("textbank_projection_lag_events{projector=\"inbox\"} 2"));
        assert!(text.contains("textbank_click_stage_seconds_total{stage=\"append\"} 0.012000"));
        assert!(text.contains("textbank_click_stage_total{stage=\"append\"} 3"));
    }

    #[test]
    fn a_kurrentdb_log_reports_its_head_and_each_followers_lag_in_positions() {
        let text = Metrics::default().render(&Gauges {
            event_log_head: 90_000,
            event_log: KURRENTDB,
            event_log_up: true,
            database_up: true,
            projections: vec![("inbox", 85_904)],
            stages: Vec::new(),
        });
        assert!(text.contains("textbank_kurrentdb_up 1"));
        assert!(text.contains("textbank_kurrentdb_head_position 90000"));
        assert!(
            text.contains("textbank_kurrentdb_follower_lag_positions{projector=\"inbox\"} 4096")
        );
        // Positions with gaps are not a count of events.
        assert!(!text.contains("textbank_projection_lag_events"));
        assert!(text.contains("textbank_projection_position{projector=\"inbox\"} 85904"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
