//! Click tokens: a signed token verifies back to itself and any change to
//! it — a character replaced, added or dropped, another token's payload or
//! tag, another key — is refused; a token for any message within the
//! message limits fits the token's length limit; nothing panics.

use chrono::{DateTime, Duration};
use proptest::prelude::*;
use ring::hmac;
use textbank_app::ServerKey;
use textbank_app::click_token::{ClickToken, MAX_TOKEN_LEN, TokenError};
use textbank_domain::click::{MessageLimits, check_message_length};
use textbank_domain::message::body_hash;
use textbank_domain::phone::{PhoneNumber, Region};
use textbank_domain::segments::analyze;
use textbank_domain::timezone::ContactZone;
use textbank_domain::{CampaignId, ListId, MemberId, OrgId};
use uuid::Uuid;

use crate::{TestCaseResult, generated, replay_corpus};

/// The key the corpus's genuine tokens are signed with.
const CORPUS_KEY: &str = "6b1f0c3a9e2d4f5b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f50";

fn key(bytes: [u8; 32]) -> hmac::Key {
    ServerKey::from_hex(&hex::encode(bytes))
        .unwrap()
        .click_token_key()
}

const PHONES: [&str; 4] = [
    "5552010001",
    "(312) 555-0100",
    "+1 415 555 0199",
    "212.555.0123",
];
const ZIPS: [&str; 3] = ["10001", "94103", "99999"];

/// Bodies that cost the most bytes per character in the token: JSON escapes
/// (control characters, quotes, line breaks) and multi-byte characters.
fn body() -> impl Strategy<Value = String> {
    let costly = prop::sample::select(vec![
        '\u{1}', '\u{1b}', '"', '\\', '\n', '\u{c}', 'é', 'Δ', '€', '中', '😀', 'a', ' ',
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(costly, 0..1_700).prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn token() -> impl Strategy<Value = ClickToken> {
    (
        any::<[u128; 5]>(),
        prop::sample::select(PHONES.to_vec()),
        any::<bool>(),
        body(),
        prop::option::of(prop::sample::select(ZIPS.to_vec())),
        (
            any::<u32>(),
            0i64..4_000_000_000,
            0u32..1_000_000_000,
            1i64..10_000,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(ids, phone, listed, body, zip, (script_version, secs, nanos, ttl), honest)| {
                let phone = PhoneNumber::parse(phone, Region::US).unwrap();
                let presented_at = DateTime::from_timestamp(secs, nanos).unwrap();
                ClickToken {
                    token_id: Uuid::from_u128(ids[0]),
                    org_id: OrgId::from_uuid(Uuid::from_u128(ids[1])),
                    campaign_id: CampaignId::from_uuid(Uuid::from_u128(ids[2])),
                    texter_id: MemberId::from_uuid(Uuid::from_u128(ids[3])),
                    list_id: listed.then(|| ListId::from_uuid(Uuid::from_u128(ids[4]))),
                    zone: zip.map_or(ContactZone::UNKNOWN, |zip| {
                        ContactZone::resolve(Some(zip), &phone)
                    }),
                    phone,
                    body_sha256: if honest {
                        body_hash(&body)
                    } else {
                        body_hash(&format!("{body}!"))
                    },
                    body,
                    script_version,
                    presented_at,
                    expires_at: presented_at + Duration::seconds(ttl),
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Change {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    /// The other token's payload with this one's tag.
    OtherPayload,
    /// This token's payload with the other one's tag.
    OtherTag,
    OtherKey([u8; 32]),
}

fn change() -> impl Strategy<Value = Change> {
    let c = prop_oneof![
        prop::sample::select(vec!['A', 'a', '0', '-', '_', '.', '=', '+', '/', ' ']),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(at, c)| Change::Replace(at, c)),
        (any::<usize>(), c).prop_map(|(at, c)| Change::Insert(at, c)),
        any::<usize>().prop_map(Change::Remove),
        any::<usize>().prop_map(Change::Truncate),
        Just(Change::OtherPayload),
        Just(Change::OtherTag),
        any::<[u8; 32]>().prop_map(Change::OtherKey),
    ]
}

/// `signed` changed; `None` when the change leaves it as it was.
fn changed(signed: &str, other: &str, change: &Change) -> Option<String> {
    let mut chars: Vec<char> = signed.chars().collect();
    let at = |i: usize, len: usize| i % len.max(1);
    let halves = |token: &str| {
        let (payload, tag) = token.split_once('.').unwrap();
        (payload.to_owned(), tag.to_owned())
    };
    let changed = match change {
        Change::Replace(i, c) => {
            let i = at(*i, chars.len());
            chars[i] = *c;
            chars.into_iter().collect()
        }
        Change::Insert(i, c) => {
            chars.insert(at(*i, chars.len() + 1), *c);
            chars.into_iter().collect()
        }
        Change::Remove(i) => {
            chars.remove(at(*i, chars.len()));
            chars.into_iter().collect()
        }
        Change::Truncate(i) => chars[..at(*i, chars.len())].iter().collect(),
        Change::OtherPayload => format!("{}.{}", halves(other).0, halves(signed).1),
        Change::OtherTag => format!("{}.{}", halves(signed).0, halves(other).1),
        Change::OtherKey(_) => return None,
    };
    (changed != signed).then_some(changed)
}

fn check(
    key_bytes: [u8; 32],
    token: &ClickToken,
    other: &ClickToken,
    change: &Change,
) -> TestCaseResult {
    let signing = key(key_bytes);
    let signed = token.sign(&signing);
    let expected = if signed.len() > MAX_TOKEN_LEN {
        Err(TokenError::Malformed)
    } else if body_hash(&token.body) != token.body_sha256 {
        Err(TokenError::BodyMismatch)
    } else {
        Ok(token.clone())
    };
    prop_assert_eq!(ClickToken::verify(&signed, &signing), expected);
    // The message limits bound a token for any message they let through.
    let within_limits = check_message_length(
        &token.body,
        analyze(&token.body).segments,
        MessageLimits::default(),
    )
    .is_ok();
    if within_limits {
        prop_assert!(
            signed.len() <= MAX_TOKEN_LEN,
            "a {}-character message makes a {}-byte token",
            token.body.chars().count(),
            signed.len()
        );
    }
    let verdict = match change {
        Change::OtherKey(other_key) if *other_key != key_bytes => {
            ClickToken::verify(&signed, &key(*other_key))
        }
        _ => match changed(&signed, &other.sign(&signing), change) {
            Some(changed) => ClickToken::verify(&changed, &signing),
            None => return Ok(()),
        },
    };
    prop_assert!(verdict.is_err(), "a changed token verified ({:?})", change);
    Ok(())
}

/// A corpus token: refused, or genuine under the corpus key, and then it
/// is exactly what signing its contents gives, and no one-character change
/// of it verifies.
fn check_file(bytes: &[u8]) -> TestCaseResult {
    let text = String::from_utf8_lossy(bytes);
    let key = ServerKey::from_hex(CORPUS_KEY).unwrap().click_token_key();
    let Ok(token) = ClickToken::verify(&text, &key) else {
        return Ok(());
    };
    prop_assert_eq!(token.sign(&key), text.as_ref());
    for at in 0..text.len() {
        for c in ['A', '.', '-'] {
            if let Some(changed) = changed(&text, &text, &Change::Replace(at, c)) {
                prop_assert!(ClickToken::verify(&changed, &key).is_err());
            }
        }
    }
    Ok(())
}

/// A token signed under `key`, another token, and a change to make.
#[derive(Debug, Clone)]
struct Signed {
    key: [u8; 32],
    token: ClickToken,
    other: ClickToken,
    change: Change,
}

#[derive(Debug, Clone)]
enum Case {
    Token(Box<Signed>),
    Text(String),
}

#[test]
fn a_click_token_verifies_only_as_it_was_signed() {
    replay_corpus("click_token", check_file);
    let genuine = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fuzz/corpus/click_token/genuine.txt"
    );
    let genuine = std::fs::read_to_string(genuine).unwrap();
    let key = ServerKey::from_hex(CORPUS_KEY).unwrap().click_token_key();
    assert!(
        ClickToken::verify(&genuine, &key).is_ok(),
        "the corpus's genuine token no longer verifies: were click-token keys derived anew?"
    );
    let signed =
        (any::<[u8; 32]>(), token(), token(), change()).prop_map(|(key, token, other, change)| {
            Case::Token(Box::new(Signed {
                key,
                token,
                other,
                change,
            }))
        });
    let text = prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,64}\\.[A-Za-z0-9_-]{0,64}"];
    generated(
        "click_token",
        2,
        prop_oneof![signed, text.prop_map(Case::Text)],
        |case| match case {
            Case::Token(signed) => check(signed.key, &signed.token, &signed.other, &signed.change),
            Case::Text(text) => {
                let key = ServerKey::from_hex(CORPUS_KEY).unwrap().click_token_key();
                prop_assert!(ClickToken::verify(&text, &key).is_err());
                check_file(text.as_bytes())
            }
        },
    );
}
