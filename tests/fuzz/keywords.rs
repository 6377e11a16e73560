//! The reply classifier: a whole-message STOP word opts out whatever its
//! case, spacing and punctuation; "stop" inside a sentence is only flagged
//! for the texter (keywords.rs: `a_keyword_inside_a_sentence_is_only_flagged`).

use proptest::prelude::*;
use textbank_domain::keywords::{Keyword, classify, normalize};

use crate::{TestCaseResult, generated, replay_text_corpus};

/// The opt-out keywords as voters write them (keywords.rs has the list).
const OPT_OUT: [&str; 10] = [
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
];

/// Words no keyword list holds, alone or side by side.
const ORDINARY: [&str; 16] = [
    "who", "is", "this", "I", "already", "voted", "the", "polls", "by", "later", "maybe",
    "tomorrow", "thanks", "bus", "at", "corner",
];

/// Words with "stop" inside that are not the word STOP.
const STOP_INSIDE: [&str; 5] = ["stopping", "nonstop", "stopwatch", "backstop", "stops"];

/// What any text must satisfy: no panic, and the class of a text is the
/// class of its normal form and does not depend on its letters' case.
fn check_any(text: &str) -> TestCaseResult {
    let class = classify(text);
    prop_assert_eq!(classify(&normalize(text)), class, "normalized {:?}", text);
    if text.is_ascii() {
        prop_assert_eq!(classify(&text.to_ascii_lowercase()), class);
        prop_assert_eq!(classify(&text.to_ascii_uppercase()), class);
    }
    Ok(())
}

/// Each letter in either case.
fn any_case(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.chars()
            .zip(upper)
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// Runs of spaces, tabs, line breaks, no-break spaces and punctuation.
fn filler(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{a0}', '.', '!', '?', '-', ',',
        ]),
        min..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A STOP word in any case, with any filler around and between its words.
fn dressed_opt_out() -> impl Strategy<Value = String> {
    (prop::sample::select(OPT_OUT.to_vec()), filler(0), filler(0)).prop_flat_map(
        |(keyword, before, after)| {
            let words: Vec<_> = keyword.split(' ').map(any_case).collect();
            (words, filler(1))
                .prop_map(move |(words, gap)| format!("{before}{}{after}", words.join(&gap)))
        },
    )
}

fn ordinary_words(min: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(ORDINARY.to_vec()).prop_flat_map(any_case),
        min..5,
    )
}

/// One or more ordinary words on each side of `middle`.
fn sentence_around(middle: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (ordinary_words(1), middle, ordinary_words(1), filler(1)).prop_map(
        |(before, middle, after, gap)| {
            let mut words = before;
            words.push(middle);
            words.extend(after);
            words.join(&gap)
        },
    )
}

#[test]
fn stop_words_opt_out_in_any_dress_and_stop_mid_sentence_is_only_flagged() {
    replay_text_corpus("keywords", check_any);
    let stop_inside = prop::sample::select(STOP_INSIDE.to_vec()).prop_flat_map(any_case);
    // Each text with the class it must have, if that is known.
    let cases = prop_oneof![
        any::<String>().prop_map(|text| (text, None)),
        dressed_opt_out().prop_map(|text| (text, Some(Some(Keyword::OptOut)))),
        sentence_around(any_case("stop"))
            .prop_map(|text| (text, Some(Some(Keyword::LikelyOptOut)))),
        sentence_around(stop_inside).prop_map(|text| (text, Some(None))),
    ];
    generated("keywords", 1, cases, |(text, class)| {
        if let Some(class) = class {
            prop_assert_eq!(classify(&text), class, "{:?}", text);
        }
        check_any(&text)
    });
}
