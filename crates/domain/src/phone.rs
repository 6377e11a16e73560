//! Phone numbers: `PhoneNumber` holds only a number in E.164 form, built by
//! parsing the messy text people put in contact lists.
//!
//! What counts as a number. For the North American Numbering Plan (+1) we
//! accept any *possible* number: ten digits whose area code and exchange
//! start with 2-9, the area code not an N11 service code. We do not ask
//! libphonenumber whether a +1 number is *valid*: its validity data rejects
//! unassigned area codes and the 555 lines used in fiction, and a carrier
//! lookup is the real judge of whether a number is in service. On top of
//! that we accept area code 555 with any seven digits ("(555) 123-4567",
//! "+1 555 010 0123"): NANPA has never assigned 555 as an area code, so such
//! a number cannot reach a real person, and it is what the demo, the
//! benchmarks and the tests use. Other countries must pass libphonenumber's
//! full validity check, as we have no cheaper rule of our own for them.
//!
//! Parsing itself is libphonenumber's (the `phonenumber` crate); we only pick
//! what it is told. See `parse` for the one known bug we steer around.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a phone number was rejected. The messages are meant for the person
/// who uploaded the list, so they say what was wrong with their text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is missing")]
    Missing,
    #[error("{0}")]
    Invalid(String),
}

/// The country assumed for numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    pub const US: Region = Region(Id::US);
    pub const CA: Region = Region(Id::CA);

    fn country_code(&self) -> u16 {
        phonenumber::metadata::DATABASE
            .by_id(self.0.as_ref())
            .map_or(0, |meta| meta.country_code())
    }

    /// Whether digits written after a "+" start with this region's country
    /// code. Country codes are prefix-free, so this is exact.
    fn owns_prefix(&self, after_plus: &str) -> bool {
        let code = u32::from(self.country_code());
        let mut seen = 0u32;
        for digit in after_plus.chars().filter_map(|c| c.to_digit(10)) {
            seen = seen * 10 + digit;
            if seen >= code {
                break;
            }
        }
        seen == code
    }

    /// The ISO 3166-1 alpha-2 code, e.g. "US".
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .to_ascii_uppercase()
            .parse::<Id>()
            .map(Region)
            .map_err(|_| PhoneError::Invalid(format!("unknown region code {s:?}")))
    }
}

/// A phone number in E.164 form ("+15551234567"). It can only be built by
/// parsing, so holding one means the number was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number as people write it: "(555) 123-4567", "555.123.4567",
    /// "+1 555 123 4567", "1-555-123-4567". Numbers without a country code
    /// are read in `default_region`.
    pub fn parse(raw: &str, default_region: Region) -> Result<PhoneNumber, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Missing);
        }
        // phonenumber 0.3 strips the *default* region's national prefix from
        // a number of another country ("+33 1 42 68 53 00" read with region
        // US loses its "1"; upstream issue #30), so such a number is parsed
        // without a default region. Not for a number of the region's own
        // country code: finding the region from the digits alone tries every
        // NANP region's patterns and costs ~10x more. "011", the NANP's
        // international prefix, gets the same treatment.
        let international = match trimmed.strip_prefix("011") {
            Some(rest) if default_region.country_code() == 1 => Some(format!("+{rest}")),
            _ => None,
        };
        let text = international.as_deref().unwrap_or(trimmed);
        let region = match text.strip_prefix('+') {
            Some(rest) if !default_region.owns_prefix(rest) => None,
            _ => Some(default_region.0),
        };
        let parsed = phonenumber::parse(region, text)
            .map_err(|error| PhoneError::Invalid(describe(trimmed, &error)))?;
        if let Some(extension) = parsed.extension() {
            return Err(PhoneError::Invalid(format!(
                "{trimmed:?} has an extension ({}); a text message cannot reach an extension",
                &**extension
            )));
        }
        let code = parsed.code().value();
        let national = parsed.national();
        let digits = format!(
            "{}{}",
            "0".repeat(usize::from(national.zeros())),
            national.value()
        );
        let accepted = if code == 1 {
            nanp_possible(&digits) || fictional_555(&digits)
        } else {
            parsed.is_valid()
        };
        if !accepted {
            return Err(PhoneError::Invalid(if code == 1 {
                format!(
                    "{trimmed:?} is not a North American number: it needs 10 digits, \
                     and its area code and exchange cannot start with 0 or 1"
                )
            } else {
                format!("{trimmed:?} is not a valid phone number")
            }));
        }
        Ok(PhoneNumber(format!("+{code}{digits}")))
    }

    /// Accepts only a number already in E.164 form ("+" and digits), as
    /// stored in events and stream ids, and checks it like `parse` does.
    pub fn from_e164(e164: &str) -> Result<PhoneNumber, PhoneError> {
        if e164.is_empty() {
            return Err(PhoneError::Missing);
        }
        let digits = e164.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::Invalid(format!(
                "{e164:?} is not in E.164 form (\"+\" followed by digits)"
            )));
        }
        // Our own rule decides +1 numbers, so their canonical form needs no
        // parser; events and projections deserialize a great many of them.
        if let Some(national) = e164.strip_prefix("+1")
            && (nanp_possible(national) || fictional_555(national))
        {
            return Ok(PhoneNumber(e164.to_owned()));
        }
        let number = Self::parse(e164, Region::US)?;
        if number.0 != e164 {
            return Err(PhoneError::Invalid(format!(
                "{e164:?} is not in E.164 form (expected {:?})",
                number.0
            )));
        }
        Ok(number)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-digit area code of a North American (+1) number.
    pub fn area_code(&self) -> Option<u16> {
        let national = self.0.strip_prefix("+1")?;
        if national.len() != 10 {
            return None;
        }
        national.get(..3)?.parse().ok()
    }
}

/// Area code 555 was never assigned to a place; see the module comment.
fn fictional_555(national: &str) -> bool {
    national.len() == 10 && national.starts_with("555")
}

/// Ten digits, NPA and NXX starting with 2-9, NPA not an N11 service code.
fn nanp_possible(national: &str) -> bool {
    let b = national.as_bytes();
    b.len() == 10
        && b.iter().all(u8::is_ascii_digit)
        && b[0] >= b'2'
        && !(b[1] == b'1' && b[2] == b'1')
        && b[3] >= b'2'
}

fn describe(raw: &str, error: &phonenumber::ParseError) -> String {
    use phonenumber::ParseError as E;
    match error {
        E::NoNumber => format!("{raw:?} does not look like a phone number"),
        E::InvalidCountryCode => format!("{raw:?} has an unknown country code"),
        E::TooShortAfterIdd | E::TooShortNsn => format!("{raw:?} has too few digits"),
        E::TooLong => format!("{raw:?} has too many digits"),
        E::MalformedInteger(_) => format!("{raw:?} does not look like a phone number"),
    }
}

impl crate::stream::sealed::Sealed for PhoneNumber {}
impl crate::stream::StreamPart for PhoneNumber {}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PhoneNumber::from_e164(&text).map_err(serde::de::Error::custom)
    }
}

/// In the API document: the E.164 string it serializes to.
impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A phone number in E.164 form"))
            .examples([serde_json::json!("+15551234567")])
            .into()
    }
}

impl utoipa::ToSchema for PhoneNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(raw: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(raw, Region::US)
    }

    #[test]
    fn common_us_formats_all_parse_to_the_same_e164_number() {
        for raw in [
            "(555) 123-4567",
            "555.123.4567",
            "+1 555 123 4567",
            "1-555-123-4567",
            "5551234567",
            "  555 123 4567\t",
            "+1 (555) 123-4567",
            "+1 555-123-4567",
            "tel:+1-555-123-4567",
        ] {
            assert_eq!(
                us(raw).map(|n| n.to_string()),
                Ok("+15551234567".into()),
                "{raw}"
            );
        }
    }

    #[test]
    fn fictional_555_numbers_are_accepted() {
        let line = us("+1 202 555 0123").unwrap();
        assert_eq!(line.as_str(), "+12025550123");
        assert_eq!(line.area_code(), Some(202));
        // Area code 555 was never assigned, so any seven digits are accepted.
        assert_eq!(us("+1 555 010 0123").unwrap().as_str(), "+15550100123");
        assert_eq!(us("(555) 123-4567").unwrap().area_code(), Some(555));
    }

    #[test]
    fn real_numbers_are_accepted() {
        assert_eq!(us("(212) 736-5000").unwrap().as_str(), "+12127365000");
    }

    #[test]
    fn exchange_starting_with_0_or_1_is_rejected_outside_area_code_555() {
        for raw in ["+1 202 010 0123", "202 155 0123"] {
            let Err(PhoneError::Invalid(message)) = us(raw) else {
                panic!("{raw} was accepted");
            };
            assert!(message.contains("exchange"), "{message}");
        }
    }

    #[test]
    fn area_code_starting_with_0_or_1_or_n11_is_rejected() {
        for raw in ["055 123 4567", "+1 155 123 4567", "411 555 1234"] {
            assert!(matches!(us(raw), Err(PhoneError::Invalid(_))), "{raw}");
        }
    }

    #[test]
    fn empty_or_blank_input_is_missing() {
        assert_eq!(us(""), Err(PhoneError::Missing));
        assert_eq!(us("  \t "), Err(PhoneError::Missing));
    }

    #[test]
    fn garbage_is_rejected_with_the_input_in_the_message() {
        let Err(PhoneError::Invalid(message)) = us("call me maybe") else {
            panic!("garbage accepted");
        };
        assert!(message.contains("call me maybe"), "{message}");
    }

    #[test]
    fn number_with_extension_is_rejected() {
        for raw in ["555-123-4567 ext. 89", "(555) 123-4567 x89"] {
            let Err(PhoneError::Invalid(message)) = us(raw) else {
                panic!("{raw} was accepted");
            };
            assert!(message.contains("extension"), "{message}");
        }
    }

    #[test]
    fn too_few_or_too_many_digits_are_rejected() {
        for raw in ["555-1234", "12", "555 123 4567 8901 2345"] {
            assert!(matches!(us(raw), Err(PhoneError::Invalid(_))), "{raw}");
        }
    }

    #[test]
    fn international_numbers_must_be_valid_for_their_country() {
        let paris = us("+33 1 42 68 53 00").unwrap();
        assert_eq!(paris.as_str(), "+33142685300");
        assert_eq!(paris.area_code(), None);
        assert!(matches!(us("+44 12 34"), Err(PhoneError::Invalid(_))));
    }

    #[test]
    fn international_prefix_011_keeps_every_digit() {
        assert_eq!(us("011 33 1 42 68 53 00").unwrap().as_str(), "+33142685300");
    }

    #[test]
    fn default_region_is_used_for_numbers_without_country_code() {
        let region: Region = "ca".parse().unwrap();
        assert_eq!(region, Region::CA);
        assert_eq!(
            PhoneNumber::parse("613 555 0123", region).unwrap().as_str(),
            "+16135550123"
        );
        assert!("XX".parse::<Region>().is_err());
    }

    #[test]
    fn serde_uses_the_e164_string_and_deserialize_validates() {
        let number = us("555.123.4567").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"+15551234567\"");
        let back: PhoneNumber = serde_json::from_str("\"+15551234567\"").unwrap();
        assert_eq!(back, number);
        assert_eq!(
            PhoneNumber::from_e164("+33142685300").map(|n| n.to_string()),
            Ok("+33142685300".into())
        );
        for bad in [
            "\"(555) 123-4567\"",
            "\"+1555\"",
            "\"\"",
            "\"+12020100123\"",
            "\"+1212555012\"",
            "\"+3301 42 68 53 00\"",
            "\"+330142685300\"",
        ] {
            assert!(serde_json::from_str::<PhoneNumber>(bad).is_err(), "{bad}");
        }
    }

    /// Messy numbers in the shapes contact lists use, generated without a
    /// random-number crate so the run is the same every time.
    fn messy_numbers(count: usize) -> Vec<(String, String)> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        (0..count)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let npa = 200 + state % 800;
                let nxx = 200 + (state >> 12) % 800;
                let line = (state >> 24) % 10_000;
                let text = match i % 6 {
                    0 => format!("({npa}) {nxx}-{line:04}"),
                    1 => format!("{npa}.{nxx}.{line:04}"),
                    2 => format!("+1 {npa} {nxx} {line:04}"),
                    3 => format!("1-{npa}-{nxx}-{line:04}"),
                    4 => format!("{npa}{nxx}{line:04}"),
                    _ => format!(" +1{npa}{nxx}{line:04} "),
                };
                (text, format!("+1{npa}{nxx}{line:04}"))
            })
            .collect()
    }

    #[test]
    fn every_common_way_of_writing_a_nanp_number_normalizes_to_the_same_e164() {
        for (text, e164) in messy_numbers(3_000) {
            let area = &e164[2..5];
            let service_code = area.ends_with("11");
            match PhoneNumber::parse(&text, Region::US) {
                Ok(phone) => {
                    assert!(!service_code, "{text:?} has an N11 area code");
                    assert_eq!(phone.as_str(), e164, "{text:?}");
                }
                Err(err) => assert!(service_code, "{text:?} was refused: {err}"),
            }
        }
    }
}
