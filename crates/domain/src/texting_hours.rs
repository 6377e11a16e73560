//! Texting hours: whether a message may go to a contact now, judged in the
//! recipient's local time against the campaign's window and the stricter
//! hours some states set (see docs/adr/0011-texting-hours.md), and when the
//! window opens next if not.

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::{America, Tz};
use serde::{Deserialize, Serialize};

use crate::timezone::{ContactZone, UsState, ZoneSource};

/// A campaign's daily texting window in the recipient's local time,
/// `start` inclusive, `end` exclusive. It never spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "WindowFields")]
pub struct TextingWindow {
    start: NaiveTime,
    end: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextingWindowError {
    #[error("texting hours must start before they end (got {start} to {end})")]
    StartNotBeforeEnd { start: NaiveTime, end: NaiveTime },
}

impl TextingWindow {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, TextingWindowError> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(TextingWindowError::StartNotBeforeEnd { start, end })
        }
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }

    fn span(&self) -> Span {
        (
            self.start.num_seconds_from_midnight(),
            self.end.num_seconds_from_midnight(),
        )
    }
}

impl Default for TextingWindow {
    /// 09:00–20:00; state rules narrow it further where they must.
    fn default() -> Self {
        Self {
            start: NaiveTime::MIN + TimeDelta::hours(9),
            end: NaiveTime::MIN + TimeDelta::hours(20),
        }
    }
}

#[derive(Deserialize)]
struct WindowFields {
    start: NaiveTime,
    end: NaiveTime,
}

impl TryFrom<WindowFields> for TextingWindow {
    type Error = TextingWindowError;

    fn try_from(fields: WindowFields) -> Result<Self, Self::Error> {
        Self::new(fields.start, fields.end)
    }
}

/// Seconds from local midnight: [start, end).
type Span = (u32, u32);

/// A state's rule for one day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateHours {
    /// The state sets no hours of its own.
    Unrestricted,
    /// No texts at all that day.
    Closed,
    Between(NaiveTime, NaiveTime),
}

const fn hours(start: u32, end: u32) -> Option<Span> {
    Some((start * 3600, end * 3600))
}

/// One state's hours: Monday–Friday, Saturday, Sunday; `None` means no
/// texts at all that day.
struct StateRule {
    state: &'static str,
    weekdays: Option<Span>,
    saturday: Option<Span>,
    sunday: Option<Span>,
}

const fn rule(
    state: &'static str,
    weekdays: Option<Span>,
    saturday: Option<Span>,
    sunday: Option<Span>,
) -> StateRule {
    StateRule {
        state,
        weekdays,
        saturday,
        sunday,
    }
}

/// Sources and the reasoning for each row are in docs/adr/0011.
const STATE_RULES: [StateRule; 17] = [
    rule("AL", hours(8, 20), hours(8, 20), None),
    rule("CT", hours(9, 20), hours(9, 20), hours(9, 20)),
    rule("FL", hours(8, 20), hours(8, 20), hours(8, 20)),
    rule("KY", hours(10, 21), hours(10, 21), hours(10, 21)),
    rule("LA", hours(8, 20), hours(8, 20), None),
    rule("MA", hours(8, 20), hours(8, 20), hours(8, 20)),
    rule("MD", hours(8, 20), hours(8, 20), hours(8, 20)),
    rule("MI", hours(9, 21), hours(9, 21), hours(9, 21)),
    rule("MN", hours(9, 21), hours(9, 21), hours(9, 21)),
    rule("MS", hours(8, 20), hours(8, 20), None),
    rule("NJ", hours(8, 20), hours(8, 20), hours(8, 20)),
    rule("NM", hours(9, 21), hours(9, 21), hours(9, 21)),
    rule("NV", hours(9, 20), hours(9, 20), hours(9, 20)),
    rule("OK", hours(8, 20), hours(8, 20), hours(8, 20)),
    rule("RI", hours(9, 18), hours(10, 17), None),
    rule("TX", hours(9, 21), hours(9, 21), hours(12, 21)),
    rule("WA", hours(8, 20), hours(8, 20), hours(8, 20)),
];

/// `None` when the state sets no hours; `Some(None)` when it bans the day.
fn state_span(state: UsState, day: Weekday) -> Option<Option<Span>> {
    let rule = STATE_RULES.iter().find(|r| r.state == state.as_str())?;
    Some(match day {
        Weekday::Sat => rule.saturday,
        Weekday::Sun => rule.sunday,
        _ => rule.weekdays,
    })
}

/// The hours a state's law allows on a day of the week, for display.
pub fn state_hours(state: UsState, day: Weekday) -> StateHours {
    let time = |secs: u32| NaiveTime::from_num_seconds_from_midnight_opt(secs, 0);
    match state_span(state, day) {
        None => StateHours::Unrestricted,
        Some(None) => StateHours::Closed,
        Some(Some((start, end))) => match (time(start), time(end)) {
            (Some(start), Some(end)) => StateHours::Between(start, end),
            _ => StateHours::Unrestricted,
        },
    }
}

/// The campaign window narrowed by every state rule that applies.
fn window_on(day: Weekday, campaign: &TextingWindow, states: &[UsState]) -> Option<Span> {
    let mut span = campaign.span();
    for &state in states {
        match state_span(state, day) {
            None => {}
            Some(None) => return None,
            Some(Some((start, end))) => span = (span.0.max(start), span.1.min(end)),
        }
    }
    (span.0 < span.1).then_some(span)
}

/// Where we do not know the zone, a text may go only when it is inside the
/// window in every zone of the contiguous US, from Eastern to Pacific.
/// (Phoenix, without daylight time, always matches Denver or Los Angeles;
/// it is listed so the set reads as what it means.) Alaska and Hawaii are
/// left out: a contact there with no ZIP and a
/// non-local area code is rare, and including them would cut a 9–20 window
/// to a few hours a day for every unknown contact.
pub const UNKNOWN_ZONE_CANDIDATES: [Tz; 5] = [
    America::New_York,
    America::Chicago,
    America::Denver,
    America::Phoenix,
    America::Los_Angeles,
];

/// The outcome of a texting-hours check, as recorded with a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursCheck {
    pub allowed: bool,
    pub zone: Option<Tz>,
    pub source: ZoneSource,
    /// The recipient's wall-clock time, when their zone is known.
    pub local_time: Option<DateTime<FixedOffset>>,
    /// When closed: the next instant the window opens, if it opens in the
    /// coming week at all (a campaign window that misses a state's hours
    /// entirely never opens for that state's contacts).
    pub next_open: Option<DateTime<Utc>>,
}

/// When a text may next go to `contact` under `campaign`'s window: `now`
/// when it is inside its hours, else when they next open; `None` when they
/// do not open in the coming week.
pub fn opens_at(
    now: DateTime<Utc>,
    contact: &ContactZone,
    campaign: &TextingWindow,
) -> Option<DateTime<Utc>> {
    let check = check(now, contact, campaign);
    if check.allowed {
        Some(now)
    } else {
        check.next_open
    }
}

/// Whether a text may go to `contact` at `now` under `campaign`'s window.
pub fn check(now: DateTime<Utc>, contact: &ContactZone, campaign: &TextingWindow) -> HoursCheck {
    let zones: Vec<Tz> = match (contact.zone, contact.other_zone) {
        (Some(zone), other) => std::iter::once(zone).chain(other).collect(),
        (None, _) => UNKNOWN_ZONE_CANDIDATES.to_vec(),
    };
    let states: Vec<UsState> = contact
        .state
        .into_iter()
        .chain(contact.area_code_state)
        .collect();
    let states = states.as_slice();
    let open = |at: DateTime<Utc>| {
        zones.iter().all(|zone| {
            let local = at.with_timezone(zone);
            window_on(local.weekday(), campaign, states).is_some_and(|(start, end)| {
                (start..end).contains(&local.time().num_seconds_from_midnight())
            })
        })
    };
    let allowed = open(now);
    let next_open = if allowed {
        None
    } else {
        // The windows' intersection can only open when one zone's window
        // opens, so those instants over the next week are the candidates.
        let mut candidates: Vec<DateTime<Utc>> = zones
            .iter()
            .flat_map(|zone| {
                let today = now.with_timezone(zone).date_naive();
                (0..=7).filter_map(move |days| {
                    let date = today.checked_add_days(Days::new(days))?;
                    let (start, _) = window_on(date.weekday(), campaign, states)?;
                    local_instant(*zone, date, start)
                })
            })
            .filter(|candidate| *candidate > now)
            .collect();
        candidates.sort();
        candidates.into_iter().find(|candidate| open(*candidate))
    };
    HoursCheck {
        allowed,
        zone: contact.zone,
        source: contact.source,
        local_time: contact
            .zone
            .map(|zone| now.with_timezone(&zone).fixed_offset()),
        next_open,
    }
}

/// The instant a zone's clocks show `seconds` past midnight on `date`. When
/// a spring-forward gap skips that time, the window opens as the clocks jump
/// over it; when a fall-back repeats it, at its first occurrence.
fn local_instant(zone: Tz, date: NaiveDate, seconds: u32) -> Option<DateTime<Utc>> {
    let mut local = date.and_time(NaiveTime::from_num_seconds_from_midnight_opt(seconds, 0)?);
    // Gaps are at most an hour in the zones we use; three hours is ample.
    for _ in 0..=180 {
        if let Some(instant) = zone.from_local_datetime(&local).earliest() {
            return Some(instant.with_timezone(&Utc));
        }
        local += TimeDelta::minutes(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn window(start: u32, end: u32) -> TextingWindow {
        TextingWindow::new(time(start, 0), time(end, 0)).unwrap()
    }

    fn contact(zone: Tz, state: &str) -> ContactZone {
        ContactZone {
            zone: Some(zone),
            other_zone: None,
            source: ZoneSource::Zip,
            state: UsState::parse(state),
            area_code_state: None,
        }
    }

    #[test]
    fn default_window_is_nine_to_eight() {
        assert_eq!(TextingWindow::default(), window(9, 20));
    }

    #[test]
    fn window_must_start_before_it_ends() {
        let error = TextingWindow::new(time(20, 0), time(9, 0)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "texting hours must start before they end (got 20:00:00 to 09:00:00)"
        );
        assert!(TextingWindow::new(time(9, 0), time(9, 0)).is_err());
        let bad = serde_json::json!({"start": "10:00:00", "end": "09:00:00"});
        assert!(serde_json::from_value::<TextingWindow>(bad).is_err());
        let good = serde_json::json!({"start": "10:00", "end": "19:30:00"});
        assert_eq!(
            serde_json::from_value::<TextingWindow>(good).unwrap(),
            TextingWindow::new(time(10, 0), time(19, 30)).unwrap()
        );
    }

    #[test]
    fn open_inside_the_window_in_the_recipients_zone() {
        // 15:00 UTC on a Friday is 10:00 in New York.
        let result = check(
            utc("2026-11-27T15:00:00Z"),
            &contact(America::New_York, "NY"),
            &TextingWindow::default(),
        );
        assert!(result.allowed);
        assert_eq!(result.next_open, None);
        assert_eq!(result.zone, Some(America::New_York));
        assert_eq!(
            result.local_time.map(|t| t.to_rfc3339()),
            Some("2026-11-27T10:00:00-05:00".into())
        );
    }

    #[test]
    fn closed_before_the_window_says_when_it_opens() {
        let result = check(
            utc("2026-11-27T13:59:00Z"),
            &contact(America::New_York, "NY"),
            &TextingWindow::default(),
        );
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-27T14:00:00Z")));
    }

    #[test]
    fn closed_at_the_end_of_the_window_opens_next_morning() {
        // 20:00 in Los Angeles is the first closed minute.
        let result = check(
            utc("2026-11-28T04:00:00Z"),
            &contact(America::Los_Angeles, "CA"),
            &TextingWindow::default(),
        );
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-28T17:00:00Z")));
    }

    #[test]
    fn florida_cuts_a_late_campaign_window_at_eight_pm() {
        let late = window(8, 21);
        let miami = contact(America::New_York, "FL");
        // 08:30 local: the campaign and Florida both allow it.
        assert!(check(utc("2026-11-27T13:30:00Z"), &miami, &late).allowed);
        // 20:30 local: the campaign would, Florida does not.
        let result = check(utc("2026-11-28T01:30:00Z"), &miami, &late);
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-28T13:00:00Z")));
    }

    #[test]
    fn connecticut_opens_at_nine_even_when_the_campaign_opens_at_eight() {
        let early = window(8, 20);
        let hartford = contact(America::New_York, "CT");
        let result = check(utc("2026-11-27T13:30:00Z"), &hartford, &early);
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-27T14:00:00Z")));
    }

    #[test]
    fn texas_sunday_window_opens_at_noon() {
        let austin = contact(America::Chicago, "TX");
        let campaign = TextingWindow::default();
        // Sunday 2026-11-29, 10:00 CST.
        let sunday = check(utc("2026-11-29T16:00:00Z"), &austin, &campaign);
        assert!(!sunday.allowed);
        assert_eq!(sunday.next_open, Some(utc("2026-11-29T18:00:00Z")));
        // Saturday at the same hour is fine.
        assert!(check(utc("2026-11-28T16:00:00Z"), &austin, &campaign).allowed);
        assert_eq!(state_hours(UsState::parse("TX").unwrap(), Weekday::Sun), {
            StateHours::Between(time(12, 0), time(21, 0))
        });
    }

    #[test]
    fn texas_saturday_night_waits_for_sunday_noon() {
        let austin = contact(America::Chicago, "TX");
        // Saturday 21:30 CST with a late campaign window.
        let result = check(utc("2026-11-29T03:30:00Z"), &austin, &window(8, 22));
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-29T18:00:00Z")));
    }

    #[test]
    fn state_table_lists_each_state_once_with_sane_hours() {
        let mut seen = Vec::new();
        for rule in &STATE_RULES {
            assert!(UsState::parse(rule.state).is_some(), "{}", rule.state);
            assert!(!seen.contains(&rule.state), "{} twice", rule.state);
            seen.push(rule.state);
            for (start, end) in [rule.weekdays, rule.saturday, rule.sunday]
                .into_iter()
                .flatten()
            {
                assert!(start < end && end <= 86_400, "{}", rule.state);
            }
        }
    }

    #[test]
    fn states_without_rules_use_the_campaign_window_alone() {
        let ny = UsState::parse("NY").unwrap();
        assert_eq!(state_hours(ny, Weekday::Sun), StateHours::Unrestricted);
        let late = window(8, 21);
        let nyc = contact(America::New_York, "NY");
        // Sunday 20:30 in New York.
        assert!(check(utc("2026-11-30T01:30:00Z"), &nyc, &late).allowed);
    }

    #[test]
    fn rhode_island_is_closed_on_sunday_until_monday_morning() {
        let providence = contact(America::New_York, "RI");
        let result = check(
            utc("2026-11-29T17:00:00Z"),
            &providence,
            &TextingWindow::default(),
        );
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-30T14:00:00Z")));
        assert_eq!(
            state_hours(UsState::parse("RI").unwrap(), Weekday::Sun),
            StateHours::Closed
        );
    }

    #[test]
    fn area_code_state_rules_apply_alongside_the_zip_state() {
        // Lives in New York (no state hours), phone from Florida.
        let mut contact = contact(America::New_York, "NY");
        let late = window(8, 21);
        assert!(check(utc("2026-11-28T01:30:00Z"), &contact, &late).allowed);
        contact.area_code_state = UsState::parse("FL");
        assert!(!check(utc("2026-11-28T01:30:00Z"), &contact, &late).allowed);
    }

    #[test]
    fn unknown_zone_allows_only_hours_open_in_every_contiguous_zone() {
        let campaign = TextingWindow::default();
        // 16:30 UTC: 11:30 in New York but 08:30 in Los Angeles.
        let result = check(
            utc("2026-11-27T16:30:00Z"),
            &ContactZone::UNKNOWN,
            &campaign,
        );
        assert!(!result.allowed);
        assert_eq!(result.local_time, None);
        assert_eq!(result.source, ZoneSource::Unknown);
        assert_eq!(result.next_open, Some(utc("2026-11-27T17:00:00Z")));
        // 00:59 UTC is 19:59 in New York: still open everywhere.
        assert!(
            check(
                utc("2026-11-28T00:59:00Z"),
                &ContactZone::UNKNOWN,
                &campaign
            )
            .allowed
        );
        // 01:00 UTC is 20:00 in New York: closed until 09:00 Pacific.
        let result = check(
            utc("2026-11-28T01:00:00Z"),
            &ContactZone::UNKNOWN,
            &campaign,
        );
        assert_eq!(result.next_open, Some(utc("2026-11-28T17:00:00Z")));
    }

    #[test]
    fn unknown_zone_in_summer_waits_for_nine_on_the_west_coast() {
        // July: Denver is UTC-6, Phoenix and Los Angeles UTC-7, so 09:00
        // there is 16:00 UTC.
        let result = check(
            utc("2026-07-15T15:30:00Z"),
            &ContactZone::UNKNOWN,
            &TextingWindow::default(),
        );
        assert_eq!(result.next_open, Some(utc("2026-07-15T16:00:00Z")));
    }

    #[test]
    fn two_zone_contact_must_be_inside_the_window_in_both() {
        let mut idaho = contact(America::Boise, "ID");
        idaho.source = ZoneSource::AreaCode;
        idaho.other_zone = Some(America::Los_Angeles);
        // 16:30 UTC in November: 09:30 in Boise, 08:30 in Los Angeles.
        let result = check(
            utc("2026-11-27T16:30:00Z"),
            &idaho,
            &TextingWindow::default(),
        );
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-27T17:00:00Z")));
        assert_eq!(
            result.local_time.map(|t| t.to_rfc3339()),
            Some("2026-11-27T09:30:00-07:00".into())
        );
    }

    #[test]
    fn spring_forward_day_opens_at_nine_daylight_time() {
        // 2026-03-08: New York moves from UTC-5 to UTC-4 at 02:00 local.
        let nyc = contact(America::New_York, "NY");
        let result = check(utc("2026-03-08T06:00:00Z"), &nyc, &TextingWindow::default());
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-03-08T13:00:00Z")));
        assert!(check(utc("2026-03-08T13:00:00Z"), &nyc, &TextingWindow::default()).allowed);
        // The day before, 13:00 UTC was still 08:00 local.
        assert!(!check(utc("2026-03-07T13:00:00Z"), &nyc, &TextingWindow::default()).allowed);
    }

    #[test]
    fn fall_back_day_opens_at_nine_standard_time() {
        // 2026-11-01: New York returns to UTC-5 at 02:00 local.
        let nyc = contact(America::New_York, "NY");
        let result = check(utc("2026-11-01T13:30:00Z"), &nyc, &TextingWindow::default());
        assert!(!result.allowed);
        assert_eq!(result.next_open, Some(utc("2026-11-01T14:00:00Z")));
    }

    #[test]
    fn window_starting_in_the_skipped_hour_opens_when_clocks_jump() {
        let night = TextingWindow::new(time(2, 30), time(20, 0)).unwrap();
        let nyc = contact(America::New_York, "NY");
        let result = check(utc("2026-03-08T06:30:00Z"), &nyc, &night);
        assert_eq!(result.next_open, Some(utc("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn window_that_misses_the_state_hours_never_opens() {
        let evening = window(20, 22);
        let result = check(
            utc("2026-11-27T15:00:00Z"),
            &contact(America::New_York, "CT"),
            &evening,
        );
        assert!(!result.allowed);
        assert_eq!(result.next_open, None);
    }

    #[test]
    fn hours_check_serializes_zone_by_name_and_source_in_snake_case() {
        let mut contact = contact(America::Chicago, "TX");
        contact.source = ZoneSource::AreaCode;
        let result = check(
            utc("2026-11-29T16:00:00Z"),
            &contact,
            &TextingWindow::default(),
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["allowed"], false);
        assert_eq!(json["zone"], "America/Chicago");
        assert_eq!(json["source"], "area_code");
        assert_eq!(json["local_time"], "2026-11-29T10:00:00-06:00");
        assert_eq!(json["next_open"], "2026-11-29T18:00:00Z");
        assert_eq!(serde_json::from_value::<HoursCheck>(json).unwrap(), result);
    }
}
