//! The read side: a campaign's figures, its texters', its timeseries and
//! the org's overview. Each is a few indexed reads of the counters; a
//! median is one index range read from its middle (OFFSET), which is exact
//! and costs a few milliseconds even for 100,000 values.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use textbank_domain::{CampaignId, MemberId, OrgId};
use textbank_store::{Database, StoreResult, on_reader};
use uuid::Uuid;

use super::fold::{Counts, HELD_PREFIX};

/// The width of a timeseries bucket (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The start of the bucket holding `seconds` (since the epoch).
    fn floor(self, seconds: i64) -> i64 {
        seconds.div_euclid(self.seconds()) * self.seconds()
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bucket {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            other => Err(format!("bucket must be hour or day, not {other:?}")),
        }
    }
}

/// A campaign's headline figures (see the module's definitions).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Headline {
    pub campaign_id: CampaignId,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub contacts: i64,
    pub assigned: i64,
    pub messaged: i64,
    pub replies_sent: i64,
    pub delivered: i64,
    /// delivered / messaged
    pub delivery_rate: Option<f64>,
    pub failed: i64,
    pub replied: i64,
    /// replied / messaged
    pub reply_rate: Option<f64>,
    pub replies_received: i64,
    pub opted_out: i64,
    /// opted_out / messaged
    pub opt_out_rate: Option<f64>,
    pub blocked: i64,
}

/// Everything `GET /v1/campaigns/{id}/metrics` shows.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignMetricsView {
    #[serde(flatten)]
    pub headline: Headline,
    /// Failed initial messages by error code.
    pub failed_by_code: BTreeMap<String, i64>,
    /// Refused send attempts by reason.
    pub blocked_by_reason: BTreeMap<String, i64>,
    /// Contacts texters' queues held back instead of offering them, by
    /// reason (`message_too_long`: the message renders over the server's
    /// cap), once per contact and script version.
    pub held_by_reason: BTreeMap<String, i64>,
    /// Question id → answer → conversations whose current answer it is.
    pub survey_answers: BTreeMap<String, BTreeMap<String, i64>>,
    pub median_time_to_first_reply_ms: Option<i64>,
    /// Conversations by where they are now: `texter` (in a texter's
    /// inbox), `pool` (released), `escalated` (waiting for staff). From the
    /// inbox read model.
    pub conversations_by_holder: BTreeMap<String, i64>,
}

/// One texter's figures in a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TexterMetrics {
    pub texter_id: MemberId,
    /// The member's name, as the directory has it.
    pub name: Option<String>,
    pub assigned: i64,
    pub messaged: i64,
    /// Replies handled: the texter's replies in conversations.
    pub replies_sent: i64,
    /// messaged + replies_sent
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub replied: i64,
    pub replies_received: i64,
    pub opted_out: i64,
    pub blocked: i64,
    pub median_display_to_click_ms: Option<i64>,
}

/// One timeseries bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BucketCounts {
    pub start: DateTime<Utc>,
    pub messaged: i64,
    pub replies_sent: i64,
    /// messaged + replies_sent
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub replied: i64,
    pub replies_received: i64,
    pub opted_out: i64,
    pub blocked: i64,
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    campaign_id: Uuid,
    name: String,
    status: String,
    created_at: DateTime<Utc>,
    contacts: i64,
    #[sqlx(flatten)]
    counts: Counts,
}

const CAMPAIGN_COLUMNS: &str = "SELECT campaign_id, name, status, created_at, contacts, assigned, \
     messaged, replies_sent, delivered, failed, replied, replies_received, opted_out, blocked, \
     timed_clicks FROM campaign_metrics_campaigns";

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl CampaignRow {
    fn headline(self) -> Headline {
        let c = self.counts;
        Headline {
            campaign_id: CampaignId::from_uuid(self.campaign_id),
            name: self.name,
            status: self.status,
            created_at: self.created_at,
            contacts: self.contacts,
            assigned: c.assigned,
            messaged: c.messaged,
            replies_sent: c.replies_sent,
            delivered: c.delivered,
            delivery_rate: rate(c.delivered, c.messaged),
            failed: c.failed,
            replied: c.replied,
            reply_rate: rate(c.replied, c.messaged),
            replies_received: c.replies_received,
            opted_out: c.opted_out,
            opt_out_rate: rate(c.opted_out, c.messaged),
            blocked: c.blocked,
        }
    }
}

async fn campaign_row(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
) -> StoreResult<Option<CampaignRow>> {
    Ok(on_reader!(db, |pool| {
        sqlx::query_as::<_, CampaignRow>(sqlx::AssertSqlSafe(format!(
            "{CAMPAIGN_COLUMNS} WHERE org_id = $1 AND campaign_id = $2"
        )))
        .bind(Uuid::from(org))
        .bind(Uuid::from(campaign))
        .fetch_optional(pool)
        .await?
    }))
}

/// The org's campaigns with their headline figures, newest first.
pub async fn overview(db: &Database, org: OrgId) -> StoreResult<Vec<Headline>> {
    let rows: Vec<CampaignRow> = on_reader!(db, |pool| {
        sqlx::query_as::<_, CampaignRow>(sqlx::AssertSqlSafe(format!(
            "{CAMPAIGN_COLUMNS} WHERE org_id = $1 ORDER BY created_at DESC, campaign_id DESC"
        )))
        .bind(Uuid::from(org))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(CampaignRow::headline).collect())
}

/// A campaign's figures; `None` for another org's campaign, as for a
/// missing one.
pub async fn campaign_metrics(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
) -> StoreResult<Option<CampaignMetricsView>> {
    let Some(row) = campaign_row(db, org, campaign).await? else {
        return Ok(None);
    };
    let id = Uuid::from(campaign);
    let replied = row.counts.replied;
    let failed_by_code: Vec<(String, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT code, messages FROM campaign_metrics_failures
              WHERE campaign_id = $1 AND messages <> 0",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let blocked_by_reason: Vec<(String, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT reason, attempts FROM campaign_metrics_blocked
              WHERE campaign_id = $1 AND attempts <> 0",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let answers: Vec<(String, String, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT question_id, answer, conversations FROM campaign_metrics_answers
              WHERE campaign_id = $1 AND conversations <> 0",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let mut survey_answers: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (question, answer, conversations) in answers {
        survey_answers
            .entry(question)
            .or_default()
            .insert(answer, conversations);
    }
    let middle = middle_offset(replied);
    let median_time_to_first_reply_ms = match middle {
        None => None,
        Some(offset) => {
            let values: Vec<i64> = on_reader!(db, |pool| {
                sqlx::query_scalar(
                    "SELECT first_reply_ms FROM campaign_metrics_conversations
                      WHERE campaign_id = $1 AND first_reply_ms IS NOT NULL
                      ORDER BY first_reply_ms LIMIT 2 OFFSET $2",
                )
                .bind(id)
                .bind(offset)
                .fetch_all(pool)
                .await?
            });
            median(replied, &values)
        }
    };
    let (held_by_reason, blocked_by_reason): (BTreeMap<_, _>, BTreeMap<_, _>) = blocked_by_reason
        .into_iter()
        .partition(|(reason, _)| reason.starts_with(HELD_PREFIX));
    let held_by_reason = held_by_reason
        .into_iter()
        .map(|(reason, count)| (reason[HELD_PREFIX.len()..].to_owned(), count))
        .collect();
    Ok(Some(CampaignMetricsView {
        headline: row.headline(),
        failed_by_code: failed_by_code.into_iter().collect(),
        blocked_by_reason,
        held_by_reason,
        survey_answers,
        median_time_to_first_reply_ms,
        conversations_by_holder: crate::inbox::holder_counts(db, org, campaign).await?,
    }))
}

/// Where the middle of `n` sorted values starts.
fn middle_offset(n: i64) -> Option<i64> {
    (n > 0).then(|| (n - 1) / 2)
}

/// The median of `n` values from the one or two read at the middle: the
/// middle value, or the mean of the two middle values rounded down.
fn median(n: i64, middle: &[i64]) -> Option<i64> {
    match middle {
        [one, two] if n % 2 == 0 => Some((one + two).div_euclid(2)),
        [one, ..] => Some(*one),
        [] => None,
    }
}

#[derive(sqlx::FromRow)]
struct TexterRow {
    texter_id: Uuid,
    name: Option<String>,
    #[sqlx(flatten)]
    counts: Counts,
}

/// How many of the texter's initial messages in the campaign failed (the
/// `failed` figure): what the texter's send screen warns about.
pub async fn texter_failed(
    db: &Database,
    campaign: CampaignId,
    texter: MemberId,
) -> StoreResult<u64> {
    let failed: Option<i64> = on_reader!(db, |pool| {
        sqlx::query_scalar(
            "SELECT failed FROM campaign_metrics_texters WHERE campaign_id = $1 AND texter_id = $2",
        )
        .bind(Uuid::from(campaign))
        .bind(Uuid::from(texter))
        .fetch_optional(pool)
        .await?
    });
    Ok(failed.map_or(0, |failed| u64::try_from(failed).unwrap_or(0)))
}

/// The campaign's texters with their figures, by texter id; `None` for
/// another org's campaign, as for a missing one.
pub async fn texters(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
) -> StoreResult<Option<Vec<TexterMetrics>>> {
    if campaign_row(db, org, campaign).await?.is_none() {
        return Ok(None);
    }
    let id = Uuid::from(campaign);
    let rows: Vec<TexterRow> = on_reader!(db, |pool| {
        sqlx::query_as::<_, TexterRow>(
            "SELECT t.texter_id, m.name, t.assigned, t.messaged, t.replies_sent, t.delivered,
                    t.failed, t.replied, t.replies_received, t.opted_out, t.blocked, t.timed_clicks
               FROM campaign_metrics_texters t
               LEFT JOIN members m ON m.member_id = t.texter_id
              WHERE t.campaign_id = $1
              ORDER BY t.texter_id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    let rows: Vec<TexterRow> = rows
        .into_iter()
        .filter(|row| !row.counts.is_zero())
        .collect();
    let medians = display_to_click_medians(db, id, &rows).await?;
    let texters = rows
        .into_iter()
        .zip(medians)
        .map(|(row, median_display_to_click_ms)| {
            let c = row.counts;
            TexterMetrics {
                texter_id: MemberId::from_uuid(row.texter_id),
                name: row.name,
                assigned: c.assigned,
                messaged: c.messaged,
                replies_sent: c.replies_sent,
                sent: c.messaged + c.replies_sent,
                delivered: c.delivered,
                failed: c.failed,
                replied: c.replied,
                replies_received: c.replies_received,
                opted_out: c.opted_out,
                blocked: c.blocked,
                median_display_to_click_ms,
            }
        })
        .collect();
    Ok(Some(texters))
}

/// Texters per median query: each is one subquery reading two values from
/// the middle of the texter's index range, all in one round trip.
const MEDIANS_PER_QUERY: usize = 100;

/// Where a texter's median display-to-click time is read from: its clicks
/// (`n`), the whole second the middle one falls in, and how many of the
/// texter's clicks in that second come before it.
struct Middle {
    row: usize,
    texter: Uuid,
    n: i64,
    from_ms: i64,
    skip: i64,
}

/// Finds the second holding the middle of each texter's clicks from the
/// per-second counts (`(texter, second, clicks)` in texter, second order).
fn middles(rows: &[TexterRow], seconds: &[(Uuid, i64, i64)]) -> Vec<Middle> {
    let mut per_texter: HashMap<Uuid, Vec<(i64, i64)>> = HashMap::new();
    for (texter, second, clicks) in seconds {
        per_texter
            .entry(*texter)
            .or_default()
            .push((*second, *clicks));
    }
    rows.iter()
        .enumerate()
        .filter_map(|(row, texter)| {
            let seconds = per_texter.get(&texter.texter_id)?;
            let n = seconds.iter().map(|(_, clicks)| clicks).sum();
            let middle = middle_offset(n)?;
            let mut before = 0;
            for (second, clicks) in seconds {
                if middle < before + clicks {
                    return Some(Middle {
                        row,
                        texter: texter.texter_id,
                        n,
                        from_ms: second * 1_000,
                        skip: middle - before,
                    });
                }
                before += clicks;
            }
            None
        })
        .collect()
}

/// Each texter's median display-to-click time, in `rows` order. The
/// per-second counts say where the middle lies, so each texter's two middle
/// values are read from that second on, skipping only that second's faster
/// clicks instead of half the texter's (one subquery per texter, all in
/// one round trip).
async fn display_to_click_medians(
    db: &Database,
    campaign: Uuid,
    rows: &[TexterRow],
) -> StoreResult<Vec<Option<i64>>> {
    let mut medians = vec![None; rows.len()];
    let seconds: Vec<(Uuid, i64, i64)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT texter_id, second, clicks FROM campaign_metrics_display_seconds
              WHERE campaign_id = $1 AND clicks <> 0
              ORDER BY texter_id, second",
        )
        .bind(campaign)
        .fetch_all(pool)
        .await?
    });
    let middles = middles(rows, &seconds);
    for chunk in middles.chunks(MEDIANS_PER_QUERY) {
        let sql = (0..chunk.len())
            .map(|k| {
                format!(
                    "SELECT CAST({k} AS BIGINT) AS k, display_ms FROM (
                        SELECT display_ms FROM campaign_metrics_conversations
                         WHERE campaign_id = ${} AND texter_id = ${} AND display_ms IS NOT NULL
                           AND display_ms >= ${}
                         ORDER BY display_ms LIMIT 2 OFFSET ${}) AS m{k}",
                    4 * k + 1,
                    4 * k + 2,
                    4 * k + 3,
                    4 * k + 4
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        // `?` on SQLite: sqlx-sqlite looks `$N` up by name, per parameter.
        let sql = textbank_store::sql::for_database(db, sql);
        let values: Vec<(i64, i64)> = on_reader!(db, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for middle in chunk {
                query = query
                    .bind(campaign)
                    .bind(middle.texter)
                    .bind(middle.from_ms)
                    .bind(middle.skip);
            }
            query.fetch_all(pool).await?
        });
        let mut read: Vec<Vec<i64>> = vec![Vec::new(); chunk.len()];
        for (k, value) in values {
            if let Some(values) = usize::try_from(k).ok().and_then(|k| read.get_mut(k)) {
                values.push(value);
            }
        }
        for (middle, mut values) in chunk.iter().zip(read) {
            values.sort_unstable();
            medians[middle.row] = median(middle.n, &values);
        }
    }
    Ok(medians)
}

#[derive(sqlx::FromRow)]
struct HourRow {
    hour: i64,
    #[sqlx(flatten)]
    counts: Counts,
}

/// The campaign's activity per bucket, oldest first, for the buckets that
/// overlap `[from, to)` (either end open when `None`); buckets without
/// activity are left out. `None` for another org's campaign, as for a
/// missing one.
pub async fn timeseries(
    db: &Database,
    org: OrgId,
    campaign: CampaignId,
    bucket: Bucket,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> StoreResult<Option<Vec<BucketCounts>>> {
    if campaign_row(db, org, campaign).await?.is_none() {
        return Ok(None);
    }
    let from = from.map_or(i64::MIN, |from| bucket.floor(from.timestamp()));
    let to = to.map_or(i64::MAX, |to| to.timestamp());
    let rows: Vec<HourRow> = on_reader!(db, |pool| {
        sqlx::query_as::<_, HourRow>(
            "SELECT hour, assigned, messaged, replies_sent, delivered, failed, replied,
                    replies_received, opted_out, blocked, timed_clicks
               FROM campaign_metrics_hours
              WHERE campaign_id = $1 AND hour >= $2 AND hour < $3
              ORDER BY hour",
        )
        .bind(Uuid::from(campaign))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?
    });
    let mut buckets: BTreeMap<i64, Counts> = BTreeMap::new();
    for row in rows {
        buckets
            .entry(bucket.floor(row.hour))
            .or_default()
            .add(&row.counts);
    }
    Ok(Some(
        buckets
            .into_iter()
            .filter_map(|(start, c)| {
                let start = DateTime::from_timestamp(start, 0)?;
                let shown = BucketCounts {
                    start,
                    messaged: c.messaged,
                    replies_sent: c.replies_sent,
                    sent: c.messaged + c.replies_sent,
                    delivered: c.delivered,
                    failed: c.failed,
                    replied: c.replied,
                    replies_received: c.replies_received,
                    opted_out: c.opted_out,
                    blocked: c.blocked,
                };
                let active = [
                    shown.sent,
                    shown.delivered,
                    shown.failed,
                    shown.replied,
                    shown.replies_received,
                    shown.opted_out,
                    shown.blocked,
                ]
                .iter()
                .any(|&n| n != 0);
                active.then_some(shown)
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_the_middle_value_or_the_mean_of_the_two_middle_values() {
        assert_eq!(middle_offset(0), None);
        assert_eq!(middle_offset(1), Some(0));
        assert_eq!(middle_offset(4), Some(1));
        assert_eq!(middle_offset(5), Some(2));
        assert_eq!(median(1, &[7]), Some(7));
        assert_eq!(median(5, &[3, 9]), Some(3));
        assert_eq!(median(4, &[3, 8]), Some(5));
        assert_eq!(median(2, &[-3, 0]), Some(-2));
        assert_eq!(median(3, &[]), None);
    }

    #[test]
    fn buckets_are_utc_hours_or_days() {
        assert_eq!("hour".parse::<Bucket>(), Ok(Bucket::Hour));
        assert_eq!("day".parse::<Bucket>(), Ok(Bucket::Day));
        assert!("week".parse::<Bucket>().is_err());
        assert_eq!(Bucket::Hour.floor(7_199), 3_600);
        assert_eq!(Bucket::Day.floor(86_400 * 3 + 5), 86_400 * 3);
        assert_eq!(Bucket::Hour.floor(-1), -3_600);
    }
}
