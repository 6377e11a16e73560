//! A texter's click cadence: how long they looked at each message before
//! sending it, how many they sent per minute, and whether that looks like a
//! person or a script. Pure arithmetic over the clicks the audit holds; the
//! thresholds are argued in docs/adr/0013-compliance-audit.md.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::query::CadenceClick;

/// Below this many milliseconds between showing a message and the click
/// reaching the server, nobody read it: the server refuses clicks under
/// 250 ms outright (`too_fast`), and reading even a one-segment text and
/// moving to the button takes a person well over half a second.
pub const FAST_CLICK_MS: i64 = 500;
/// Share of measured clicks under [`FAST_CLICK_MS`] that is flagged.
pub const FAST_SHARE: f64 = 0.2;
/// Clicks within one minute that a person reading each message cannot
/// sustain: one a second, for a whole minute.
pub const MAX_CLICKS_PER_MINUTE: u64 = 60;
/// Coefficient of variation (standard deviation / mean) below which a
/// series of intervals is too regular for a person: human timings scatter
/// by tens of percent; a timer's barely at all.
pub const REGULARITY_MAX_CV: f64 = 0.1;
/// Least sample before a share or a regularity is judged at all.
pub const MIN_SAMPLE: usize = 10;
/// Gaps between clicks longer than this are breaks, not cadence.
pub const SESSION_GAP_MS: i64 = 5 * 60 * 1_000;

/// Display-to-click histogram edges, in milliseconds.
const CLICK_EDGES: [i64; 8] = [250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000];
/// Clicks-per-minute histogram edges.
const RATE_EDGES: [u64; 6] = [2, 6, 11, 21, 31, 61];

/// A histogram bucket: values in `[from, to)` (`to` open-ended when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = CadenceBucket)]
pub struct Bucket {
    pub from: i64,
    pub to: Option<i64>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DisplayToClick {
    /// Clicks whose message was presented by the server (initial messages).
    pub measured: u64,
    pub min_ms: Option<i64>,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub max_ms: Option<i64>,
    /// Clicks under the human floor ([`FAST_CLICK_MS`]).
    pub below_floor: u64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClicksPerMinute {
    /// Calendar minutes (UTC) with at least one click.
    pub active_minutes: u64,
    pub max: u64,
    pub mean: Option<f64>,
    /// How many active minutes had how many clicks.
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Intervals {
    /// Gaps between consecutive clicks, breaks left out.
    pub count: u64,
    pub p50_ms: Option<i64>,
    /// Coefficient of variation; low means machine-regular.
    pub cv: Option<f64>,
}

/// The thresholds the verdict used, so a reader can check it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CadenceThresholds {
    pub fast_click_ms: i64,
    pub fast_share: f64,
    pub max_clicks_per_minute: u64,
    pub regularity_max_cv: f64,
    pub min_sample: usize,
    pub session_gap_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Cadence {
    pub clicks: u64,
    pub first_click_at: Option<DateTime<Utc>>,
    pub last_click_at: Option<DateTime<Utc>>,
    pub display_to_click: DisplayToClick,
    pub clicks_per_minute: ClicksPerMinute,
    pub intervals: Intervals,
    pub looks_automated: bool,
    /// Why, in words; empty when nothing was flagged.
    pub reasons: Vec<String>,
    pub thresholds: CadenceThresholds,
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn coefficient_of_variation(values: &[i64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    if mean <= 0.0 {
        return Some(0.0);
    }
    let variance = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    Some(variance.sqrt() / mean)
}

fn buckets(edges: &[i64], values: impl Iterator<Item = i64>) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = std::iter::once(i64::MIN)
        .chain(edges.iter().copied())
        .zip(edges.iter().copied().map(Some).chain([None]))
        .map(|(from, to)| Bucket {
            from: from.max(0),
            to,
            count: 0,
        })
        .collect();
    for value in values {
        let index = edges.partition_point(|&edge| edge <= value);
        buckets[index].count += 1;
    }
    buckets
}

/// Analyses clicks sorted by `received_at`.
pub fn analyse(clicks: &[CadenceClick]) -> Cadence {
    let mut measured: Vec<i64> = clicks
        .iter()
        .filter_map(|click| click.display_to_click_ms)
        .collect();
    measured.sort_unstable();
    let below_floor = measured.iter().filter(|&&ms| ms < FAST_CLICK_MS).count();

    let mut per_minute: BTreeMap<i64, u64> = BTreeMap::new();
    for click in clicks {
        *per_minute
            .entry(click.received_at.timestamp().div_euclid(60))
            .or_default() += 1;
    }
    let max_per_minute = per_minute.values().copied().max().unwrap_or(0);
    let rate_edges: Vec<i64> = RATE_EDGES.iter().map(|&e| e as i64).collect();

    let mut intervals: Vec<i64> = clicks
        .windows(2)
        .map(|pair| (pair[1].received_at - pair[0].received_at).num_milliseconds())
        .filter(|&gap| gap <= SESSION_GAP_MS)
        .collect();
    let interval_cv = coefficient_of_variation(&intervals);
    let display_cv = coefficient_of_variation(&measured);
    intervals.sort_unstable();

    let mut reasons = Vec::new();
    if measured.len() >= MIN_SAMPLE && below_floor as f64 >= FAST_SHARE * measured.len() as f64 {
        reasons.push(format!(
            "{below_floor} of {} clicks came less than {FAST_CLICK_MS} ms after the message was shown",
            measured.len()
        ));
    }
    if max_per_minute > MAX_CLICKS_PER_MINUTE {
        reasons.push(format!(
            "{max_per_minute} clicks within one minute (more than {MAX_CLICKS_PER_MINUTE})"
        ));
    }
    if intervals.len() >= MIN_SAMPLE
        && let Some(cv) = interval_cv.filter(|&cv| cv < REGULARITY_MAX_CV)
    {
        reasons.push(format!(
            "the time between clicks barely varies (coefficient of variation {cv:.3} over {} intervals)",
            intervals.len()
        ));
    }
    if measured.len() >= MIN_SAMPLE
        && let Some(cv) = display_cv.filter(|&cv| cv < REGULARITY_MAX_CV)
    {
        reasons.push(format!(
            "the time from display to click barely varies (coefficient of variation {cv:.3} over {} clicks)",
            measured.len()
        ));
    }

    Cadence {
        clicks: clicks.len() as u64,
        first_click_at: clicks.first().map(|c| c.received_at),
        last_click_at: clicks.last().map(|c| c.received_at),
        display_to_click: DisplayToClick {
            measured: measured.len() as u64,
            min_ms: measured.first().copied(),
            p50_ms: quantile(&measured, 0.5),
            p90_ms: quantile(&measured, 0.9),
            max_ms: measured.last().copied(),
            below_floor: below_floor as u64,
            buckets: buckets(&CLICK_EDGES, measured.iter().copied()),
        },
        clicks_per_minute: ClicksPerMinute {
            active_minutes: per_minute.len() as u64,
            max: max_per_minute,
            mean: (!per_minute.is_empty()).then(|| clicks.len() as f64 / per_minute.len() as f64),
            buckets: buckets(&rate_edges, per_minute.values().map(|&n| n as i64))
                .into_iter()
                .map(|bucket| Bucket {
                    from: bucket.from.max(1),
                    ..bucket
                })
                .collect(),
        },
        intervals: Intervals {
            count: intervals.len() as u64,
            p50_ms: quantile(&intervals, 0.5),
            cv: interval_cv,
        },
        looks_automated: !reasons.is_empty(),
        reasons,
        thresholds: CadenceThresholds {
            fast_click_ms: FAST_CLICK_MS,
            fast_share: FAST_SHARE,
            max_clicks_per_minute: MAX_CLICKS_PER_MINUTE,
            regularity_max_cv: REGULARITY_MAX_CV,
            min_sample: MIN_SAMPLE,
            session_gap_ms: SESSION_GAP_MS,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clicks(steps_ms: &[i64], display_ms: &[i64]) -> Vec<CadenceClick> {
        let start: DateTime<Utc> = "2026-11-25T19:00:00Z".parse().unwrap();
        let mut at = start;
        steps_ms
            .iter()
            .zip(display_ms.iter().cycle())
            .map(|(&step, &display)| {
                at += chrono::Duration::milliseconds(step);
                CadenceClick {
                    received_at: at,
                    display_to_click_ms: Some(display),
                }
            })
            .collect()
    }

    #[test]
    fn a_person_with_scattered_timings_is_not_flagged() {
        let steps = [
            4_100, 7_900, 3_300, 12_000, 5_600, 2_900, 9_400, 6_100, 3_800, 15_200, 4_700, 8_800,
        ];
        let display = [
            2_300, 1_100, 4_800, 900, 3_100, 7_400, 1_600, 2_900, 5_500, 1_200, 3_700, 2_100,
        ];
        let cadence = analyse(&clicks(&steps, &display));
        assert!(!cadence.looks_automated, "{:?}", cadence.reasons);
        assert_eq!(cadence.clicks, 12);
        assert_eq!(cadence.display_to_click.min_ms, Some(900));
        assert_eq!(cadence.display_to_click.p50_ms, Some(2_300));
        assert_eq!(cadence.display_to_click.p90_ms, Some(5_500));
        let counted: u64 = cadence
            .display_to_click
            .buckets
            .iter()
            .map(|b| b.count)
            .sum();
        assert_eq!(counted, 12);
    }

    #[test]
    fn a_metronome_is_flagged_as_regular() {
        let cadence = analyse(&clicks(&[2_000; 30], &[1_500, 1_520, 1_480]));
        assert!(cadence.looks_automated);
        assert!(
            cadence.reasons.iter().any(|r| r.contains("between clicks")),
            "{:?}",
            cadence.reasons
        );
    }

    #[test]
    fn clicks_faster_than_reading_are_flagged() {
        let steps = [
            3_000, 5_000, 4_000, 9_000, 2_500, 7_000, 3_500, 6_000, 4_500, 8_000,
        ];
        let display = [300, 5_000, 280, 2_000, 450, 3_000, 320, 4_000, 2_500, 6_000];
        let cadence = analyse(&clicks(&steps, &display));
        assert_eq!(cadence.display_to_click.below_floor, 4);
        assert!(cadence.looks_automated);
        assert!(
            cadence.reasons[0].contains("4 of 10 clicks"),
            "{:?}",
            cadence.reasons
        );
    }

    #[test]
    fn more_than_sixty_clicks_in_a_minute_are_flagged() {
        let steps: Vec<i64> = (0..70).map(|i| 600 + (i % 7) * 90).collect();
        let display: Vec<i64> = (0..70).map(|i| 800 + (i % 11) * 400).collect();
        let cadence = analyse(&clicks(&steps, &display));
        assert!(cadence.clicks_per_minute.max > MAX_CLICKS_PER_MINUTE);
        assert!(cadence.looks_automated);
    }

    #[test]
    fn too_few_clicks_are_not_judged_on_shares_or_regularity() {
        let cadence = analyse(&clicks(&[1_000; 3], &[100]));
        assert!(!cadence.looks_automated);
        assert_eq!(cadence.display_to_click.below_floor, 3);
    }

    #[test]
    fn buckets_split_at_their_edges() {
        let counts: Vec<u64> =
            buckets(&CLICK_EDGES, [0, 249, 250, 499, 60_000, 90_000].into_iter())
                .iter()
                .map(|b| b.count)
                .collect();
        assert_eq!(counts, [2, 2, 0, 0, 0, 0, 0, 0, 2]);
    }
}
