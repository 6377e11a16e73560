//! Carrier webhooks: delivery reports and voters' replies. A webhook names
//! one of our sending numbers; that number names the organization whose
//! credentials must verify the signature. Nothing is recorded before the
//! signature verifies.

use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, Inbound, Report};
use textbank_domain::{Actor, EventMetadata, MessageId, OrgId};
use textbank_sms::{DeliveryReport, InboundMessage, WebhookEvent, telnyx, twilio};

use crate::carrier::ConfiguredCarrier;
use crate::command;
use crate::{App, AppError};

/// Largest webhook body accepted (Twilio's and Telnyx's are a few KB).
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// Which Twilio webhook was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioHook {
    Status,
    Inbound,
}

/// What a verified webhook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Recorded at this log position.
    Recorded(u64),
    /// Already recorded (carriers retry); nothing new.
    Duplicate,
    /// Verified but of no use to us (an unknown status, an event type we
    /// do not handle).
    Ignored(String),
}

fn bad_signature(why: &str) -> AppError {
    AppError::BadSignature(format!("webhook rejected: {why}"))
}

fn carrier_metadata(org: OrgId, carrier: &str) -> EventMetadata {
    EventMetadata::new(
        Some(org),
        Actor::Carrier {
            carrier: carrier.to_owned(),
        },
    )
}

impl App {
    /// A Twilio (or simulator) webhook. `path_and_query` is the request's,
    /// appended to the public URL to rebuild the URL Twilio signed.
    pub async fn twilio_webhook(
        &self,
        hook: TwilioHook,
        path_and_query: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, AppError> {
        let signature = signature.ok_or_else(|| bad_signature("no X-Twilio-Signature header"))?;
        let params =
            twilio::form_params(body).map_err(|_| bad_signature("unreadable form body"))?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        // Our number: the sender of a status report, the recipient of a reply.
        let ours = match hook {
            TwilioHook::Status => param("From"),
            TwilioHook::Inbound => param("To"),
        };
        let carrier = self
            .carrier_of_number(ours)
            .await?
            .filter(|carrier| matches!(carrier.kind.as_str(), "twilio" | "sim"))
            .ok_or_else(|| bad_signature("not one of our Twilio sending numbers"))?;
        let url = format!("{}{path_and_query}", self.public_url().unwrap_or_default());
        if !twilio::verify_signature(carrier.webhook_secret(), &url, &params, signature) {
            return Err(bad_signature("the signature does not verify"));
        }
        let event = match hook {
            TwilioHook::Status => twilio::parse_status_callback(&params),
            TwilioHook::Inbound => twilio::parse_inbound(&params),
        }
        .map_err(|err| AppError::Invalid {
            field: "body",
            message: err.to_string(),
        })?;
        self.record_webhook(&carrier, event).await
    }

    /// A Telnyx webhook, verified with the org's Ed25519 public key.
    pub async fn telnyx_webhook(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<WebhookOutcome, AppError> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(bad_signature(
                "missing telnyx-signature-ed25519 or telnyx-timestamp",
            ));
        };
        // Read unverified only to find whose key verifies it.
        let event = telnyx::parse_webhook(body).map_err(|_| bad_signature("unreadable body"))?;
        let ours = match &event {
            WebhookEvent::Delivery(report) => report.from.as_deref(),
            WebhookEvent::Inbound(inbound) => Some(inbound.to.as_str()),
            WebhookEvent::Ignored(_) => None,
        };
        let Some(carrier) = self
            .carrier_of_number(ours)
            .await?
            .filter(|carrier| carrier.kind == "telnyx")
        else {
            // An event without one of our numbers cannot be attributed
            // (and so not verified): acknowledged, not recorded.
            return match event {
                WebhookEvent::Ignored(what) => Ok(WebhookOutcome::Ignored(what)),
                _ => Err(bad_signature("not one of our Telnyx sending numbers")),
            };
        };
        telnyx::verify_webhook(
            carrier.webhook_secret(),
            signature,
            timestamp,
            body,
            self.clock().now(),
        )
        .map_err(|err| bad_signature(&err.to_string()))?;
        self.record_webhook(&carrier, event).await
    }

    async fn carrier_of_number(
        &self,
        number: Option<&str>,
    ) -> Result<Option<std::sync::Arc<ConfiguredCarrier>>, AppError> {
        let Some(number) =
            number.and_then(|raw| PhoneNumber::parse(raw, self.default_region()).ok())
        else {
            return Ok(None);
        };
        let Some(org) = self.org_of_number(number.as_str()).await? else {
            return Ok(None);
        };
        self.carrier_for(org).await
    }

    async fn record_webhook(
        &self,
        carrier: &ConfiguredCarrier,
        event: WebhookEvent,
    ) -> Result<WebhookOutcome, AppError> {
        match event {
            WebhookEvent::Delivery(report) => self.record_report(carrier, report).await,
            WebhookEvent::Inbound(inbound) => self.record_inbound(carrier, inbound).await,
            WebhookEvent::Ignored(what) => {
                tracing::debug!(carrier = %carrier.kind, %what, "webhook ignored");
                Ok(WebhookOutcome::Ignored(what))
            }
        }
    }

    async fn record_report(
        &self,
        carrier: &ConfiguredCarrier,
        report: DeliveryReport,
    ) -> Result<WebhookOutcome, AppError> {
        let Some(phone) = report
            .to
            .as_deref()
            .and_then(|raw| PhoneNumber::parse(raw, self.default_region()).ok())
        else {
            return Ok(WebhookOutcome::Ignored(
                "a delivery report without a recipient number".into(),
            ));
        };
        let report = Report {
            carrier: carrier.kind.clone(),
            carrier_message_id: report.carrier_message_id,
            status: report.status,
            error_code: report.error_code,
        };
        let stream = recipient::stream_id(carrier.org_id, &phone);
        let written = command::execute(
            self,
            &stream,
            &carrier_metadata(carrier.org_id, &carrier.kind),
            |state| Ok(recipient::decide_report(state, &report)),
        )
        .await?;
        Ok(written.map_or(WebhookOutcome::Duplicate, WebhookOutcome::Recorded))
    }

    async fn record_inbound(
        &self,
        carrier: &ConfiguredCarrier,
        inbound: InboundMessage,
    ) -> Result<WebhookOutcome, AppError> {
        let phone = PhoneNumber::parse(&inbound.from, self.default_region()).map_err(|err| {
            AppError::Invalid {
                field: "From",
                message: format!("the sender's number: {err}"),
            }
        })?;
        let inbound = Inbound {
            message_id: MessageId::new(),
            carrier: carrier.kind.clone(),
            carrier_message_id: inbound.carrier_message_id,
            phone: phone.clone(),
            to: inbound.to,
            body: inbound.body,
            texts: carrier.texts.clone(),
        };
        let stream = recipient::stream_id(carrier.org_id, &phone);
        let written = command::execute(
            self,
            &stream,
            &carrier_metadata(carrier.org_id, &carrier.kind),
            |state| Ok(recipient::decide_inbound(state, &inbound, MessageId::new)),
        )
        .await?;
        Ok(written.map_or(WebhookOutcome::Duplicate, WebhookOutcome::Recorded))
    }
}
