//! A contact's time zone and state: from its ZIP code when there is one, else
//! from its phone number's area code, else unknown. The tables are generated
//! from public data (see docs/adr/0010-time-zone-data.md), embedded in the
//! binary and parsed once on first use.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::phone::PhoneNumber;

const ZIP_DATA: &str = include_str!("../data/zip_zones.tsv");
const AREA_CODE_DATA: &str = include_str!("../data/area_code_zones.tsv");

/// A US state, district or territory by its two-letter USPS code ("TX").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
pub struct UsState([u8; 2]);

/// The 50 states, DC, the inhabited territories and the freely associated
/// states, all of which have ZIP codes.
const USPS_CODES: &str = "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN \
    MS MO MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY \
    AS GU MP PR VI FM MH PW";

impl UsState {
    /// Parses a USPS code, in either case.
    pub fn parse(code: &str) -> Option<UsState> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes: [u8; 2] = upper.as_bytes().try_into().ok()?;
        USPS_CODES
            .split_ascii_whitespace()
            .any(|known| known == upper)
            .then_some(UsState(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from a code in USPS_CODES, so always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for UsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UsState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UsState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UsState::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown US state code {text:?}")))
    }
}

/// Where a contact's time zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZoneSource {
    Zip,
    AreaCode,
    Unknown,
}

/// A contact's time zone and state, as far as we know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
// Absent fields are left out of the JSON: a list import stores one of these
// per contact, a million times.
pub struct ContactZone {
    /// The IANA zone, e.g. America/Chicago; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub zone: Option<Tz>,
    /// Set when the phone's prefix straddles two zones (e.g. part of Idaho
    /// is Mountain, part Pacific) and no ZIP settled it. No single zone is
    /// safe then, so quiet hours must hold in both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub other_zone: Option<Tz>,
    pub source: ZoneSource,
    /// The state the contact lives in: the ZIP's, else the area code's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UsState>,
    /// The state of the phone's area code. Florida's and Oklahoma's laws
    /// presume a resident from the area code alone, so quiet hours honor
    /// this state's rules as well as `state`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_code_state: Option<UsState>,
}

impl ContactZone {
    pub const UNKNOWN: ContactZone = ContactZone {
        zone: None,
        other_zone: None,
        source: ZoneSource::Unknown,
        state: None,
        area_code_state: None,
    };

    /// Looks a contact up by ZIP code first, then by phone number.
    pub fn resolve(zip: Option<&str>, phone: &PhoneNumber) -> ContactZone {
        let by_phone = area_code_zone(phone);
        let area_code_state = by_phone.as_ref().and_then(|entry| entry.state);
        if let Some(&(state, zone)) = zip.and_then(zip_zone) {
            return ContactZone {
                zone: Some(zone),
                other_zone: None,
                source: ZoneSource::Zip,
                state: Some(state),
                area_code_state,
            };
        }
        match by_phone {
            Some(entry) => ContactZone {
                zone: Some(entry.zone),
                other_zone: entry.other_zone,
                source: ZoneSource::AreaCode,
                state: entry.state,
                area_code_state,
            },
            None => ContactZone::UNKNOWN,
        }
    }
}

/// The state and zone of a ZIP code, if the tables know it. Accepts ZIP+4
/// ("12345-6789") and ZIPs that a spreadsheet shortened to four digits by
/// dropping the leading zero ("2134" for 02134).
pub fn zip_zone(zip: &str) -> Option<&'static (UsState, Tz)> {
    let zip5 = normalize_zip(zip)?;
    let key = std::str::from_utf8(&zip5).ok()?;
    let table = &ZIP_TABLE.entries;
    table.get(key).or_else(|| table.get(key.get(..3)?))
}

fn normalize_zip(raw: &str) -> Option<[u8; 5]> {
    let raw = raw.trim();
    let (head, tail) = match raw.split_once(['-', ' ']) {
        Some((head, tail)) => (head, Some(tail.trim())),
        None => (raw, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(head) || tail.is_some_and(|t| t.len() != 4 || !digits(t)) {
        return None;
    }
    let head = head.as_bytes();
    match (head.len(), tail) {
        (5, _) => head.try_into().ok(),
        (9, None) => head.get(..5)?.try_into().ok(),
        (4, _) => Some([b'0', head[0], head[1], head[2], head[3]]),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AreaCodeEntry {
    state: Option<UsState>,
    zone: Tz,
    other_zone: Option<Tz>,
}

/// Longest-prefix match on the ten NANP digits, as libphonenumber does: an
/// area code, or an area code plus the first exchange digits where the area
/// code spans zones.
fn area_code_zone(phone: &PhoneNumber) -> Option<AreaCodeEntry> {
    phone.area_code()?;
    let national = phone.as_str().get(2..)?;
    let table = &AREA_CODE_TABLE.entries;
    (3..=6)
        .rev()
        .find_map(|len| table.get(national.get(..len)?))
        .copied()
}

struct Table<T> {
    entries: HashMap<&'static str, T>,
    /// Data lines that did not parse; a test keeps this at zero.
    rejected: Vec<&'static str>,
}

fn parse_table<T>(
    data: &'static str,
    parse: impl Fn(&'static str, &'static str) -> Option<T>,
) -> Table<T> {
    let mut table = Table {
        entries: HashMap::new(),
        rejected: Vec::new(),
    };
    for line in data
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut fields = line.split('\t');
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(key), Some(state), Some(zones), None) => parse(state, zones).map(|v| (key, v)),
            _ => None,
        };
        match parsed {
            Some((key, value)) => {
                table.entries.insert(key, value);
            }
            None => table.rejected.push(line),
        }
    }
    table
}

static ZIP_TABLE: LazyLock<Table<(UsState, Tz)>> = LazyLock::new(|| {
    parse_table(ZIP_DATA, |state, zone| {
        Some((UsState::parse(state)?, Tz::from_str(zone).ok()?))
    })
});

static AREA_CODE_TABLE: LazyLock<Table<AreaCodeEntry>> = LazyLock::new(|| {
    parse_table(AREA_CODE_DATA, |state, zones| {
        let mut zones = zones.split(',').map(Tz::from_str);
        let zone = zones.next()?.ok()?;
        let other_zone = zones.next().transpose().ok()?;
        if zones.next().is_some() {
            return None;
        }
        let state = match state {
            "-" => None,
            code => Some(UsState::parse(code)?),
        };
        Some(AreaCodeEntry {
            state,
            zone,
            other_zone,
        })
    })
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::Region;
    use chrono_tz::America;

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw, Region::US).unwrap()
    }

    fn state(code: &str) -> Option<UsState> {
        UsState::parse(code)
    }

    #[test]
    fn every_line_of_the_embedded_tables_parses() {
        assert_eq!(ZIP_TABLE.rejected, Vec::<&str>::new());
        assert_eq!(AREA_CODE_TABLE.rejected, Vec::<&str>::new());
        assert!(ZIP_TABLE.entries.len() > 900);
        assert!(AREA_CODE_TABLE.entries.len() > 400);
    }

    #[test]
    fn zip_code_wins_over_area_code() {
        // A Manhattan cell phone whose owner lives in Los Angeles.
        let zone = ContactZone::resolve(Some("90012"), &phone("212 555 0123"));
        assert_eq!(zone.zone, Some(America::Los_Angeles));
        assert_eq!(zone.source, ZoneSource::Zip);
        assert_eq!(zone.state, state("CA"));
        assert_eq!(zone.area_code_state, state("NY"));
    }

    #[test]
    fn zip_prefix_majority_gives_the_zone() {
        assert_eq!(
            zip_zone("10001"),
            Some(&(state("NY").unwrap(), America::New_York))
        );
        assert_eq!(zip_zone("77429-1145").map(|z| z.1), Some(America::Chicago));
    }

    #[test]
    fn zip_that_differs_from_its_prefix_has_its_own_entry() {
        // 324xx (Panama City, Florida) keeps Central time, but Port St. Joe,
        // 32456, across the county line, keeps Eastern.
        assert_eq!(zip_zone("32401").map(|z| z.1), Some(America::Chicago));
        assert_eq!(zip_zone("32456").map(|z| z.1), Some(America::New_York));
        for (key, value) in ZIP_TABLE.entries.iter().filter(|(k, _)| k.len() == 5) {
            assert_ne!(
                ZIP_TABLE.entries.get(&key[..3]),
                Some(value),
                "{key} is redundant"
            );
        }
    }

    #[test]
    fn spreadsheet_mangled_and_plus4_zips_are_read() {
        assert_eq!(zip_zone("2134").map(|z| z.0), state("MA"));
        assert_eq!(zip_zone(" 02134 ").map(|z| z.0), state("MA"));
        assert_eq!(zip_zone("021341234").map(|z| z.0), state("MA"));
        assert_eq!(zip_zone("02134 1234").map(|z| z.0), state("MA"));
        for bad in ["", "abcde", "123", "02134-12", "1234567", "0213a"] {
            assert_eq!(zip_zone(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unknown_zip_falls_back_to_the_area_code() {
        let zone = ContactZone::resolve(Some("00000"), &phone("(305) 555-0123"));
        assert_eq!(zone.zone, Some(America::New_York));
        assert_eq!(zone.source, ZoneSource::AreaCode);
        assert_eq!(zone.state, state("FL"));
        assert_eq!(zone.area_code_state, state("FL"));
    }

    #[test]
    fn area_code_gives_zone_and_state_without_a_zip() {
        let zone = ContactZone::resolve(None, &phone("+1 512 555 0100"));
        assert_eq!(zone.zone, Some(America::Chicago));
        assert_eq!(zone.other_zone, None);
        assert_eq!(zone.state, state("TX"));
    }

    #[test]
    fn exchange_digits_refine_an_area_code_that_spans_zones() {
        // 850 (Florida panhandle) is mostly Central, with Eastern exchanges
        // around Tallahassee.
        let zones: Vec<_> = ["850 200 0000", "850 222 0000"]
            .iter()
            .map(|raw| ContactZone::resolve(None, &phone(raw)).zone)
            .collect();
        assert!(zones.contains(&Some(America::New_York)), "{zones:?}");
        assert!(zones.contains(&Some(America::Chicago)), "{zones:?}");
    }

    #[test]
    fn ambiguous_prefix_keeps_both_zones() {
        let entry = AREA_CODE_TABLE.entries["605"];
        assert!(entry.other_zone.is_some(), "{entry:?}");
        let zone = ContactZone::resolve(None, &phone("605 555 0100"));
        assert_eq!(zone.zone, Some(entry.zone));
        assert_eq!(zone.other_zone, entry.other_zone);
        assert_eq!(zone.state, state("SD"));
    }

    #[test]
    fn canadian_area_code_has_a_zone_but_no_us_state() {
        let zone = ContactZone::resolve(None, &phone("416 555 0100"));
        assert_eq!(zone.zone, Some(America::Toronto));
        assert_eq!(zone.state, None);
    }

    #[test]
    fn fictional_555_area_code_and_foreign_numbers_are_unknown() {
        assert_eq!(
            ContactZone::resolve(None, &phone("555 123 4567")),
            ContactZone::UNKNOWN
        );
        assert_eq!(
            ContactZone::resolve(None, &phone("+33 1 42 68 53 00")),
            ContactZone::UNKNOWN
        );
    }

    #[test]
    fn territories_are_states_for_our_purposes() {
        let zone = ContactZone::resolve(None, &phone("787 555 0100"));
        assert_eq!(zone.state, state("PR"));
        assert_eq!(zone.zone, Some(chrono_tz::America::Puerto_Rico));
    }

    #[test]
    fn us_state_parses_known_codes_only_and_serializes_as_its_code() {
        assert_eq!(state("tx").map(|s| s.to_string()), Some("TX".into()));
        assert_eq!(state("XX"), None);
        assert_eq!(state("TEX"), None);
        let zone = ContactZone::resolve(Some("73301"), &phone("512 555 0100"));
        let json = serde_json::to_value(zone).unwrap();
        assert_eq!(json["zone"], "America/Chicago");
        assert_eq!(json["source"], "zip");
        assert_eq!(json["state"], "TX");
        let back: ContactZone = serde_json::from_value(json).unwrap();
        assert_eq!(back, zone);
        assert!(serde_json::from_str::<UsState>("\"ZZ\"").is_err());
    }
}
