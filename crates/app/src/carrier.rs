//! Each organization's carrier: its settings (`PUT /v1/carrier`), its
//! credentials sealed at rest with the server key, its sending numbers, and
//! the live adapter built from them. Secrets never reach an event, a log or
//! a response.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use textbank_domain::org::{self, OrgEvent};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::AutoReplyTexts;
use textbank_domain::{OrgId, Permission};
use textbank_projections::directory;
use textbank_sms::{
    Carrier, SimCarrier, SimConfig, TelnyxCarrier, TelnyxConfig, TwilioCarrier, TwilioConfig,
};
use textbank_store::carrier_accounts::{self, CarrierAccount};
use textbank_store::{StoreError, sending_numbers};
use uuid::Uuid;

use crate::{App, AppError, Caller};

/// How long a carrier API call may take before its outcome counts as unknown.
/// How long a carrier API call may take (the dispatcher waits this long,
/// and a margin, for a former leader's call in flight).
pub(crate) const CARRIER_TIMEOUT_SECS: u64 = 15;
const CARRIER_TIMEOUT: Duration = Duration::from_secs(CARRIER_TIMEOUT_SECS);
const MAX_NUMBERS: usize = 1_000;
const MAX_TEXT: usize = 320;

/// The body of `PUT /v1/carrier`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierSettings {
    /// "sim", "twilio" or "telnyx".
    pub carrier: String,
    /// E.164 numbers to send from; the simulator makes up 555 numbers when
    /// none are given.
    #[serde(default)]
    pub sending_numbers: Vec<String>,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub api_key: Option<String>,
    pub public_key: Option<String>,
    pub messaging_profile_id: Option<String>,
    /// The carrier API's base URL, for a proxy or a test double.
    pub api_base: Option<String>,
    pub opt_out_confirmation: Option<String>,
    pub opt_in_confirmation: Option<String>,
    pub help_text: Option<String>,
}

impl fmt::Debug for CarrierSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarrierSettings")
            .field("carrier", &self.carrier)
            .field("sending_numbers", &self.sending_numbers)
            .finish_non_exhaustive()
    }
}

/// What is stored in the clear: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSettings {
    carrier: String,
    sending_numbers: Vec<String>,
    account_sid: Option<String>,
    messaging_service_sid: Option<String>,
    public_key: Option<String>,
    messaging_profile_id: Option<String>,
    api_base: Option<String>,
    texts: AutoReplyTexts,
}

/// The carrier as `GET /v1/carrier` shows it: no secrets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CarrierView {
    pub carrier: String,
    pub sending_numbers: Vec<String>,
    pub account_sid: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub messaging_profile_id: Option<String>,
    pub public_key: Option<String>,
    pub api_base: Option<String>,
    pub opt_out_confirmation: String,
    pub opt_in_confirmation: String,
    pub help_text: String,
    /// The credential is stored (sealed); it is never shown again.
    pub secret_set: bool,
    /// Where to point the carrier's webhooks.
    pub webhooks: HashMap<&'static str, String>,
    pub updated_at: DateTime<Utc>,
}

/// An organization's live carrier and what its webhooks are checked with.
pub struct ConfiguredCarrier {
    pub org_id: OrgId,
    pub kind: String,
    pub adapter: Arc<dyn Carrier>,
    pub sending_numbers: Vec<String>,
    /// Whether the carrier picks the number (messaging service / profile).
    pub carrier_picks_number: bool,
    /// Twilio auth token (sim too) or Telnyx public key.
    webhook_secret: String,
    pub texts: AutoReplyTexts,
}

impl fmt::Debug for ConfiguredCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredCarrier")
            .field("org_id", &self.org_id)
            .field("kind", &self.kind)
            .field("sending_numbers", &self.sending_numbers)
            .finish_non_exhaustive()
    }
}

impl ConfiguredCarrier {
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The number a phone gets its texts from: the one it got them from
    /// before, else one picked by a stable hash of the phone, so the voter
    /// sees one sender for the whole conversation.
    pub fn sender_for(&self, phone: &str, previous: Option<&str>) -> Option<String> {
        if let Some(previous) = previous
            && self.sending_numbers.iter().any(|number| number == previous)
        {
            return Some(previous.to_owned());
        }
        if self.sending_numbers.is_empty() {
            return None;
        }
        let hash = phone.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        let index = usize::try_from(hash % self.sending_numbers.len() as u64).unwrap_or(0);
        Some(self.sending_numbers[index].clone())
    }
}

/// How long a built carrier (and the numbers it owns) is trusted before the
/// settings are read again: another server sharing the database may have
/// changed them. This process drops its copy at once when it changes them.
const CARRIER_TTL: Duration = Duration::from_secs(30);

/// Adapters built so far, per org, and which org each sending number names.
#[derive(Clone, Default)]
pub(crate) struct Carriers {
    built: Arc<RwLock<Built>>,
}

#[derive(Default)]
struct Built {
    by_org: HashMap<OrgId, (Instant, Arc<ConfiguredCarrier>)>,
    by_number: HashMap<String, OrgId>,
}

impl Carriers {
    fn get(&self, org: OrgId) -> Option<Arc<ConfiguredCarrier>> {
        let built = self
            .built
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        built
            .by_org
            .get(&org)
            .filter(|(at, _)| at.elapsed() < CARRIER_TTL)
            .map(|(_, carrier)| carrier.clone())
    }

    /// The org a sending number belongs to, if a fresh carrier names it.
    fn org_of(&self, number: &str) -> Option<OrgId> {
        let org = *self
            .built
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_number
            .get(number)?;
        self.get(org).map(|_| org)
    }

    fn put(&self, org: OrgId, carrier: Arc<ConfiguredCarrier>) {
        let mut built = self
            .built
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        built.by_number.retain(|_, owner| *owner != org);
        for number in &carrier.sending_numbers {
            built.by_number.insert(number.clone(), org);
        }
        built.by_org.insert(org, (Instant::now(), carrier));
    }

    fn forget(&self, org: OrgId) {
        let mut built = self
            .built
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        built.by_number.retain(|_, owner| *owner != org);
        built.by_org.remove(&org);
    }
}

fn required(
    value: &Option<String>,
    field: &'static str,
    carrier: &str,
) -> Result<String, AppError> {
    match value.as_deref().map(str::trim) {
        Some(value) if !value.is_empty() && value.len() <= 512 => Ok(value.to_owned()),
        _ => Err(AppError::invalid(
            field,
            format!("{field} is required for {carrier} (at most 512 characters)"),
        )),
    }
}

fn optional_text(value: &Option<String>, field: &'static str) -> Result<Option<String>, AppError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() <= MAX_TEXT => Ok(Some(text.to_owned())),
        Some(_) => Err(AppError::invalid(
            field,
            format!("{field} must be at most {MAX_TEXT} characters"),
        )),
    }
}

fn sim_numbers() -> Vec<String> {
    // 555-01xx is reserved for fiction; a random area code keeps orgs apart.
    // Only numbers that parse come out: an area code like 311 would make
    // every webhook naming it unattributable.
    let mut rng = rand::rng();
    let mut numbers: Vec<String> = Vec::new();
    while numbers.len() < 3 {
        let candidate = format!(
            "+1{}{:02}55501{:02}",
            rng.random_range(2..=9),
            rng.random_range(0..100),
            rng.random_range(0..100)
        );
        let parses = PhoneNumber::parse(&candidate, textbank_domain::phone::Region::US)
            .is_ok_and(|number| number.as_str() == candidate);
        if parses && !numbers.contains(&candidate) {
            numbers.push(candidate);
        }
    }
    numbers
}

impl App {
    /// Replaces the org's carrier settings (owner/admin).
    pub async fn configure_carrier(
        &self,
        caller: &Caller,
        settings: CarrierSettings,
    ) -> Result<CarrierView, AppError> {
        caller.require(Permission::ConfigureCarrier)?;
        let org = caller.org_id;
        let carrier = settings.carrier.trim().to_ascii_lowercase();
        let mut numbers = Vec::new();
        for raw in &settings.sending_numbers {
            let number = PhoneNumber::parse(raw, self.default_region())
                .map_err(|err| AppError::invalid("sending_numbers", format!("{raw:?}: {err}")))?;
            if !numbers.contains(&number.as_str().to_owned()) {
                numbers.push(number.as_str().to_owned());
            }
        }
        if numbers.len() > MAX_NUMBERS {
            return Err(AppError::invalid(
                "sending_numbers",
                format!("at most {MAX_NUMBERS} sending numbers"),
            ));
        }
        // The carrier secret goes wherever api_base points: only where the
        // server's operator allows.
        let api_base = match settings.api_base.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(self.carrier_api_policy().check(url)?),
        };
        let org_name = directory::org_name(self.database(), org)
            .await?
            .unwrap_or_default();
        let defaults = AutoReplyTexts::defaults(&org_name);
        let texts = AutoReplyTexts {
            opt_out_confirmation: optional_text(
                &settings.opt_out_confirmation,
                "opt_out_confirmation",
            )?
            .unwrap_or(defaults.opt_out_confirmation),
            opt_in_confirmation: optional_text(
                &settings.opt_in_confirmation,
                "opt_in_confirmation",
            )?
            .unwrap_or(defaults.opt_in_confirmation),
            help: optional_text(&settings.help_text, "help_text")?.unwrap_or(defaults.help),
        };
        let mut stored = StoredSettings {
            carrier: carrier.clone(),
            sending_numbers: numbers,
            account_sid: None,
            messaging_service_sid: None,
            public_key: None,
            messaging_profile_id: None,
            api_base,
            texts,
        };
        // A secret left out keeps the one stored for the same carrier, so
        // changing a text or a number does not mean typing the secret again
        // (and the simulator keeps the credentials its webhooks are signed
        // with). Never for a new api_base: the secret would follow it to an
        // address its owner never gave it to.
        let previous = match self.stored_carrier(org).await? {
            Some((settings, sealed, _)) if settings.carrier == carrier => Some((
                settings,
                String::from_utf8(
                    self.server_key()
                        .sealer()
                        .open(&sealed, org.to_string().as_bytes())?,
                )
                .map_err(|_| {
                    AppError::Inconsistent("a sealed carrier secret is not UTF-8".into())
                })?,
            )),
            _ => None,
        };
        let kept_secret = previous.as_ref().map(|(_, secret)| secret.clone());
        let same_api_base = previous
            .as_ref()
            .is_some_and(|(settings, _)| settings.api_base == stored.api_base);
        let mut secrets_replaced: Vec<String> = Vec::new();
        let mut secret_or_kept = |value: &Option<String>, field: &'static str| match (
            value.as_deref().map(str::trim),
            &kept_secret,
        ) {
            (None | Some(""), Some(kept)) if same_api_base => Ok(kept.clone()),
            (None | Some(""), Some(_)) => Err(AppError::SecretRequired {
                field,
                message: format!(
                    "api_base changed: give {field} again (the stored one is kept only while \
                     the carrier and its api_base stay the same)"
                ),
            }),
            _ => {
                secrets_replaced.push(field.to_owned());
                required(value, field, &carrier)
            }
        };
        let secret = match carrier.as_str() {
            "sim" => {
                if stored.sending_numbers.is_empty() {
                    stored.sending_numbers = match &previous {
                        Some((settings, _)) => settings.sending_numbers.clone(),
                        None => sim_numbers(),
                    };
                }
                match previous {
                    Some((settings, secret)) => {
                        stored.account_sid = settings.account_sid;
                        secret
                    }
                    None => {
                        secrets_replaced.push("auth_token".to_owned());
                        stored.account_sid = Some(format!("AC{}", Uuid::now_v7().simple()));
                        // The simulator signs its webhooks like Twilio, with
                        // a token of its own.
                        hex::encode(rand::random::<[u8; 24]>())
                    }
                }
            }
            "twilio" => {
                stored.account_sid =
                    Some(required(&settings.account_sid, "account_sid", "twilio")?);
                stored.messaging_service_sid =
                    optional_text(&settings.messaging_service_sid, "messaging_service_sid")?;
                secret_or_kept(&settings.auth_token, "auth_token")?
            }
            "telnyx" => {
                let public_key = required(&settings.public_key, "public_key", "telnyx")?;
                let decoded = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    public_key.as_bytes(),
                );
                if decoded.map(|key| key.len()) != Ok(32) {
                    return Err(AppError::invalid(
                        "public_key",
                        "public_key must be the base64 Ed25519 key from the Telnyx portal",
                    ));
                }
                stored.public_key = Some(public_key);
                stored.messaging_profile_id =
                    optional_text(&settings.messaging_profile_id, "messaging_profile_id")?;
                secret_or_kept(&settings.api_key, "api_key")?
            }
            other => {
                return Err(AppError::invalid(
                    "carrier",
                    format!("unknown carrier {other:?}; use sim, twilio or telnyx"),
                ));
            }
        };
        if stored.sending_numbers.is_empty()
            && stored.messaging_service_sid.is_none()
            && stored.messaging_profile_id.is_none()
        {
            return Err(AppError::invalid(
                "sending_numbers",
                "give at least one sending number (or a messaging service / profile)",
            ));
        }
        if stored.sending_numbers.is_empty() {
            return Err(AppError::invalid(
                "sending_numbers",
                "list the numbers of the messaging service too: webhooks are matched to the organization by number",
            ));
        }
        let sealed = self
            .server_key()
            .sealer()
            .seal(secret.as_bytes(), org.to_string().as_bytes());
        let settings_json = serde_json::to_string(&stored)
            .map_err(|err| StoreError::InvalidInput(err.to_string()))?;
        let now = self.clock().now();
        let mut tx = self.events().begin().await?;
        for number in &stored.sending_numbers {
            let owner = sending_numbers::org_of_in(&mut tx, number).await?;
            if owner.is_some_and(|owner| owner != org) {
                tx.rollback().await?;
                return Err(AppError::Conflict(format!(
                    "{number} is already a sending number of another organization"
                )));
            }
        }
        sending_numbers::replace(&mut tx, org, &stored.sending_numbers).await?;
        let account = CarrierAccount {
            carrier: carrier.clone(),
            settings: settings_json,
            sealed_secret: sealed,
            updated_at: now,
        };
        carrier_accounts::upsert(&mut tx, org, &account).await?;
        tx.commit().await?;
        self.carriers.forget(org);
        // The record of the change (its actor says who), without the secret.
        let event = OrgEvent::CarrierSettingsChanged {
            carrier: carrier.clone(),
            api_base: stored.api_base.clone(),
            sending_numbers: stored.sending_numbers.clone(),
            secrets_replaced,
        };
        self.append_any(&org::stream_id(org), &[event], &caller.metadata())
            .await?;
        Ok(self.carrier_view(stored, true, now))
    }

    /// Removes the org's carrier settings, sealed credentials and sending
    /// numbers (owner/admin). Launching and resuming campaigns, and every
    /// click, are refused with `no_carrier` until a carrier is configured
    /// again; texters' queues hold with that reason. The position of the
    /// `CarrierRemoved` event, or `None` when there was no carrier.
    pub async fn remove_carrier(&self, caller: &Caller) -> Result<Option<u64>, AppError> {
        caller.require(Permission::ConfigureCarrier)?;
        let org = caller.org_id;
        let Some((stored, _, _)) = self.stored_carrier(org).await? else {
            return Ok(None);
        };
        let mut tx = self.events().begin().await?;
        sending_numbers::replace(&mut tx, org, &[]).await?;
        let removed = carrier_accounts::delete(&mut tx, org).await?;
        tx.commit().await?;
        self.carriers.forget(org);
        if !removed {
            // Removed by a concurrent request, which recorded it.
            return Ok(None);
        }
        let event = OrgEvent::CarrierRemoved {
            carrier: stored.carrier,
            sending_numbers: stored.sending_numbers,
        };
        self.append_any(&org::stream_id(org), &[event], &caller.metadata())
            .await
            .map(Some)
    }

    /// Whether the org has a carrier messages can be handed to: one it
    /// configured, whose credentials this server can open (the simulator
    /// counts when configured; nothing is implied without configuration).
    pub async fn carrier_ready(&self, org: OrgId) -> Result<bool, AppError> {
        match self.carrier_for(org).await {
            Ok(carrier) => Ok(carrier.is_some()),
            // Stored settings this server cannot use (credentials sealed
            // with another key): nothing could be sent with them.
            Err(AppError::Inconsistent(detail)) => {
                tracing::warn!(%org, %detail, "the org's carrier settings are not usable");
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// The org's carrier settings, without secrets.
    pub async fn carrier_settings(&self, caller: &Caller) -> Result<CarrierView, AppError> {
        caller.require(Permission::ConfigureCarrier)?;
        let (stored, _, updated_at) = self
            .stored_carrier(caller.org_id)
            .await?
            .ok_or(AppError::NotFound("carrier configuration"))?;
        Ok(self.carrier_view(stored, true, updated_at))
    }

    fn carrier_view(
        &self,
        stored: StoredSettings,
        secret_set: bool,
        updated_at: DateTime<Utc>,
    ) -> CarrierView {
        let base = self.public_url().unwrap_or_default();
        let webhooks = match stored.carrier.as_str() {
            "telnyx" => HashMap::from([("telnyx", format!("{base}/webhooks/telnyx"))]),
            _ => HashMap::from([
                ("status", format!("{base}/webhooks/twilio/status")),
                ("inbound", format!("{base}/webhooks/twilio/inbound")),
            ]),
        };
        CarrierView {
            carrier: stored.carrier,
            sending_numbers: stored.sending_numbers,
            account_sid: stored.account_sid,
            messaging_service_sid: stored.messaging_service_sid,
            messaging_profile_id: stored.messaging_profile_id,
            public_key: stored.public_key,
            api_base: stored.api_base,
            opt_out_confirmation: stored.texts.opt_out_confirmation,
            opt_in_confirmation: stored.texts.opt_in_confirmation,
            help_text: stored.texts.help,
            secret_set,
            webhooks,
            updated_at,
        }
    }

    async fn stored_carrier(
        &self,
        org: OrgId,
    ) -> Result<Option<(StoredSettings, String, DateTime<Utc>)>, AppError> {
        let row = carrier_accounts::get(self.database(), org).await?;
        row.map(|account| {
            let settings: StoredSettings = serde_json::from_str(&account.settings)
                .map_err(|err| AppError::Inconsistent(format!("carrier_accounts: {err}")))?;
            Ok((settings, account.sealed_secret, account.updated_at))
        })
        .transpose()
    }

    /// The org's live carrier; `None` when it has not configured one.
    pub async fn carrier_for(
        &self,
        org: OrgId,
    ) -> Result<Option<Arc<ConfiguredCarrier>>, AppError> {
        if let Some(built) = self.carriers.get(org) {
            return Ok(Some(built));
        }
        let Some((stored, sealed, _)) = self.stored_carrier(org).await? else {
            return Ok(None);
        };
        let secret = String::from_utf8(
            self.server_key()
                .sealer()
                .open(&sealed, org.to_string().as_bytes())?,
        )
        .map_err(|_| AppError::Inconsistent("a sealed carrier secret is not UTF-8".into()))?;
        let http = textbank_sms::http_client(CARRIER_TIMEOUT)
            .map_err(|err| StoreError::InvalidInput(format!("carrier HTTP client: {err}")))?;
        let base = self.public_url().unwrap_or_default();
        // Settings stored before the server's policy (or under a wider one)
        // may name a base it no longer allows: the carrier's public API is
        // called instead, so the secret only goes where its owner sent it.
        // (The simulator calls no API.)
        let api_base = stored
            .api_base
            .as_deref()
            .filter(|_| stored.carrier != "sim");
        let api_base = api_base.and_then(|api_base| {
            self.carrier_api_policy()
                .check(api_base)
                .inspect_err(|err| {
                    tracing::warn!(%org, error = %err, "ignoring a carrier api_base the server does not allow");
                })
                .ok()
        });
        let (adapter, webhook_secret, carrier_picks_number): (Arc<dyn Carrier>, String, bool) =
            match stored.carrier.as_str() {
                "sim" => {
                    let sim = &self.send_settings().sim;
                    let config = SimConfig {
                        account_sid: stored.account_sid.clone().unwrap_or_default(),
                        auth_token: secret.clone(),
                        webhook_base: base.clone(),
                        sending_numbers: stored.sending_numbers.clone(),
                        delivery_delay_ms: sim.delivery_delay_ms,
                        failure_rate: sim.failure_rate,
                        reply_rate: sim.reply_rate,
                        opt_out_rate: sim.opt_out_rate,
                        reply_delay_ms: sim.reply_delay_ms,
                        seed: None,
                    };
                    let sim = SimCarrier::new(config, http).until(self.simulators_stop());
                    (Arc::new(sim), secret, false)
                }
                "twilio" => {
                    let mut config = TwilioConfig::new(
                        stored.account_sid.clone().unwrap_or_default(),
                        secret.clone(),
                    );
                    config.messaging_service_sid = stored.messaging_service_sid.clone();
                    if let Some(api_base) = &api_base {
                        config.api_base.clone_from(api_base);
                    }
                    let picks = config.messaging_service_sid.is_some();
                    let callback = Some(format!("{base}/webhooks/twilio/status"));
                    (
                        Arc::new(TwilioCarrier::new(config, http, callback)),
                        secret,
                        picks,
                    )
                }
                "telnyx" => {
                    let public_key = stored.public_key.clone().unwrap_or_default();
                    let mut config = TelnyxConfig::new(secret, public_key.clone());
                    config.messaging_profile_id = stored.messaging_profile_id.clone();
                    if let Some(api_base) = &api_base {
                        config.api_base.clone_from(api_base);
                    }
                    let picks = config.messaging_profile_id.is_some();
                    let webhook = Some(format!("{base}/webhooks/telnyx"));
                    (
                        Arc::new(TelnyxCarrier::new(config, http, webhook)),
                        public_key,
                        picks,
                    )
                }
                other => {
                    return Err(AppError::Inconsistent(format!("unknown carrier {other:?}")));
                }
            };
        let built = Arc::new(ConfiguredCarrier {
            org_id: org,
            kind: stored.carrier,
            adapter,
            sending_numbers: stored.sending_numbers,
            carrier_picks_number,
            webhook_secret,
            texts: stored.texts,
        });
        self.carriers.put(org, built.clone());
        Ok(Some(built))
    }

    /// The org a sending number belongs to.
    pub(crate) async fn org_of_number(&self, number: &str) -> Result<Option<OrgId>, AppError> {
        if let Some(org) = self.carriers.org_of(number) {
            return Ok(Some(org));
        }
        Ok(sending_numbers::org_of(self.database(), number).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulator_numbers_are_valid_distinct_and_fictional() {
        for _ in 0..500 {
            let numbers = sim_numbers();
            assert_eq!(numbers.len(), 3);
            for number in &numbers {
                let parsed =
                    PhoneNumber::parse(number, textbank_domain::phone::Region::US).unwrap();
                assert_eq!(parsed.as_str(), number);
                assert_eq!(&number[5..10], "55501", "{number}");
            }
        }
    }
}
