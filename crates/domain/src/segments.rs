//! How an SMS body travels: its encoding (GSM-7 or UCS-2) and how many
//! segments the carrier bills for it. Campaign staff see this before they
//! send, because one emoji can double or triple the cost of a message.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The encoding, the billed segment count and the size in the encoding's
/// units (septets for GSM-7, UTF-16 code units for UCS-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub encoding: Encoding,
    pub segments: u32,
    pub units: u32,
}

/// GSM 03.38 basic character set; each costs one septet. The escape code
/// (0x1B) is left out: it cannot be written on its own.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 extension table; each costs two septets (escape + char).
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

const GSM7_SINGLE: u32 = 160;
/// A concatenated part loses 7 septets to the user data header.
const GSM7_PART: u32 = 153;
const UCS2_SINGLE: u32 = 70;
/// A concatenated part loses 3 UTF-16 units to the user data header.
const UCS2_PART: u32 = 67;

/// Septets a character costs in GSM-7, or None if GSM-7 cannot carry it.
fn gsm7_cost(c: char) -> Option<u32> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

pub fn analyze(text: &str) -> SegmentInfo {
    let gsm: Option<Vec<u32>> = text.chars().map(gsm7_cost).collect();
    match gsm {
        Some(costs) => pack(Encoding::Gsm7, &costs, GSM7_SINGLE, GSM7_PART),
        None => {
            let costs: Vec<u32> = text.chars().map(|c| c.len_utf16() as u32).collect();
            pack(Encoding::Ucs2, &costs, UCS2_SINGLE, UCS2_PART)
        }
    }
}

/// Counts parts the way handsets split: a character whose units do not fit
/// in what is left of a part (a GSM-7 escape pair, a UTF-16 surrogate pair)
/// moves whole to the next part, so a part may end a unit short.
fn pack(encoding: Encoding, costs: &[u32], single: u32, part: u32) -> SegmentInfo {
    let units: u32 = costs.iter().sum();
    let segments = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        let (mut parts, mut used) = (1, 0);
        for &cost in costs {
            if used + cost > part {
                parts += 1;
                used = 0;
            }
            used += cost;
        }
        parts
    };
    SegmentInfo {
        encoding,
        segments,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(encoding: Encoding, segments: u32, units: u32) -> SegmentInfo {
        SegmentInfo {
            encoding,
            segments,
            units,
        }
    }

    #[test]
    fn plain_text_is_gsm7_in_one_segment() {
        assert_eq!(analyze("Hi Ana, it's Sam!"), info(Encoding::Gsm7, 1, 17));
    }

    #[test]
    fn empty_text_has_no_segments() {
        assert_eq!(analyze(""), info(Encoding::Gsm7, 0, 0));
    }

    #[test]
    fn gsm7_fits_160_septets_in_one_segment_and_161_needs_two() {
        assert_eq!(analyze(&"a".repeat(160)), info(Encoding::Gsm7, 1, 160));
        assert_eq!(analyze(&"a".repeat(161)), info(Encoding::Gsm7, 2, 161));
    }

    #[test]
    fn concatenated_gsm7_parts_hold_153_septets() {
        assert_eq!(analyze(&"a".repeat(306)), info(Encoding::Gsm7, 2, 306));
        assert_eq!(analyze(&"a".repeat(307)), info(Encoding::Gsm7, 3, 307));
    }

    #[test]
    fn euro_and_caret_are_extension_chars_costing_two_septets() {
        assert_eq!(analyze("€"), info(Encoding::Gsm7, 1, 2));
        assert_eq!(analyze("^"), info(Encoding::Gsm7, 1, 2));
        // 80 extension chars are 160 septets: still one segment.
        assert_eq!(analyze(&"€".repeat(80)), info(Encoding::Gsm7, 1, 160));
        assert_eq!(
            analyze(&format!("{}a", "€".repeat(80))),
            info(Encoding::Gsm7, 2, 161)
        );
    }

    #[test]
    fn extension_char_is_not_split_across_parts() {
        // 152 septets, then "€" would straddle the part boundary at 153.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(analyze(&text), info(Encoding::Gsm7, 2, 164));
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        // Part 1: 152 (the € moves on); part 2: € + 151; part 3: 1.
        assert_eq!(analyze(&text), info(Encoding::Gsm7, 3, 306));
    }

    #[test]
    fn gsm7_accented_letters_stay_gsm7_but_others_switch_to_ucs2() {
        assert_eq!(analyze("é à ñ ü Ç").encoding, Encoding::Gsm7);
        assert_eq!(analyze("ç").encoding, Encoding::Ucs2);
        assert_eq!(analyze("“smart quotes”").encoding, Encoding::Ucs2);
    }

    #[test]
    fn ucs2_fits_70_units_in_one_segment_and_71_needs_two() {
        assert_eq!(analyze(&"ж".repeat(70)), info(Encoding::Ucs2, 1, 70));
        assert_eq!(analyze(&"ж".repeat(71)), info(Encoding::Ucs2, 2, 71));
        assert_eq!(analyze(&"ж".repeat(134)), info(Encoding::Ucs2, 2, 134));
        assert_eq!(analyze(&"ж".repeat(135)), info(Encoding::Ucs2, 3, 135));
    }

    #[test]
    fn emoji_counts_as_two_utf16_units_and_forces_ucs2() {
        assert_eq!(analyze("Vote! 🗳"), info(Encoding::Ucs2, 1, 8));
        assert_eq!(analyze(&"😀".repeat(35)), info(Encoding::Ucs2, 1, 70));
        assert_eq!(analyze(&"😀".repeat(36)), info(Encoding::Ucs2, 2, 72));
    }

    #[test]
    fn surrogate_pair_is_not_split_across_parts() {
        // 66 units, then an emoji that would straddle the 67-unit boundary.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        assert_eq!(analyze(&text), info(Encoding::Ucs2, 2, 78));
        // 67 emoji = 134 units: 33 per part (66 units), so 3 parts, not 2.
        assert_eq!(analyze(&"😀".repeat(67)), info(Encoding::Ucs2, 3, 134));
    }

    #[test]
    fn segment_info_serializes_in_snake_case() {
        let json = serde_json::to_value(analyze("€")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"encoding": "gsm7", "segments": 1, "units": 2})
        );
        let json = serde_json::to_value(analyze("😀")).unwrap();
        assert_eq!(json["encoding"], "ucs2");
    }
}
