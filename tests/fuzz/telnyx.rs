//! Telnyx webhooks: the Ed25519 check accepts exactly the body and
//! timestamp that were signed, under the key that signed them, and calls a
//! genuine webhook expired only past five minutes' skew; a well-formed event
//! parses back to its fields; any body parses or is refused without a panic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use textbank_sms::telnyx::{TIMESTAMP_TOLERANCE_SECS, parse_webhook, verify_webhook};
use textbank_sms::{DeliveryReport, DeliveryStatus, InboundMessage, SignatureError, WebhookEvent};

use crate::{TestCaseResult, generated, replay_corpus};

#[derive(Debug, Clone)]
struct Signed {
    seed: [u8; 32],
    timestamp: i64,
    body: Vec<u8>,
    /// Our clock minus the timestamp, in seconds.
    skew: i64,
}

#[derive(Debug, Clone)]
enum Change {
    None,
    Key(usize, char),
    OtherKey([u8; 32]),
    Signature(usize, char),
    Timestamp(usize, char),
    Body(usize, u8),
    Append(u8),
    Pad,
}

/// `text` with its character at `at` (modulo its length) replaced by `c`.
fn replace_char(text: &str, at: usize, c: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at % chars.len().max(1);
    match chars.get_mut(at) {
        Some(slot) => *slot = c,
        None => chars.push(c),
    }
    chars.into_iter().collect()
}

struct Headers {
    public_key: String,
    signature: String,
    timestamp: String,
    body: Vec<u8>,
}

fn public_key(seed: &[u8; 32]) -> String {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).unwrap();
    BASE64.encode(pair.public_key().as_ref())
}

fn sign(signed: &Signed) -> Headers {
    let pair = Ed25519KeyPair::from_seed_unchecked(&signed.seed).unwrap();
    let timestamp = signed.timestamp.to_string();
    let mut message = format!("{timestamp}|").into_bytes();
    message.extend_from_slice(&signed.body);
    Headers {
        public_key: public_key(&signed.seed),
        signature: BASE64.encode(pair.sign(&message).as_ref()),
        timestamp,
        body: signed.body.clone(),
    }
}

impl Change {
    fn apply(&self, headers: &mut Headers) {
        match self {
            Self::None => {}
            Self::Key(at, c) => headers.public_key = replace_char(&headers.public_key, *at, *c),
            Self::OtherKey(seed) => headers.public_key = public_key(seed),
            Self::Signature(at, c) => headers.signature = replace_char(&headers.signature, *at, *c),
            Self::Timestamp(at, c) => headers.timestamp = replace_char(&headers.timestamp, *at, *c),
            Self::Body(at, flip) => {
                let len = headers.body.len();
                match headers.body.get_mut(at % len.max(1)) {
                    Some(byte) => *byte ^= flip.max(&1),
                    None => headers.body.push(*flip),
                }
            }
            Self::Append(byte) => headers.body.push(*byte),
            Self::Pad => {
                headers.signature = format!(" {}\t", headers.signature);
                headers.timestamp = format!("{} ", headers.timestamp);
            }
        }
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// A changed webhook verifies exactly when key, signature, timestamp and
/// body are still the signed ones, and is then `Expired` only past the
/// tolerance; a forged one is never `Expired`.
fn check_signature(signed: &Signed, change: &Change) -> TestCaseResult {
    let original = sign(signed);
    let mut headers = sign(signed);
    change.apply(&mut headers);
    let genuine = headers.public_key.trim() == original.public_key
        && headers.signature.trim() == original.signature
        && headers.timestamp.trim() == original.timestamp
        && headers.body == original.body;
    let verdict = verify_webhook(
        &headers.public_key,
        &headers.signature,
        &headers.timestamp,
        &headers.body,
        at(signed.timestamp + signed.skew),
    );
    if genuine {
        let fresh = signed.skew.abs() <= TIMESTAMP_TOLERANCE_SECS;
        prop_assert_eq!(
            verdict,
            if fresh {
                Ok(())
            } else {
                Err(SignatureError::Expired)
            }
        );
    } else {
        prop_assert!(
            !matches!(verdict, Ok(()) | Err(SignatureError::Expired)),
            "a forged webhook got {:?}",
            verdict
        );
    }
    Ok(())
}

fn signed() -> impl Strategy<Value = Signed> {
    (
        any::<[u8; 32]>(),
        1_500_000_000i64..2_500_000_000,
        prop::collection::vec(any::<u8>(), 0..256),
        prop_oneof![
            -400i64..400,
            // The edges of the tolerance.
            prop::sample::select(vec![-301, -300, 300, 301]),
            any::<i32>().prop_map(i64::from),
        ],
    )
        .prop_map(|(seed, timestamp, body, skew)| Signed {
            seed,
            timestamp,
            body,
            skew,
        })
}

fn change() -> impl Strategy<Value = Change> {
    let c = prop_oneof![
        prop::sample::select(vec!['A', 'a', '0', '+', '/', '=', ' ', '-']),
        any::<char>()
    ];
    prop_oneof![
        Just(Change::None),
        (any::<usize>(), c.clone()).prop_map(|(at, c)| Change::Key(at, c)),
        any::<[u8; 32]>().prop_map(Change::OtherKey),
        (any::<usize>(), c.clone()).prop_map(|(at, c)| Change::Signature(at, c)),
        (any::<usize>(), c).prop_map(|(at, c)| Change::Timestamp(at, c)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, flip)| Change::Body(at, flip)),
        any::<u8>().prop_map(Change::Append),
        Just(Change::Pad),
    ]
}

/// A corpus body, signed and then changed in each way at a few places.
fn check_signed_body(body: &[u8]) -> TestCaseResult {
    let signed = Signed {
        seed: [7; 32],
        timestamp: 1_700_000_000,
        body: body.to_vec(),
        skew: 0,
    };
    for at in [0, 1, 17, 86, 87] {
        for change in [
            Change::None,
            Change::Key(at, 'B'),
            Change::OtherKey([8; 32]),
            Change::Signature(at, 'B'),
            Change::Timestamp(at, '9'),
            Change::Body(at, 0x20),
            Change::Append(b'\n'),
            Change::Pad,
        ] {
            check_signature(&signed, &change)?;
        }
    }
    Ok(())
}

#[test]
fn a_telnyx_signature_accepts_exactly_the_signed_webhook() {
    replay_corpus("telnyx_signature", check_signed_body);
    let cases = (signed(), change());
    generated("telnyx_signature", 2, cases, |(signed, change)| {
        check_signature(&signed, &change)
    });
}

/// Telnyx's recipient statuses, grouped by what they are to us (`None`:
/// not delivery progress, to be ignored).
const STATUSES: [(&[&str], Option<DeliveryStatus>); 6] = [
    (&["queued"], Some(DeliveryStatus::Queued)),
    (&["sending"], Some(DeliveryStatus::Sending)),
    (
        &["sent", "delivery_unconfirmed"],
        Some(DeliveryStatus::Sent),
    ),
    (&["delivered"], Some(DeliveryStatus::Delivered)),
    (
        &["sending_failed", "delivery_failed"],
        Some(DeliveryStatus::Failed),
    ),
    (&["webhook_delivered", "Delivered"], None),
];

fn statuses() -> Vec<(&'static str, Option<DeliveryStatus>)> {
    let mut all = Vec::new();
    for (names, status) in STATUSES {
        all.extend(names.iter().map(|name| (*name, status)));
    }
    all
}

/// An event as Telnyx sends it, and what it must parse to.
#[derive(Debug, Clone)]
struct Event {
    body: Value,
    expected: WebhookEvent,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\+[0-9]{1,15}", any::<String>()]
}

/// Fields the parser does not read, at any level.
/// The names the parser reads, at any level.
const READ: [&str; 11] = [
    "data",
    "event_type",
    "payload",
    "id",
    "to",
    "from",
    "text",
    "errors",
    "phone_number",
    "status",
    "code",
];

/// Fields to add to an object.
type Noise = Vec<(String, Value)>;

fn noise() -> impl Strategy<Value = Noise> {
    prop::collection::vec(
        (
            "[a-z_]{1,10}".prop_filter("not read", |name| !READ.contains(&name.as_str())),
            json_value(),
        ),
        0..3,
    )
}

fn with_noise(mut value: Value, noise: Noise) -> Value {
    if let Value::Object(map) = &mut value {
        map.extend(noise);
    }
    value
}

fn delivery() -> impl Strategy<Value = Event> {
    (
        (
            prop::sample::select(vec!["message.sent", "message.finalized"]),
            text().prop_filter("present", |id| !id.is_empty()),
            prop::option::of(text()),
            prop::sample::select(statuses()),
            prop::option::of(text()),
            prop::option::of(prop_oneof![
                text().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                Just(Value::Null),
            ]),
        ),
        (noise(), noise(), noise()),
    )
        .prop_map(|((kind, id, to, (raw, status), from, code), noise)| {
            let mut payload = json!({
                "id": id,
                "to": [{"phone_number": to, "status": raw}, {"phone_number": "+1", "status": "x"}],
                "from": {"phone_number": from},
            });
            if let Some(code) = &code {
                payload["errors"] = json!([{"code": code}, {"code": "other"}]);
            }
            let error_code = match code {
                Some(Value::String(code)) if !code.is_empty() => Some(code),
                Some(Value::Number(code)) => Some(code.to_string()),
                _ => None,
            };
            let present = |number: Option<String>| number.filter(|n| !n.is_empty());
            let expected = match status {
                Some(status) => WebhookEvent::Delivery(DeliveryReport {
                    carrier_message_id: id,
                    status,
                    error_code,
                    to: present(to),
                    from: present(from),
                }),
                None => WebhookEvent::Ignored(format!("telnyx message status {raw:?}")),
            };
            Event {
                body: envelope(kind, payload, noise),
                expected,
            }
        })
}

fn envelope(kind: &str, payload: Value, (outer, data, inner): (Noise, Noise, Noise)) -> Value {
    let data = with_noise(
        json!({"event_type": kind, "payload": with_noise(payload, inner)}),
        data,
    );
    with_noise(json!({ "data": data }), outer)
}

fn inbound() -> impl Strategy<Value = Event> {
    let present = || text().prop_filter("present", |s| !s.is_empty());
    (
        (
            present(),
            present(),
            present(),
            prop::option::of(any::<String>()),
        ),
        (noise(), noise(), noise()),
    )
        .prop_map(|((id, from, to, text), noise)| {
            let mut payload = json!({
                "id": id,
                "from": {"phone_number": from},
                "to": [{"phone_number": to, "status": "webhook_delivered"}],
            });
            if let Some(text) = &text {
                payload["text"] = json!(text);
            }
            Event {
                body: envelope("message.received", payload, noise),
                expected: WebhookEvent::Inbound(InboundMessage {
                    carrier_message_id: id,
                    from,
                    to,
                    body: text.unwrap_or_default(),
                }),
            }
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(READ.to_vec()).prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Any body: parsed or refused, and a parsed event never has an empty id
/// or number where one is required.
fn check_body(body: &[u8]) -> TestCaseResult {
    match parse_webhook(body) {
        Ok(WebhookEvent::Delivery(report)) => {
            prop_assert!(!report.carrier_message_id.is_empty());
            prop_assert!(report.to.as_ref().is_none_or(|n| !n.is_empty()));
            prop_assert!(report.from.as_ref().is_none_or(|n| !n.is_empty()));
        }
        Ok(WebhookEvent::Inbound(message)) => {
            prop_assert!(!message.carrier_message_id.is_empty());
            prop_assert!(!message.from.is_empty() && !message.to.is_empty());
        }
        Ok(WebhookEvent::Ignored(_)) | Err(_) => {}
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Case {
    Event(Event),
    Json(Value),
    Bytes(Vec<u8>),
}

#[test]
fn a_telnyx_event_round_trips_and_any_body_is_parsed_or_refused() {
    replay_corpus("telnyx_webhook", check_body);
    let envelope_of_anything = (
        prop::sample::select(vec![
            "message.sent",
            "message.finalized",
            "message.received",
        ]),
        json_value(),
    )
        .prop_map(|(kind, payload)| json!({"data": {"event_type": kind, "payload": payload}}));
    let cases = prop_oneof![
        delivery().prop_map(Case::Event),
        inbound().prop_map(Case::Event),
        json_value().prop_map(Case::Json),
        envelope_of_anything.prop_map(Case::Json),
        prop::collection::vec(any::<u8>(), 0..128).prop_map(Case::Bytes),
    ];
    generated("telnyx_webhook", 1, cases, |case| match case {
        Case::Event(event) => {
            let body = serde_json::to_vec(&event.body).unwrap();
            prop_assert_eq!(parse_webhook(&body).ok(), Some(event.expected));
            check_body(&body)
        }
        Case::Json(value) => check_body(&serde_json::to_vec(&value).unwrap()),
        Case::Bytes(bytes) => check_body(&bytes),
    });
}
