//! What a voter's reply asks for: the carrier-standard keywords (STOP, START,
//! HELP and their synonyms) that textbank must act on by itself, and the
//! phrases that probably mean "stop" but are left to the texter to judge.

use serde::{Deserialize, Serialize};

/// Whole-message keywords that opt the number out of the organization (CTIA
/// and the carriers' list, plus the common variants, and "STOP2QUIT", which
/// political scripts ask voters to send).
const OPT_OUT: [&str; 12] = [
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "STOP2QUIT",
    "STOP 2 QUIT",
];
/// Whole-message keywords that opt a number back in, if it had opted out.
const OPT_IN: [&str; 3] = ["START", "UNSTOP", "YES"];
const HELP: [&str; 2] = ["HELP", "INFO"];

/// Phrases (matched as whole words anywhere in the reply) that likely mean
/// the voter wants no more texts, but are not keywords: a person decides.
const LIKELY_OPT_OUT: [&str; 22] = [
    "STOP",
    "UNSUBSCRIBE",
    "REMOVE ME",
    "TAKE ME OFF",
    "WRONG NUMBER",
    "WRONG PERSON",
    "STOP TEXTING",
    "STOP MESSAGING",
    "DONT TEXT",
    "DO NOT TEXT",
    "DONT CONTACT",
    "DO NOT CONTACT",
    "NO MORE TEXTS",
    "NO MORE MESSAGES",
    "LEAVE ME ALONE",
    "LOSE MY NUMBER",
    "OPT ME OUT",
    "ALTO",
    "NO MAS",
    "NO ME ESCRIBAN",
    "BAJA",
    "DEJEN DE",
];

/// The meaning of a reply as far as automatic handling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// The whole message is an opt-out keyword: stop at once, confirm once.
    OptOut,
    /// The whole message is an opt-in keyword (acted on only after an
    /// opt-out; a plain "yes" otherwise is just an answer).
    OptIn,
    /// HELP or INFO: answer with the organization's help text.
    Help,
    /// Probably means stop; flagged for the texter, who decides.
    LikelyOptOut,
}

impl Keyword {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OptOut => "opt_out",
            Self::OptIn => "opt_in",
            Self::Help => "help",
            Self::LikelyOptOut => "likely_opt_out",
        }
    }
}

/// Upper-cases, folds Spanish accents, turns punctuation into spaces (so
/// "Stop." and "stop!!" match, and "don't" becomes "DONT") and collapses
/// runs of spaces.
pub fn normalize(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for ch in text.chars() {
        let ch = match ch {
            'á' | 'Á' => 'A',
            'é' | 'É' => 'E',
            'í' | 'Í' => 'I',
            'ó' | 'Ó' => 'O',
            'ú' | 'Ú' | 'ü' | 'Ü' => 'U',
            'ñ' | 'Ñ' => 'N',
            // Apostrophes join words ("don't" → "DONT").
            '\'' | '’' | '`' => continue,
            ch if ch.is_alphanumeric() => ch,
            _ => ' ',
        };
        folded.extend(ch.to_uppercase());
    }
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classifies a reply; `None` for an ordinary message.
pub fn classify(text: &str) -> Option<Keyword> {
    let normalized = normalize(text);
    let whole = normalized.as_str();
    if OPT_OUT.contains(&whole) {
        return Some(Keyword::OptOut);
    }
    if OPT_IN.contains(&whole) {
        return Some(Keyword::OptIn);
    }
    if HELP.contains(&whole) {
        return Some(Keyword::Help);
    }
    let padded = format!(" {whole} ");
    LIKELY_OPT_OUT
        .iter()
        .any(|phrase| padded.contains(&format!(" {phrase} ")))
        .then_some(Keyword::LikelyOptOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_keywords_match_after_trimming_case_and_punctuation_folding() {
        for text in [
            "STOP",
            "stop",
            " Stop. ",
            "STOP!!",
            "stop all",
            "Stop-All",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "end",
            "QUIT",
            "revoke",
            "optout",
            "Opt out",
            "opt-out",
        ] {
            assert_eq!(classify(text), Some(Keyword::OptOut), "{text:?}");
        }
    }

    #[test]
    fn stop2quit_in_its_spellings_opts_out_like_stop() {
        for text in [
            "STOP2QUIT",
            "stop2quit",
            "Stop2Quit!",
            "STOP 2 QUIT",
            "stop 2 quit",
            " Stop-2-Quit. ",
            "STOP  2  QUIT",
        ] {
            assert_eq!(classify(text), Some(Keyword::OptOut), "{text:?}");
        }
        // Inside a sentence it is only flagged, as STOP is.
        assert_eq!(
            classify("please stop 2 quit texting me"),
            Some(Keyword::LikelyOptOut)
        );
        // Other numbers are not the keyword.
        assert_eq!(classify("STOP2"), None);
        assert_eq!(classify("STOP 3 QUIT"), Some(Keyword::LikelyOptOut));
    }

    #[test]
    fn the_review_phrases_are_unchanged() {
        // Twenty-two phrases, STOP2QUIT not among them (it is a keyword).
        assert_eq!(LIKELY_OPT_OUT.len(), 22);
        assert!(!LIKELY_OPT_OUT.iter().any(|phrase| phrase.contains('2')));
        for text in ["remove me", "Wrong number", "take me off your list"] {
            assert_eq!(classify(text), Some(Keyword::LikelyOptOut), "{text:?}");
        }
    }

    #[test]
    fn start_and_help_keywords_are_recognised() {
        for text in ["START", "unstop", "Yes", "yes!"] {
            assert_eq!(classify(text), Some(Keyword::OptIn), "{text:?}");
        }
        for text in ["HELP", "help?", "Info"] {
            assert_eq!(classify(text), Some(Keyword::Help), "{text:?}");
        }
    }

    #[test]
    fn a_keyword_inside_a_sentence_is_only_flagged() {
        for text in [
            "Please stop texting me",
            "remove me from your list",
            "Wrong number",
            "no more texts please",
            "don't text me again",
            "ALTO",
            "No más mensajes",
            "stop it",
            "Can I unsubscribe?",
        ] {
            assert_eq!(classify(text), Some(Keyword::LikelyOptOut), "{text:?}");
        }
    }

    #[test]
    fn ordinary_replies_are_not_keywords() {
        for text in [
            "Who is this?",
            "I already voted",
            "Stopping by the polls later",
            "The end of the line is long",
            "Yes I will vote",
            "Para mi familia",
            "",
            "🙂",
        ] {
            assert_eq!(classify(text), None, "{text:?}");
        }
    }
}
