//! The built-in carrier simulator for demos and load tests. Towards our
//! server it behaves like Twilio: it accepts messages at once and later
//! posts signed Twilio-format status callbacks and voter replies to our own
//! webhook endpoints, so the whole receive path (signature check, parsing,
//! opt-outs) is exercised exactly as in production.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::{Carrier, OutboundMessage, SmsError, SubmitOutcome, twilio};

/// Path of our Twilio status webhook, relative to `webhook_base`.
pub const STATUS_PATH: &str = "/webhooks/twilio/status";
/// Path of our Twilio inbound-message webhook, relative to `webhook_base`.
pub const INBOUND_PATH: &str = "/webhooks/twilio/inbound";

const API_VERSION: &str = "2010-04-01";

/// Twilio error codes for messages that don't arrive: unreachable handset,
/// unknown destination, landline or unreachable carrier, carrier filtering.
const FAILURE_CODES: [&str; 4] = ["30003", "30005", "30006", "30007"];

/// Ordinary replies, in the mix a GOTV texting campaign sees.
const REPLIES: [&str; 16] = [
    "Yes!",
    "Yes, I'll be there",
    "Who is this?",
    "Already voted",
    "What time do polls close?",
    "Where do I vote?",
    "Not interested",
    "Thanks for the reminder",
    "Can I vote early?",
    "Maybe",
    "I'm not registered in this state anymore",
    "wrong number",
    "👍",
    "Sí, voy a votar",
    "¿Dónde está mi casilla?",
    "¿Quién es?",
];

/// Opt-out replies, as voters actually type them: our opt-out detection has
/// to cope with case, punctuation and the other carrier keywords.
const OPT_OUTS: [&str; 10] = [
    "STOP",
    "stop",
    "Stop.",
    "STOP ALL",
    "UNSUBSCRIBE",
    "cancel",
    "End",
    "QUIT",
    "stopall",
    "Stop texting me",
];

/// Simulator behaviour. Rates are probabilities in `0.0..=1.0`; delays are
/// inclusive `(min, max)` milliseconds, drawn uniformly.
#[derive(Clone, PartialEq)]
pub struct SimConfig {
    /// Sent as `AccountSid` in callbacks.
    pub account_sid: String,
    /// Signs the callbacks; must equal the Twilio auth token our server
    /// verifies with. Never printed.
    pub auth_token: String,
    /// Our server's base URL, e.g. "http://127.0.0.1:8080"; callbacks go to
    /// `{webhook_base}/webhooks/twilio/status` and `.../inbound`.
    pub webhook_base: String,
    /// Numbers used when a message has no `from` (like a messaging service).
    pub sending_numbers: Vec<String>,
    /// Delay of each of the two status steps: accepted→`sent` and
    /// `sent`→final.
    pub delivery_delay_ms: (u64, u64),
    /// Fraction of messages that end `failed` or `undelivered`.
    pub failure_rate: f64,
    /// Fraction of delivered messages that get a reply.
    pub reply_rate: f64,
    /// Fraction of replies that are STOP-like, so the share of delivered
    /// messages drawing an opt-out is `reply_rate * opt_out_rate`.
    pub opt_out_rate: f64,
    /// Delay between the final status and the reply.
    pub reply_delay_ms: (u64, u64),
    /// Makes the outcomes (fates, delays, reply texts) reproducible for a
    /// given order of submissions. Message sids stay random so that two runs
    /// against one database never reuse a sid.
    pub seed: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC00000000000000000000000000000000".to_owned(),
            auth_token: "sim-auth-token".to_owned(),
            webhook_base: "http://127.0.0.1:8080".to_owned(),
            // 555-01xx numbers are reserved for fiction.
            sending_numbers: vec![
                "+12025550100".to_owned(),
                "+12025550101".to_owned(),
                "+12025550102".to_owned(),
            ],
            delivery_delay_ms: (200, 1500),
            failure_rate: 0.03,
            reply_rate: 0.2,
            // 5% of delivered messages draw an opt-out.
            opt_out_rate: 0.25,
            reply_delay_ms: (2_000, 20_000),
            seed: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("webhook_base", &self.webhook_base)
            .field("sending_numbers", &self.sending_numbers)
            .field("delivery_delay_ms", &self.delivery_delay_ms)
            .field("failure_rate", &self.failure_rate)
            .field("reply_rate", &self.reply_rate)
            .field("opt_out_rate", &self.opt_out_rate)
            .field("reply_delay_ms", &self.reply_delay_ms)
            .field("seed", &self.seed)
            .finish()
    }
}

/// The simulated carrier. Cheap to share: clone the `Arc` you hold it in.
pub struct SimCarrier {
    inner: Arc<Inner>,
    /// Turns true when the server shuts down: callbacks not yet posted are
    /// dropped, as a real carrier's would be lost to a stopped server.
    stop: Option<watch::Receiver<bool>>,
}

struct Inner {
    config: SimConfig,
    http: reqwest::Client,
    // One generator for all draws, so a seed reproduces a run; a Mutex since
    // submissions come from many tasks. Never held across an await.
    rng: Mutex<StdRng>,
}

impl fmt::Debug for SimCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCarrier")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How one submitted message will play out, drawn at submit time.
#[derive(Debug)]
struct Plan {
    sent_after: Duration,
    final_after: Duration,
    fate: Fate,
    reply: Option<(Duration, &'static str)>,
}

#[derive(Debug)]
enum Fate {
    Delivered,
    /// Reached the carrier, then the handset could not be reached.
    Undelivered(&'static str),
    /// Never left: Twilio reports `failed` without a `sent` first.
    Failed(&'static str),
}

impl SimCarrier {
    pub fn new(config: SimConfig, http: reqwest::Client) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                rng: Mutex::new(rng),
            }),
            stop: None,
        }
    }

    /// Drops the callbacks still to come once `stop` turns true.
    #[must_use]
    pub fn until(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Posts a voter's text to our inbound webhook now, as Twilio would, and
    /// returns the message sid it used. Retries briefly if our server is not
    /// answering; the error says why it finally gave up.
    pub async fn send_inbound(&self, from: &str, to: &str, body: &str) -> Result<String, SmsError> {
        let sid = new_sid();
        self.inner.post_inbound(&sid, from, to, body).await?;
        Ok(sid)
    }
}

#[async_trait::async_trait]
impl Carrier for SimCarrier {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn submit(&self, message: &OutboundMessage) -> SubmitOutcome {
        // Refuse what Twilio refuses, with its codes, so the caller's
        // rejection handling gets exercised too.
        if message.to.is_empty() {
            return rejected("21604", "A 'To' phone number is required.");
        }
        if message.body.is_empty() {
            return rejected("21602", "Message body is required.");
        }
        let from = if message.from.is_empty() {
            let numbers = &self.inner.config.sending_numbers;
            if numbers.is_empty() {
                return rejected("21603", "A 'From' phone number is required.");
            }
            // Stable per voter, like a messaging service's sticky sender,
            // so a conversation stays on one number.
            let index = usize::try_from(fnv1a(message.to.as_bytes()) % numbers.len() as u64)
                .unwrap_or_default();
            numbers[index].clone()
        } else {
            message.from.clone()
        };
        let sid = new_sid();
        let mut plan = self.inner.plan();
        if message.automated {
            plan.reply = None;
        }
        tracing::debug!(message_id = %message.message_id, %sid, ?plan, "sim accepted");

        let inner = Arc::clone(&self.inner);
        let (task_sid, task_from, voter) = (sid.clone(), from.clone(), message.to.clone());
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let play = inner.play(plan, &task_sid, &task_from, &voter);
            let Some(mut stop) = stop else {
                return play.await;
            };
            tokio::select! {
                () = play => {}
                // A dropped sender is no stop: the app that would send it is gone.
                Ok(_) = stop.wait_for(|stopped| *stopped) => {}
            }
        });

        SubmitOutcome::Accepted {
            carrier_message_id: sid,
            from: Some(from),
        }
    }
}

impl Inner {
    fn plan(&self) -> Plan {
        let config = &self.config;
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let sent_after = delay(&mut *rng, config.delivery_delay_ms);
        let final_after = delay(&mut *rng, config.delivery_delay_ms);
        // `random::<f64>() < rate` rather than `random_bool`, which panics
        // on a rate outside 0..=1; here 1.5 means "always", NaN "never".
        let fate = if rng.random::<f64>() < config.failure_rate {
            let code = FAILURE_CODES.choose(&mut *rng).copied().unwrap_or("30003");
            if rng.random::<bool>() {
                Fate::Undelivered(code)
            } else {
                Fate::Failed(code)
            }
        } else {
            Fate::Delivered
        };
        let reply = if matches!(fate, Fate::Delivered) && rng.random::<f64>() < config.reply_rate {
            let after = delay(&mut *rng, config.reply_delay_ms);
            let pool: &[&'static str] = if rng.random::<f64>() < config.opt_out_rate {
                &OPT_OUTS
            } else {
                &REPLIES
            };
            pool.choose(&mut *rng).map(|text| (after, *text))
        } else {
            None
        };
        Plan {
            sent_after,
            final_after,
            fate,
            reply,
        }
    }

    /// Plays one message's callbacks in order. Failures are logged and
    /// dropped: a lost callback is something real carriers do too.
    async fn play(&self, plan: Plan, sid: &str, from: &str, voter: &str) {
        tokio::time::sleep(plan.sent_after).await;
        let last = match plan.fate {
            Fate::Delivered => ("delivered", None),
            Fate::Undelivered(code) => ("undelivered", Some(code)),
            Fate::Failed(code) => ("failed", Some(code)),
        };
        if !matches!(plan.fate, Fate::Failed(_)) {
            if let Err(error) = self.post_status(sid, from, voter, "sent", None).await {
                tracing::debug!(%sid, %error, "sim could not post the sent status");
            }
            tokio::time::sleep(plan.final_after).await;
        }
        if let Err(error) = self.post_status(sid, from, voter, last.0, last.1).await {
            tracing::debug!(%sid, %error, "sim could not post the final status");
        }
        if let Some((after, text)) = plan.reply {
            tokio::time::sleep(after).await;
            let reply_sid = new_sid();
            if let Err(error) = self.post_inbound(&reply_sid, voter, from, text).await {
                tracing::debug!(sid = %reply_sid, %error, "sim could not post a reply");
            }
        }
    }

    async fn post_status(
        &self,
        sid: &str,
        from: &str,
        to: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<(), SmsError> {
        let mut params = vec![
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", &self.config.account_sid),
            ("From", from),
            ("To", to),
            ("MessageStatus", status),
            ("SmsStatus", status),
        ];
        if let Some(code) = error_code {
            params.push(("ErrorCode", code));
        }
        params.push(("ApiVersion", API_VERSION));
        self.post_signed(STATUS_PATH, &params).await
    }

    async fn post_inbound(
        &self,
        sid: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<(), SmsError> {
        let params = [
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", &self.config.account_sid),
            ("From", from),
            ("To", to),
            ("Body", body),
            ("NumMedia", "0"),
            ("ApiVersion", API_VERSION),
        ];
        self.post_signed(INBOUND_PATH, &params).await
    }

    /// POSTs a form signed like Twilio signs it, retrying transport errors
    /// and 5xx with backoff. A 4xx is final: our server read the request and
    /// refused it (most likely a token mismatch), and resending won't help.
    async fn post_signed(&self, path: &str, params: &[(&str, &str)]) -> Result<(), SmsError> {
        const ATTEMPTS: u32 = 4;
        let url = format!("{}{path}", self.config.webhook_base.trim_end_matches('/'));
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let signature = twilio::signature(&self.config.auth_token, &url, &owned);

        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let result = self
                .http
                .post(&url)
                .header(twilio::SIGNATURE_HEADER, &signature)
                .form(params)
                .send()
                .await;
            let reason = match result {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    return Err(SmsError::WebhookDelivery {
                        url,
                        reason: format!("HTTP {}", response.status()),
                    });
                }
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.to_string(),
            };
            if attempt >= ATTEMPTS {
                return Err(SmsError::WebhookDelivery { url, reason });
            }
            tracing::debug!(%url, attempt, %reason, "sim webhook post failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

fn rejected(code: &str, message: &str) -> SubmitOutcome {
    SubmitOutcome::Rejected {
        code: code.to_owned(),
        message: message.to_owned(),
        retryable: false,
    }
}

fn delay(rng: &mut impl Rng, (min, max): (u64, u64)) -> Duration {
    let ms = if max > min {
        rng.random_range(min..=max)
    } else {
        min
    };
    Duration::from_millis(ms)
}

/// "SM" and 32 hex digits, like a Twilio message sid. Drawn from the thread
/// generator, not the seeded one, so sids are unique across runs.
fn new_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// FNV-1a: a fixed, documented hash, unlike std's `DefaultHasher`, so the
/// number a voter is texted from doesn't change between builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(config: SimConfig) -> SimCarrier {
        let http = crate::http_client(Duration::from_secs(1)).unwrap();
        SimCarrier::new(config, http)
    }

    #[test]
    fn sids_look_like_twilio_message_sids() {
        let sid = new_sid();
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert!(
            sid[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(new_sid(), sid);
    }

    #[test]
    fn same_seed_gives_same_plans() {
        let config = SimConfig {
            seed: Some(7),
            failure_rate: 0.3,
            reply_rate: 0.5,
            ..SimConfig::default()
        };
        let a = sim(config.clone());
        let b = sim(config);
        for _ in 0..50 {
            assert_eq!(
                format!("{:?}", a.inner.plan()),
                format!("{:?}", b.inner.plan())
            );
        }
    }

    #[test]
    fn rates_shape_the_outcomes() {
        let all_fail = sim(SimConfig {
            seed: Some(1),
            failure_rate: 1.0,
            reply_rate: 1.0,
            ..SimConfig::default()
        });
        for _ in 0..20 {
            let plan = all_fail.inner.plan();
            assert!(!matches!(plan.fate, Fate::Delivered));
            // Undelivered messages never draw a reply.
            assert!(plan.reply.is_none());
        }
        let all_stop = sim(SimConfig {
            seed: Some(1),
            failure_rate: 0.0,
            reply_rate: 1.0,
            opt_out_rate: 1.0,
            ..SimConfig::default()
        });
        for _ in 0..20 {
            let plan = all_stop.inner.plan();
            let (_, text) = plan.reply.unwrap();
            assert!(OPT_OUTS.contains(&text), "{text}");
        }
    }

    #[test]
    fn delays_stay_within_bounds() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            let d = delay(&mut rng, (10, 20));
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        assert_eq!(delay(&mut rng, (30, 5)), Duration::from_millis(30));
    }

    #[test]
    fn fnv1a_is_stable() {
        // Reference value for FNV-1a 64 of "a".
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[tokio::test]
    async fn sending_number_is_sticky_per_voter() {
        let carrier = sim(SimConfig {
            // Nothing listens there; the callbacks fail quietly.
            webhook_base: "http://127.0.0.1:9".to_owned(),
            ..SimConfig::default()
        });
        let message = hi();
        let first = carrier.submit(&message).await;
        let second = carrier.submit(&message).await;
        let from = |outcome: &SubmitOutcome| match outcome {
            SubmitOutcome::Accepted { from, .. } => from.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(from(&first), from(&second));
        assert!(
            SimConfig::default()
                .sending_numbers
                .contains(&from(&first).unwrap())
        );
    }

    /// "hi" to a US number, from the carrier's pick of number.
    fn hi() -> OutboundMessage {
        OutboundMessage {
            message_id: uuid::Uuid::now_v7(),
            from: String::new(),
            to: "+15551234567".to_owned(),
            body: "hi".to_owned(),
            automated: false,
        }
    }

    #[tokio::test]
    async fn messages_twilio_would_refuse_are_rejected() {
        let carrier = sim(SimConfig {
            sending_numbers: vec![],
            ..SimConfig::default()
        });
        let message = hi();
        assert!(matches!(
            carrier.submit(&message).await,
            SubmitOutcome::Rejected { code, retryable: false, .. } if code == "21603"
        ));
        let no_body = OutboundMessage {
            body: String::new(),
            from: "+12025550100".to_owned(),
            ..message
        };
        assert!(matches!(
            carrier.submit(&no_body).await,
            SubmitOutcome::Rejected { code, .. } if code == "21602"
        ));
    }

    #[tokio::test]
    async fn a_stopped_simulator_posts_no_more_callbacks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_base = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let (stop, stopped) = watch::channel(false);
        let carrier = sim(SimConfig {
            webhook_base,
            delivery_delay_ms: (100, 100),
            ..SimConfig::default()
        })
        .until(stopped);
        let message = hi();
        assert!(matches!(
            carrier.submit(&message).await,
            SubmitOutcome::Accepted { .. }
        ));
        stop.send_replace(true);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            connections.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a callback reached the server after the stop"
        );
    }

    #[test]
    fn debug_output_redacts_the_auth_token() {
        let config = SimConfig {
            auth_token: "sim-secret-xyz".to_owned(),
            ..SimConfig::default()
        };
        assert!(!format!("{config:?}").contains("sim-secret-xyz"));
        assert!(!format!("{:?}", sim(config)).contains("sim-secret-xyz"));
    }
}
