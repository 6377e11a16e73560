//! The organization's outbound webhook subscriptions (`/v1/webhooks`,
//! owners and admins): the receiver URL, the event types wanted, the signing
//! secret (generated, shown once, sealed at rest, rotatable), the record of
//! deliveries, a manual retry and a test ping. Each change is recorded on
//! the org's stream without the secret. The delivery worker
//! (`webhook_worker`) does the sending.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use textbank_domain::org::{self, OrgEvent};
use textbank_domain::{OrgId, Permission};
use textbank_store::webhooks::{self as store, Delivery, Subscription};
use uuid::Uuid;

use crate::feed::{FeedQuery, public_event};
use crate::webhook_send::{Attempt, new_secret, signer};
use crate::webhook_url::{check_resolved, check_url};
use crate::{App, AppError, Caller};

/// Subscriptions one organization may have.
pub const MAX_WEBHOOKS: usize = 50;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Deliveries one page holds at most, and unless asked.
pub const MAX_DELIVERY_LIMIT: u32 = 200;
const DEFAULT_DELIVERY_LIMIT: u32 = 50;
/// Attempts kept with one delivery (the oldest go first).
pub(crate) const MAX_KEPT_ATTEMPTS: usize = 50;
/// The event type of a test ping.
pub const PING_TYPE: &str = "WebhookPing";

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are posted: an https URL of a public address.
    pub url: String,
    /// Event type names to deliver (e.g. `OptOutRecorded`); empty or
    /// absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// Whether deliveries start at once (default true).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// The body of `PATCH /v1/webhooks/{webhook_id}`: the fields to change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` also clears a `failing` state: delivery resumes with the
    /// event that failed.
    pub enabled: Option<bool>,
}

/// A subscription as the API shows it: never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub webhook_id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// `active`, `disabled` (by a person) or `failing` (disabled by the
    /// server when a delivery's retry window ran out).
    #[schema(value_type = String)]
    pub status: &'static str,
    pub failing_since: Option<DateTime<Utc>>,
    /// The last log position delivered (or not wanted).
    pub delivered_through: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new subscription, with its signing secret: shown this once.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it. It is
    /// never shown again; rotate it to get a new one.
    pub secret: String,
}

/// A new signing secret: shown this once.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub webhook_id: Uuid,
    pub secret: String,
}

// Debug output never shows a signing secret.
impl std::fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("webhook_id", &self.webhook_id)
            .finish_non_exhaustive()
    }
}

/// One delivery, with every attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub delivery_id: Uuid,
    /// `event` or `ping`.
    pub kind: String,
    /// The `webhook-id` header: the event's id (the receiver's key for
    /// deduplication), or the ping's.
    pub message_id: Uuid,
    /// The event's log position (none for a ping).
    pub position: Option<u64>,
    pub event_type: String,
    /// `pending` (being retried), `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of deliveries, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Who the webhook's changes and failures are recorded against: the
/// receiver's `scheme://host[:port]` (a path or query may hold its token).
pub(crate) fn url_origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map_or_else(|_| String::new(), |url| url.origin().ascii_serialization())
}

/// What a sealed secret is bound to: its subscription.
fn seal_context(webhook_id: Uuid) -> Vec<u8> {
    format!("webhook:{webhook_id}").into_bytes()
}

fn view(sub: &Subscription) -> WebhookView {
    let status = match (sub.enabled, sub.failing_since) {
        (true, _) => "active",
        (false, Some(_)) => "failing",
        (false, None) => "disabled",
    };
    WebhookView {
        webhook_id: sub.webhook_id,
        url: sub.url.clone(),
        event_types: sub.event_types.clone(),
        description: sub.description.clone(),
        enabled: sub.enabled,
        status,
        failing_since: sub.failing_since,
        delivered_through: sub.checkpoint,
        created_at: sub.created_at,
        updated_at: sub.updated_at,
    }
}

pub(crate) fn attempts_of(delivery: &Delivery) -> Result<Vec<Attempt>, AppError> {
    serde_json::from_str(&delivery.attempts)
        .map_err(|err| AppError::Inconsistent(format!("webhook_deliveries attempts: {err}")))
}

/// Adds `attempt` to `delivery` (keeping the last [`MAX_KEPT_ATTEMPTS`]).
pub(crate) fn record_attempt(delivery: &mut Delivery, attempt: Attempt) -> Result<(), AppError> {
    let mut attempts = attempts_of(delivery)?;
    attempts.push(attempt);
    let excess = attempts.len().saturating_sub(MAX_KEPT_ATTEMPTS);
    attempts.drain(..excess);
    delivery.attempts = serde_json::to_string(&attempts)
        .map_err(|err| AppError::Inconsistent(format!("an attempt does not serialize: {err}")))?;
    delivery.attempt_count += 1;
    Ok(())
}

fn delivery_view(delivery: &Delivery) -> Result<DeliveryView, AppError> {
    Ok(DeliveryView {
        delivery_id: delivery.delivery_id,
        kind: delivery.kind.clone(),
        message_id: delivery.message_id,
        position: delivery.position,
        event_type: delivery.event_type.clone(),
        status: delivery.status.clone(),
        attempt_count: delivery.attempt_count,
        next_attempt_at: delivery.next_attempt_at,
        attempts: attempts_of(delivery)?,
        created_at: delivery.created_at,
        updated_at: delivery.updated_at,
    })
}

/// A delivery not yet attempted.
pub(crate) fn new_delivery(
    sub: &Subscription,
    kind: &str,
    message_id: Uuid,
    position: Option<u64>,
    event_type: &str,
    now: DateTime<Utc>,
) -> Delivery {
    Delivery {
        delivery_id: Uuid::now_v7(),
        webhook_id: sub.webhook_id,
        org_id: sub.org_id,
        kind: kind.to_owned(),
        message_id,
        position,
        event_type: event_type.to_owned(),
        status: "pending".into(),
        attempts: "[]".into(),
        attempt_count: 0,
        next_attempt_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn checked_types(types: Vec<String>) -> Result<Vec<String>, AppError> {
    let joined = types.join(",");
    let mut types = FeedQuery::parse_types(Some(&joined)).map_err(|_| {
        AppError::invalid(
            "event_types",
            "event_types must be up to 50 event type names (letters and digits, e.g. \
             OptOutRecorded)",
        )
    })?;
    types.sort();
    types.dedup();
    Ok(types)
}

fn checked_description(description: String) -> Result<String, AppError> {
    let description = description.trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION_CHARS || description.contains('\0') {
        return Err(AppError::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description)
}

impl App {
    /// The receiver URL as it will be stored, once the policy allows it.
    async fn checked_url(&self, raw: &str) -> Result<String, AppError> {
        let allow_private = self.webhook_settings().allow_private;
        let url = check_url(raw, allow_private)?;
        check_resolved(&url, allow_private).await?;
        Ok(url.to_string())
    }

    fn seal_secret(&self, webhook_id: Uuid, secret: &str) -> String {
        self.server_key()
            .sealer()
            .seal(secret.as_bytes(), &seal_context(webhook_id))
    }

    /// The subscription's signing secret, unsealed.
    pub(crate) fn open_secret(&self, sub: &Subscription) -> Result<String, AppError> {
        let plain = self
            .server_key()
            .sealer()
            .open(&sub.sealed_secret, &seal_context(sub.webhook_id))?;
        String::from_utf8(plain)
            .map_err(|_| AppError::Inconsistent("a sealed webhook secret is not UTF-8".into()))
    }

    async fn owned_webhook(&self, org: OrgId, webhook_id: Uuid) -> Result<Subscription, AppError> {
        store::get(self.database(), org, webhook_id)
            .await?
            .ok_or(AppError::NotFound("webhook"))
    }

    /// Records a change of the subscription on the org's stream.
    pub(crate) async fn record_webhook_change(
        &self,
        sub: &Subscription,
        metadata: &textbank_domain::EventMetadata,
    ) -> Result<(), AppError> {
        let event = OrgEvent::WebhookChanged {
            webhook_id: sub.webhook_id,
            url_origin: url_origin(&sub.url),
            event_types: sub.event_types.clone(),
            description: sub.description.clone(),
            enabled: sub.enabled,
            failing: sub.failing_since.is_some(),
        };
        self.append_any(&org::stream_id(sub.org_id), &[event], metadata)
            .await?;
        Ok(())
    }

    /// Subscribes a receiver to the org's events from now on.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        new: NewWebhook,
    ) -> Result<CreatedWebhook, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let event_types = checked_types(new.event_types)?;
        let description = checked_description(new.description)?;
        let url = self.checked_url(&new.url).await?;
        if store::list(self.database(), caller.org_id).await?.len() >= MAX_WEBHOOKS {
            return Err(AppError::TooMany {
                code: "too_many_webhooks",
                message: format!(
                    "an organization has at most {MAX_WEBHOOKS} webhooks; delete one first"
                ),
            });
        }
        let webhook_id = Uuid::now_v7();
        let secret = new_secret();
        let now = self.clock().now();
        let sub = Subscription {
            webhook_id,
            org_id: caller.org_id,
            url,
            event_types,
            description,
            enabled: new.enabled,
            sealed_secret: self.seal_secret(webhook_id, &secret),
            failing_since: None,
            // Events from now on: the subscription's own record is the
            // first it delivers.
            checkpoint: self.events().head_position().await?,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.events().begin().await?;
        store::insert(&mut tx, &sub).await?;
        tx.commit().await?;
        let event = OrgEvent::WebhookSubscribed {
            webhook_id,
            url_origin: url_origin(&sub.url),
            event_types: sub.event_types.clone(),
            description: sub.description.clone(),
            enabled: sub.enabled,
        };
        self.append_any(&org::stream_id(caller.org_id), &[event], &caller.metadata())
            .await?;
        self.wake_webhook_worker();
        Ok(CreatedWebhook {
            webhook: view(&sub),
            secret,
        })
    }

    /// The org's subscriptions, oldest first.
    pub async fn webhooks(&self, caller: &Caller) -> Result<Vec<WebhookView>, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let subs = store::list(self.database(), caller.org_id).await?;
        Ok(subs.iter().map(view).collect())
    }

    pub async fn webhook(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
    ) -> Result<WebhookView, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        Ok(view(&self.owned_webhook(caller.org_id, webhook_id).await?))
    }

    /// Changes the fields given.
    pub async fn change_webhook(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
        change: WebhookChange,
    ) -> Result<WebhookView, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let event_types = change.event_types.map(checked_types).transpose()?;
        let description = change.description.map(checked_description).transpose()?;
        let url = match &change.url {
            Some(url) => Some(self.checked_url(url).await?),
            None => None,
        };
        let mut tx = self.events().begin().await?;
        let Some(mut sub) = store::get_in(&mut tx, caller.org_id, webhook_id).await? else {
            tx.rollback().await?;
            return Err(AppError::NotFound("webhook"));
        };
        if let Some(url) = url {
            sub.url = url;
        }
        if let Some(types) = event_types {
            sub.event_types = types;
        }
        if let Some(description) = description {
            sub.description = description;
        }
        if let Some(enabled) = change.enabled {
            sub.enabled = enabled;
            if enabled {
                sub.failing_since = None;
            }
        }
        sub.updated_at = self.clock().now();
        store::update(&mut tx, &sub).await?;
        tx.commit().await?;
        self.record_webhook_change(&sub, &caller.metadata()).await?;
        self.wake_webhook_worker();
        Ok(view(&sub))
    }

    /// Deletes the subscription and its delivery record. Deleting one the
    /// org already deleted succeeds again (a retried request whose answer
    /// was lost); another org's is not found.
    pub async fn delete_webhook(&self, caller: &Caller, webhook_id: Uuid) -> Result<(), AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let mut tx = self.events().begin().await?;
        if !store::delete(&mut tx, caller.org_id, webhook_id).await? {
            tx.rollback().await?;
            if self.webhook_removed(caller.org_id, webhook_id).await? {
                return Ok(());
            }
            return Err(AppError::NotFound("webhook"));
        }
        tx.commit().await?;
        let event = OrgEvent::WebhookRemoved { webhook_id };
        self.append_any(&org::stream_id(caller.org_id), &[event], &caller.metadata())
            .await?;
        Ok(())
    }

    /// Whether the org's stream records the removal of `webhook_id`.
    async fn webhook_removed(&self, org: OrgId, webhook_id: Uuid) -> Result<bool, AppError> {
        const PAGE: usize = 1_000;
        let stream = org::stream_id(org);
        let wanted = webhook_id.to_string();
        let mut from = 0;
        loop {
            let events = self.events().read_stream(&stream, from, PAGE).await?;
            if events.iter().any(|event| {
                event.event_type == "WebhookRemoved"
                    && event.data["webhook_id"].as_str() == Some(wanted.as_str())
            }) {
                return Ok(true);
            }
            match events.last() {
                Some(last) if events.len() == PAGE => from = last.version + 1,
                _ => return Ok(false),
            }
        }
    }

    /// Replaces the signing secret; the new one is shown this once.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
    ) -> Result<RotatedSecret, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let secret = new_secret();
        let mut tx = self.events().begin().await?;
        let Some(mut sub) = store::get_in(&mut tx, caller.org_id, webhook_id).await? else {
            tx.rollback().await?;
            return Err(AppError::NotFound("webhook"));
        };
        sub.sealed_secret = self.seal_secret(webhook_id, &secret);
        sub.updated_at = self.clock().now();
        store::update(&mut tx, &sub).await?;
        tx.commit().await?;
        let event = OrgEvent::WebhookSecretRotated { webhook_id };
        self.append_any(&org::stream_id(caller.org_id), &[event], &caller.metadata())
            .await?;
        Ok(RotatedSecret { webhook_id, secret })
    }

    /// A page of the subscription's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<DeliveryPage, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let limit = limit.unwrap_or(DEFAULT_DELIVERY_LIMIT);
        if !(1..=MAX_DELIVERY_LIMIT).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_DELIVERY_LIMIT}"),
            ));
        }
        let before = cursor
            .map(|raw| {
                raw.parse::<Uuid>().map_err(|_| {
                    AppError::invalid("cursor", "cursor is not one this API handed out")
                })
            })
            .transpose()?;
        self.owned_webhook(caller.org_id, webhook_id).await?;
        let mut rows = store::deliveries(
            self.database(),
            caller.org_id,
            webhook_id,
            before,
            limit + 1,
        )
        .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.delivery_id.to_string())
        } else {
            None
        };
        let deliveries = rows.iter().map(delivery_view).collect::<Result<_, _>>()?;
        Ok(DeliveryPage {
            deliveries,
            next_cursor,
        })
    }

    /// Sends a delivery that is not being retried (one that failed, or
    /// succeeded and is wanted again) once more, now; answers with the
    /// attempt recorded.
    pub async fn retry_webhook_delivery(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<DeliveryView, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let sub = self.owned_webhook(caller.org_id, webhook_id).await?;
        let mut delivery =
            store::get_delivery(self.database(), caller.org_id, webhook_id, delivery_id)
                .await?
                .ok_or(AppError::NotFound("delivery"))?;
        if delivery.status == "pending" {
            return Err(AppError::Conflict(
                "the server is still retrying this delivery; its next attempt is at \
                 next_attempt_at"
                    .into(),
            ));
        }
        let body = match delivery.position {
            Some(position) => self.event_body(&sub, position, delivery.message_id).await?,
            None => ping_body(&sub, delivery.message_id, self.clock().now())?,
        };
        self.attempt_now(&sub, &mut delivery, &body).await?;
        delivery_view(&delivery)
    }

    /// Sends a test ping (type `WebhookPing`) now, enabled or not; answers
    /// with the attempt recorded.
    pub async fn ping_webhook(
        &self,
        caller: &Caller,
        webhook_id: Uuid,
    ) -> Result<DeliveryView, AppError> {
        caller.require(Permission::ManageWebhooks)?;
        let sub = self.owned_webhook(caller.org_id, webhook_id).await?;
        let now = self.clock().now();
        let ping_id = Uuid::now_v7();
        let mut delivery = new_delivery(&sub, "ping", ping_id, None, PING_TYPE, now);
        let body = ping_body(&sub, ping_id, now)?;
        self.attempt_now(&sub, &mut delivery, &body).await?;
        delivery_view(&delivery)
    }

    /// One attempt made by this request (not the worker), recorded.
    async fn attempt_now(
        &self,
        sub: &Subscription,
        delivery: &mut Delivery,
        body: &[u8],
    ) -> Result<(), AppError> {
        let signer = signer(&self.open_secret(sub)?)?;
        let attempt = self
            .webhook_sender()?
            .attempt(
                &sub.url,
                delivery.message_id,
                body,
                &signer,
                self.clock().now(),
            )
            .await;
        delivery.status = if attempt.succeeded() {
            "succeeded"
        } else {
            "failed"
        }
        .into();
        delivery.next_attempt_at = None;
        delivery.updated_at = attempt.attempted_at;
        record_attempt(delivery, attempt)?;
        let mut tx = self.events().begin().await?;
        store::save_deliveries(&mut tx, std::slice::from_ref(delivery)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The body a delivery of the event at `position` carries.
    async fn event_body(
        &self,
        sub: &Subscription,
        position: u64,
        event_id: Uuid,
    ) -> Result<Vec<u8>, AppError> {
        let event = self
            .events()
            .read_all(position, 1)
            .await?
            .into_iter()
            .next()
            .filter(|event| event.event_id == event_id && event.metadata.org_id == Some(sub.org_id))
            .ok_or_else(|| {
                AppError::Inconsistent(format!("delivery of position {position} has no event"))
            })?;
        webhook_body(&event)
    }
}

/// The body of an event's delivery: its public representation as the feed
/// gives an integration (without where requests came from).
pub(crate) fn webhook_body(event: &textbank_store::RecordedEvent) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(&public_event(event, false))
        .map_err(|err| AppError::Inconsistent(format!("an event does not serialize: {err}")))
}

/// A test ping's body.
fn ping_body(sub: &Subscription, ping_id: Uuid, now: DateTime<Utc>) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(&json!({
        "format": crate::feed::FORMAT,
        "id": ping_id,
        "type": PING_TYPE,
        "webhook_id": sub.webhook_id,
        "occurred_at": now,
    }))
    .map_err(|err| AppError::Inconsistent(format!("a ping does not serialize: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_origin_leaves_out_path_and_query() {
        assert_eq!(
            url_origin("https://hooks.example.org:8443/in/T0K3N?key=s3cret"),
            "https://hooks.example.org:8443"
        );
        assert_eq!(
            url_origin("https://crm.example.org/x"),
            "https://crm.example.org"
        );
    }

    #[test]
    fn event_types_are_names_sorted_once() {
        assert_eq!(
            checked_types(vec![
                "ReplyReceived".into(),
                "OptOutRecorded".into(),
                "ReplyReceived".into()
            ])
            .unwrap(),
            ["OptOutRecorded", "ReplyReceived"]
        );
        assert!(checked_types(vec!["Opt-Out".into()]).is_err());
        assert!(checked_types(Vec::new()).unwrap().is_empty());
    }

    fn subscription() -> Subscription {
        Subscription {
            webhook_id: Uuid::now_v7(),
            org_id: OrgId::new(),
            url: "https://hooks.example.org".into(),
            event_types: Vec::new(),
            description: String::new(),
            enabled: true,
            sealed_secret: String::new(),
            failing_since: None,
            checkpoint: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let created = CreatedWebhook {
            webhook: view(&subscription()),
            secret: "whsec_c2VjcmV0".into(),
        };
        let rotated = RotatedSecret {
            webhook_id: Uuid::now_v7(),
            secret: "whsec_c2VjcmV0".into(),
        };
        assert!(!format!("{created:?} {rotated:?}").contains("whsec_"));
    }

    #[test]
    fn attempts_are_kept_to_the_last_fifty() {
        let sub = subscription();
        let mut delivery = new_delivery(&sub, "event", Uuid::now_v7(), Some(1), "X", Utc::now());
        for n in 0..60 {
            let attempt = Attempt {
                attempted_at: Utc::now(),
                status_code: Some(500),
                latency_ms: n,
                error: None,
                response_excerpt: None,
            };
            record_attempt(&mut delivery, attempt).unwrap();
        }
        let kept = attempts_of(&delivery).unwrap();
        assert_eq!(kept.len(), MAX_KEPT_ATTEMPTS);
        assert_eq!(kept[0].latency_ms, 10);
        assert_eq!(delivery.attempt_count, 60);
    }
}
