//! Twilio webhooks: `X-Twilio-Signature` accepts exactly the requests whose
//! signed string (URL, then each parameter's name and value, sorted) is the
//! one signed, under the same auth token; a well-formed callback, form-encoded
//! in any of the ways a client may, parses back to its fields; any body parses
//! or is refused without a panic.

use proptest::prelude::*;
use textbank_sms::twilio::{
    form_params, parse_inbound, parse_status_callback, signature, verify_signature,
};
use textbank_sms::{DeliveryReport, DeliveryStatus, InboundMessage, WebhookEvent};

use crate::{TestCaseResult, generated, replay_corpus};

type Params = Vec<(String, String)>;

/// The string Twilio's documentation says is signed, written from it.
fn signed_string(url: &str, params: &Params) -> String {
    let mut sorted = params.clone();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(&name);
        signed.push_str(&value);
    }
    signed
}

/// HMAC pads a key shorter than its block (64 bytes) with zeros, so two
/// tokens that differ only in trailing NULs are one key.
fn same_key(a: &str, b: &str) -> bool {
    let short = |key: &str| key.len() <= 64;
    a == b || (short(a) && short(b) && a.trim_end_matches('\0') == b.trim_end_matches('\0'))
}

#[derive(Debug, Clone)]
struct Request {
    token: String,
    url: String,
    params: Params,
}

#[derive(Debug, Clone)]
enum Change {
    Token(usize, char),
    Url(usize, char),
    Name(usize, usize, char),
    Value(usize, usize, char),
    Add(String, String),
    Remove(usize),
    /// Moves the last character of a name to the front of its value: the
    /// signed string stays the same (a weakness of Twilio's scheme).
    Shift(usize),
    Reverse,
    Header(usize, char),
    PadHeader,
}

/// `text` with its character at `at` (modulo its length) replaced by `c`;
/// empty text becomes `c`.
fn replace_char(text: &str, at: usize, c: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        chars.push(c);
    } else {
        let at = at % chars.len();
        chars[at] = c;
    }
    chars.into_iter().collect()
}

impl Change {
    fn apply(&self, request: &mut Request, header: &mut String) {
        let count = request.params.len().max(1);
        let param = |i: usize| i % count;
        match self {
            Self::Token(at, c) => request.token = replace_char(&request.token, *at, *c),
            Self::Url(at, c) => request.url = replace_char(&request.url, *at, *c),
            Self::Name(i, at, c) => {
                if let Some((name, _)) = request.params.get_mut(param(*i)) {
                    *name = replace_char(name, *at, *c);
                }
            }
            Self::Value(i, at, c) => {
                if let Some((_, value)) = request.params.get_mut(param(*i)) {
                    *value = replace_char(value, *at, *c);
                }
            }
            Self::Add(name, value) => request.params.push((name.clone(), value.clone())),
            Self::Remove(i) => {
                if !request.params.is_empty() {
                    request.params.remove(param(*i));
                }
            }
            Self::Shift(i) => {
                if let Some((name, value)) = request.params.get_mut(param(*i))
                    && let Some(extra_first) = name.pop()
                {
                    value.insert(0, extra_first);
                }
            }
            Self::Reverse => request.params.reverse(),
            Self::Header(at, c) => *header = replace_char(header, *at, *c),
            Self::PadHeader => *header = format!(" {header}\t"),
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9+:/?=&._-]{0,24}", any::<String>()]
}

fn request() -> impl Strategy<Value = Request> {
    (
        text(),
        text(),
        prop::collection::vec(("[A-Za-z]{0,10}", text()), 0..6),
    )
        .prop_map(|(token, url, params)| Request { token, url, params })
}

fn change() -> impl Strategy<Value = Change> {
    let c = prop_oneof![
        prop::sample::select(vec!['a', 'A', '0', '+', '/', '=', ' ', '\0']),
        any::<char>()
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(at, c)| Change::Token(at, c)),
        (any::<usize>(), c.clone()).prop_map(|(at, c)| Change::Url(at, c)),
        (any::<usize>(), any::<usize>(), c.clone()).prop_map(|(i, at, c)| Change::Name(i, at, c)),
        (any::<usize>(), any::<usize>(), c.clone()).prop_map(|(i, at, c)| Change::Value(i, at, c)),
        ("[A-Za-z]{0,4}", text()).prop_map(|(name, value)| Change::Add(name, value)),
        any::<usize>().prop_map(Change::Remove),
        any::<usize>().prop_map(Change::Shift),
        Just(Change::Reverse),
        (any::<usize>(), c).prop_map(|(at, c)| Change::Header(at, c)),
        Just(Change::PadHeader),
    ]
}

/// The signed request verifies; changed, it verifies exactly when the
/// token, the signed string and the (trimmed) header are as signed.
fn check_signature(request: &Request, change: &Change) -> TestCaseResult {
    let header = signature(&request.token, &request.url, &request.params);
    prop_assert!(verify_signature(
        &request.token,
        &request.url,
        &request.params,
        &header
    ));
    let mut changed = request.clone();
    let mut changed_header = header.clone();
    change.apply(&mut changed, &mut changed_header);
    let same = same_key(&changed.token, &request.token)
        && signed_string(&changed.url, &changed.params)
            == signed_string(&request.url, &request.params)
        && changed_header.trim() == header;
    prop_assert_eq!(
        verify_signature(
            &changed.token,
            &changed.url,
            &changed.params,
            &changed_header
        ),
        same,
        "{:?}",
        changed
    );
    Ok(())
}

/// A corpus request: the URL on the first line, the header on the second,
/// the form body after. Whatever it holds, only its true signature passes.
fn check_request_file(bytes: &[u8]) -> TestCaseResult {
    const TOKEN: &str = "corpus-auth-token";
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.splitn(3, '\n');
    let url = lines.next().unwrap_or_default();
    let header = lines.next().unwrap_or_default();
    let Ok(params) = form_params(lines.next().unwrap_or_default().as_bytes()) else {
        return Ok(());
    };
    let truth = signature(TOKEN, url, &params);
    prop_assert_eq!(
        verify_signature(TOKEN, url, &params, header),
        header.trim() == truth
    );
    prop_assert!(verify_signature(TOKEN, url, &params, &truth));
    Ok(())
}

#[test]
fn a_twilio_signature_accepts_exactly_the_signed_request() {
    replay_corpus("twilio_signature", check_request_file);
    let check = |(request, change): (Request, Change)| check_signature(&request, &change);
    generated("twilio_signature", 1, (request(), change()), check);
}

/// Names the parsers read; generated extra parameters avoid them.
const READ: [&str; 8] = [
    "MessageSid",
    "SmsSid",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "To",
    "From",
    "Body",
];

/// Twilio's message statuses by what they are to us (`None`: not delivery
/// progress, to be ignored).
const STATUSES: [(Option<DeliveryStatus>, &[&str]); 7] = [
    (
        Some(DeliveryStatus::Queued),
        &["queued", "accepted", "scheduled"],
    ),
    (Some(DeliveryStatus::Sending), &["sending"]),
    (Some(DeliveryStatus::Sent), &["sent"]),
    (Some(DeliveryStatus::Delivered), &["delivered", "read"]),
    (Some(DeliveryStatus::Undelivered), &["undelivered"]),
    (Some(DeliveryStatus::Failed), &["failed", "canceled"]),
    (None, &["receiving", "received", "Delivered"]),
];

#[derive(Debug, Clone)]
struct Status {
    /// Named with the deprecated `SmsSid`/`SmsStatus`.
    legacy: bool,
    sid: String,
    status: (&'static str, Option<DeliveryStatus>),
    error_code: Option<String>,
    to: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Clone)]
struct Inbound {
    legacy: bool,
    sid: String,
    from: String,
    to: String,
    body: Option<String>,
}

#[derive(Debug, Clone)]
enum Callback {
    Status(Status),
    Inbound(Inbound),
}

fn sid_name(legacy: bool) -> &'static str {
    if legacy { "SmsSid" } else { "MessageSid" }
}

impl Callback {
    fn params(&self) -> Params {
        let mut params = Params::new();
        let mut push = |name: &str, value: Option<&String>| {
            if let Some(value) = value {
                params.push((name.to_owned(), value.clone()));
            }
        };
        match self {
            Self::Status(s) => {
                push(sid_name(s.legacy), Some(&s.sid));
                let status_name = if s.legacy {
                    "SmsStatus"
                } else {
                    "MessageStatus"
                };
                push(status_name, Some(&s.status.0.to_owned()));
                push("ErrorCode", s.error_code.as_ref());
                push("To", s.to.as_ref());
                push("From", s.from.as_ref());
            }
            Self::Inbound(m) => {
                push(sid_name(m.legacy), Some(&m.sid));
                push("From", Some(&m.from));
                push("To", Some(&m.to));
                push("Body", m.body.as_ref());
            }
        }
        params
    }

    fn expected(&self) -> WebhookEvent {
        match self.clone() {
            Self::Status(s) => match s.status {
                (_, Some(status)) => WebhookEvent::Delivery(DeliveryReport {
                    carrier_message_id: s.sid,
                    status,
                    error_code: s.error_code,
                    to: s.to,
                    from: s.from,
                }),
                (raw, None) => WebhookEvent::Ignored(format!("twilio message status {raw:?}")),
            },
            Self::Inbound(m) => WebhookEvent::Inbound(InboundMessage {
                carrier_message_id: m.sid,
                from: m.from,
                to: m.to,
                body: m.body.unwrap_or_default(),
            }),
        }
    }
}

fn present() -> impl Strategy<Value = String> {
    prop_oneof!["[+0-9]{1,15}", "SM[0-9a-f]{32}", any::<String>()]
        .prop_filter("present", |s| !s.is_empty())
}

fn callback() -> impl Strategy<Value = Callback> {
    let statuses: Vec<_> = STATUSES
        .iter()
        .flat_map(|(status, names)| names.iter().map(move |name| (*name, *status)))
        .collect();
    let status = (
        any::<bool>(),
        present(),
        prop::sample::select(statuses),
        (
            prop::option::of("[0-9]{5}"),
            prop::option::of(present()),
            prop::option::of(present()),
        ),
    )
        .prop_map(|(legacy, sid, status, (error_code, to, from))| {
            Callback::Status(Status {
                legacy,
                sid,
                status,
                error_code,
                to,
                from,
            })
        });
    let inbound = (
        any::<bool>(),
        (present(), present(), present()),
        prop::option::of(any::<String>()),
    )
        .prop_map(|(legacy, (sid, from, to), body)| {
            Callback::Inbound(Inbound {
                legacy,
                sid,
                from,
                to,
                body,
            })
        });
    prop_oneof![status, inbound]
}

/// Form-encodes `params`, each byte spelled one of the ways a client may
/// (`spelling` picks: literal where that is safe, `%xx`, `%XX`, or `+` for
/// a space).
fn form_encode(params: &Params, spelling: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut choices = spelling.iter().cycle();
    let mut encode = |text: &str, out: &mut Vec<u8>| {
        for &byte in text.as_bytes() {
            let choice = choices.next().copied().unwrap_or(0) % 3;
            match (byte, choice) {
                (b' ', 0) => out.push(b'+'),
                (b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*', 0) => {
                    out.push(byte)
                }
                (_, 1) => out.extend(format!("%{byte:02x}").bytes()),
                _ => out.extend(format!("%{byte:02X}").bytes()),
            }
        }
    };
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        encode(name, &mut out);
        out.push(b'=');
        encode(value, &mut out);
    }
    out
}

/// Any body: decodes or is refused; decoded, each parser answers from the
/// first parameter of each name, and never with an empty id or number.
fn check_body(body: &[u8]) -> TestCaseResult {
    let Ok(params) = form_params(body) else {
        return Ok(());
    };
    let first = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let sid = first("MessageSid").or_else(|| first("SmsSid"));
    match parse_status_callback(&params) {
        Ok(WebhookEvent::Delivery(report)) => {
            prop_assert_eq!(Some(report.carrier_message_id.as_str()), sid);
            prop_assert_eq!(report.to.as_deref(), first("To"));
            prop_assert_eq!(report.from.as_deref(), first("From"));
        }
        Ok(WebhookEvent::Ignored(_)) => prop_assert!(sid.is_some()),
        Ok(other) => return Err(unexpected("a status callback", &other)),
        Err(_) => prop_assert!(
            sid.is_none()
                || first("MessageStatus")
                    .or_else(|| first("SmsStatus"))
                    .is_none()
        ),
    }
    match parse_inbound(&params) {
        Ok(WebhookEvent::Inbound(message)) => {
            prop_assert_eq!(Some(message.carrier_message_id.as_str()), sid);
            prop_assert_eq!(Some(message.from.as_str()), first("From"));
            prop_assert_eq!(Some(message.to.as_str()), first("To"));
        }
        Ok(other) => return Err(unexpected("an inbound message", &other)),
        Err(_) => prop_assert!(sid.is_none() || first("From").is_none() || first("To").is_none()),
    }
    Ok(())
}

fn unexpected(what: &str, event: &WebhookEvent) -> TestCaseError {
    TestCaseError::fail(format!("{what} parsed as {event:?}"))
}

#[derive(Debug, Clone)]
enum Case {
    Callback {
        callback: Callback,
        extra: Params,
        spelling: Vec<u8>,
        extra_first: bool,
    },
    Body(Vec<u8>),
}

fn check_case(case: Case) -> TestCaseResult {
    let (callback, extra, spelling, extra_first) = match case {
        Case::Body(body) => return check_body(&body),
        Case::Callback {
            callback,
            extra,
            spelling,
            extra_first,
        } => (callback, extra, spelling, extra_first),
    };
    let mut params = callback.params();
    let extra = extra
        .into_iter()
        .filter(|(name, _)| !READ.contains(&name.as_str()));
    if extra_first {
        params.splice(0..0, extra);
    } else {
        params.extend(extra);
    }
    let body = form_encode(&params, &spelling);
    let decoded = form_params(&body).map_err(|err| TestCaseError::fail(err.to_string()))?;
    prop_assert_eq!(&decoded, &params);
    let parsed = match callback {
        Callback::Status(_) => parse_status_callback(&decoded),
        Callback::Inbound(_) => parse_inbound(&decoded),
    };
    prop_assert_eq!(parsed.ok(), Some(callback.expected()));
    check_body(&body)
}

#[test]
fn a_twilio_callback_round_trips_and_any_body_is_parsed_or_refused() {
    replay_corpus("twilio_webhook", check_body);
    let callback = (
        callback(),
        prop::collection::vec(("[A-Za-z]{1,12}", any::<String>()), 0..4),
        prop::collection::vec(any::<u8>(), 1..16),
        any::<bool>(),
    )
        .prop_map(|(callback, extra, spelling, extra_first)| Case::Callback {
            callback,
            extra,
            spelling,
            extra_first,
        });
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(
            prop::sample::select(b"MessageSidSmsStatusFromTo=&%2B+0aZ\xff".to_vec()),
            0..64
        ),
    ];
    generated(
        "twilio_webhook",
        1,
        prop_oneof![callback, body.prop_map(Case::Body)],
        check_case,
    );
}
