//! textbank's application layer: configuration and the services the HTTP API
//! and the CLI call. Command handlers (load a stream, decide, append) live
//! here as they arrive; the API and the CLI stay thin.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod addresses;
mod assignment;
pub mod audit;
mod background;
mod caller;
mod campaign;
mod campaign_export;
pub mod campaign_metrics;
mod carrier;
mod carrier_api;
pub mod click_token;
mod command;
mod config;
mod contact_copier;
mod conversation;
pub mod csv_shape;
pub mod demo;
mod dispatch;
mod error;
pub mod feed;
mod handling;
mod import;
pub mod inbox;
mod keys;
mod login_limit;
mod opt_outs;
mod org;
pub mod secrets;
mod send;
pub mod sign_in;
pub mod stage_times;
mod stream_cache;
mod webhook_send;
mod webhook_subscriptions;
mod webhook_url;
mod webhook_worker;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use textbank_domain::Clock;
use textbank_domain::phone::Region;
use textbank_domain::recipient::RecipientState;
use textbank_projections::{Projector, catch_up};
use textbank_store::{ConnectOptions, Database, EventStore, SqlEventStore, StoreResult};
use tokio::sync::watch;

pub use assignment::{Assigned, Assignments, Reassigned, Released, TexterAssignment};
pub use background::Background;
pub use caller::Caller;
pub use campaign::{
    CampaignCopy, CampaignTransitioned, CampaignWritten, NewCampaign, SampleMessage, SettingsChange,
};
pub use carrier::{CarrierSettings, CarrierView, ConfiguredCarrier};
pub use carrier_api::{CarrierApiPolicy, DEFAULT_CARRIER_APIS};
pub use config::{
    Config, DEFAULT_BIND, DEFAULT_DATABASE_URL, DatabaseSource, SecretKeySource, SendSettings,
    SimSettings, WebhookSettings,
};
pub use conversation::{Answer, Thread, ThreadEntry};
pub use dispatch::CHECKPOINT as DISPATCH_CHECKPOINT;
pub use error::AppError;
pub use handling::{BulkFailure, BulkOutcome, Handled, MAX_BULK, ReleasedMine, Selection};
pub use import::{ImportLimits, ImportSummary, ListDeclaration};
pub use opt_outs::{
    MAX_OPT_OUT_BYTES, MAX_OPT_OUT_NUMBERS, OptOutEntry, OptOutExport, OptOutFormat, OptOutImport,
};
pub use org::{AddedMember, CreatedOrg, IssuedKey, TexterName};
pub use secrets::ServerKey;
pub use send::{Click, MAX_QUEUE_LIMIT, Queue, QueueHold, QueuedMessage, ReplyBody, Sent};
pub use webhook_send::Attempt;
pub use webhook_subscriptions::{
    CreatedWebhook, DeliveryPage, DeliveryView, MAX_DELIVERY_LIMIT, MAX_WEBHOOKS, NewWebhook,
    PING_TYPE, RotatedSecret, WebhookChange, WebhookView,
};
pub use webhook_worker::ROLE as WEBHOOKS_ROLE;
pub use webhooks::{MAX_WEBHOOK_BYTES, TwilioHook, WebhookOutcome};

/// How long a query waits for its read model to catch up with a write
/// before answering 503.
const PROJECTION_WAIT: Duration = Duration::from_secs(2);

/// Everything a request or a job needs: the event store and the clock.
#[derive(Clone)]
pub struct App {
    /// The event log: the SQL store, or KurrentDB beside it (ADR 0030).
    store: Arc<dyn EventStore>,
    /// The database of the read models, checkpoints and sessions.
    database: Database,
    clock: Arc<dyn Clock>,
    default_region: Region,
    import_limits: ImportLimits,
    server_key: ServerKey,
    send: SendSettings,
    /// The base URL carriers post webhooks to; set once the server is bound.
    public_url: Arc<RwLock<Option<String>>>,
    /// Positions reached by the projectors running in the background.
    progress: Arc<Mutex<HashMap<&'static str, watch::Receiver<u64>>>>,
    carriers: carrier::Carriers,
    login_limiter: login_limit::LoginLimiter,
    trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// Where carrier API calls (with the org's carrier secret) may go.
    carrier_api: Arc<CarrierApiPolicy>,
    /// Folded recipient streams for the send path's commands.
    recipients: Arc<stream_cache::StreamCache<RecipientState>>,
    /// Turns true at shutdown: simulated carriers drop callbacks to come.
    simulators_stop: Arc<watch::Sender<bool>>,
    webhook_settings: Arc<WebhookSettings>,
    /// The outbound webhooks' client (`None` if it could not be built:
    /// deliveries then fail with an internal error, logged).
    webhook_sender: Option<webhook_send::WebhookSender>,
    /// Wakes the webhook worker when a subscription changes here.
    webhook_wake: Arc<tokio::sync::Notify>,
    /// Wakes the contact copier when a campaign here has lists to copy.
    copier_wake: Arc<tokio::sync::Notify>,
    /// Where clicks spend their time, stage by stage.
    stage_times: Arc<stage_times::StageTimes>,
}

impl App {
    /// The app as configured: opens the database (applying pending
    /// migrations) unless it comes open, and loads the server key.
    pub async fn open(config: &Config) -> StoreResult<Self> {
        let store = match &config.database {
            DatabaseSource::Url(url) => {
                let options = ConnectOptions {
                    max_connections: config.max_connections,
                    migrate: true,
                    sqlite_mmap_bytes: config.sqlite_mmap_bytes,
                    sqlite_cache_bytes: config.sqlite_cache_bytes,
                };
                SqlEventStore::open(url, &options).await?
            }
            DatabaseSource::Open(database) => SqlEventStore::on_database(database.clone()).await?,
        };
        let store = Arc::new(store);
        let database = store.database().clone();
        let events = open_event_log(config.event_store_url.as_deref(), store).await?;
        let server_key = match &config.secret_key {
            SecretKeySource::Hex(hex) => ServerKey::from_hex(hex),
            SecretKeySource::File(path) => ServerKey::load_or_create(path),
            SecretKeySource::Generated => Ok(ServerKey::generate()),
        }
        .map_err(|err| textbank_store::StoreError::InvalidInput(err.to_string()))?;
        let app = Self::on_event_log(events, database, config.clock.clone())
            .with_default_region(config.default_region)
            .with_import_limits(config.import_limits)
            .with_server_key(server_key)
            .with_send_settings(config.send.clone())
            .with_trusted_proxies(config.trusted_proxies.clone())
            .with_carrier_api_policy(config.carrier_api.clone())
            .with_webhook_settings(config.webhooks.clone());
        if let Some(url) = &config.public_url {
            app.set_public_url(url);
        }
        Ok(app)
    }

    /// An app with a fresh random server key (tests, benchmarks).
    pub fn new(store: Arc<SqlEventStore>, clock: Arc<dyn Clock>) -> Self {
        let database = store.database().clone();
        Self::on_event_log(store, database, clock)
    }

    /// An app whose log is `store` and whose read models are in `database`.
    fn on_event_log(store: Arc<dyn EventStore>, database: Database, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            database,
            clock,
            default_region: Region::US,
            import_limits: ImportLimits::default(),
            server_key: ServerKey::generate(),
            send: SendSettings::default(),
            public_url: Arc::new(RwLock::new(None)),
            progress: Arc::default(),
            carriers: carrier::Carriers::default(),
            login_limiter: login_limit::LoginLimiter::default(),
            trusted_proxies: Arc::default(),
            carrier_api: Arc::default(),
            recipients: Arc::default(),
            simulators_stop: Arc::new(watch::channel(false).0),
            webhook_settings: Arc::default(),
            webhook_sender: build_webhook_sender(&WebhookSettings::default()),
            webhook_wake: Arc::default(),
            copier_wake: Arc::default(),
            stage_times: Arc::default(),
        }
    }

    /// How outbound webhooks are delivered (rebuilds their client).
    pub fn with_webhook_settings(mut self, settings: WebhookSettings) -> Self {
        self.webhook_sender = build_webhook_sender(&settings);
        self.webhook_settings = Arc::new(settings);
        self
    }

    pub fn webhook_settings(&self) -> &WebhookSettings {
        &self.webhook_settings
    }

    pub(crate) fn webhook_sender(&self) -> Result<&webhook_send::WebhookSender, AppError> {
        self.webhook_sender.as_ref().ok_or_else(|| {
            AppError::Inconsistent("the outbound webhook HTTP client could not be built".into())
        })
    }

    pub(crate) fn webhook_wake(&self) -> Arc<tokio::sync::Notify> {
        self.webhook_wake.clone()
    }

    /// Lets the webhook worker see a changed subscription now rather than
    /// at its next scan.
    pub(crate) fn wake_webhook_worker(&self) {
        self.webhook_wake.notify_one();
    }

    /// Where clicks spend their time, stage by stage, since the start.
    pub fn stage_times(&self) -> &stage_times::StageTimes {
        &self.stage_times
    }

    pub(crate) fn copier_wake(&self) -> Arc<tokio::sync::Notify> {
        self.copier_wake.clone()
    }

    /// Lets the contact copier start on a new campaign's lists now rather
    /// than at its next scan.
    pub(crate) fn wake_contact_copier(&self) {
        self.copier_wake.notify_one();
    }

    /// What a simulated carrier watches to know the server is shutting down.
    pub(crate) fn simulators_stop(&self) -> watch::Receiver<bool> {
        self.simulators_stop.subscribe()
    }

    /// Stops the simulated carriers: callbacks (delivery reports, replies)
    /// not yet posted are dropped. Part of shutdown, after the dispatcher.
    pub fn stop_simulators(&self) {
        self.simulators_stop.send_replace(true);
    }

    pub fn with_server_key(mut self, key: ServerKey) -> Self {
        self.server_key = key;
        self
    }

    pub fn with_send_settings(mut self, send: SendSettings) -> Self {
        self.send = send;
        self
    }

    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    pub fn with_carrier_api_policy(mut self, policy: CarrierApiPolicy) -> Self {
        self.carrier_api = Arc::new(policy);
        self
    }

    pub(crate) fn carrier_api_policy(&self) -> &CarrierApiPolicy {
        &self.carrier_api
    }

    /// The client address of a request from `peer` (see
    /// [`client_address`]).
    pub fn client_address(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: Option<&str>,
    ) -> std::net::IpAddr {
        client_address(&self.trusted_proxies, peer, forwarded_for)
    }

    pub(crate) fn recipients(&self) -> &stream_cache::StreamCache<RecipientState> {
        &self.recipients
    }

    pub fn server_key(&self) -> &ServerKey {
        &self.server_key
    }

    pub fn send_settings(&self) -> &SendSettings {
        &self.send
    }

    /// Sets the URL carriers reach this server at, unless one was configured.
    pub fn set_public_url(&self, url: &str) {
        let mut current = self
            .public_url
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.is_none() {
            *current = Some(url.trim_end_matches('/').to_owned());
        }
    }

    /// The URL carriers reach this server at.
    pub fn public_url(&self) -> Option<String> {
        self.public_url
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until `projector` has applied the log up to `position`: via the
    /// background follower when one runs, else by applying events here.
    pub async fn wait_for_projection(
        &self,
        projector: &dyn Projector,
        position: u64,
    ) -> Result<(), AppError> {
        // A position past the end of the log is none a write returned: the
        // caller's mistake (422), not a read model that is behind (503).
        let known_head = *self.events().subscribe().borrow();
        if position > known_head {
            let head = self.events().head_position().await?;
            if position > head {
                return Err(AppError::Invalid {
                    field: "min_position",
                    message: format!(
                        "min_position {position} is past the end of the log ({head}); pass a \
                         position a write returned"
                    ),
                });
            }
        }
        let follower = self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(projector.name())
            .cloned();
        let Some(mut reached) = follower else {
            catch_up(self.events(), projector).await?;
            return Ok(());
        };
        let waited = tokio::time::timeout(PROJECTION_WAIT, async {
            while *reached.borrow_and_update() < position {
                if reached.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await;
        match waited {
            Ok(true) => Ok(()),
            // The follower stopped (shutdown): apply the events here.
            Ok(false) => {
                catch_up(self.events(), projector).await?;
                Ok(())
            }
            Err(_) => Err(AppError::Unavailable {
                code: "projection_lagging",
                message: format!(
                    "the {} read model has not reached position {position} yet; try again",
                    projector.name()
                ),
            }),
        }
    }

    pub(crate) fn register_progress(&self, name: &'static str, reached: watch::Receiver<u64>) {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name, reached);
    }

    /// The country assumed for phone numbers written without a country code.
    pub fn with_default_region(mut self, region: Region) -> Self {
        self.default_region = region;
        self
    }

    /// Size limits of list uploads.
    pub fn with_import_limits(mut self, limits: ImportLimits) -> Self {
        self.import_limits = limits;
        self
    }

    pub fn import_limits(&self) -> ImportLimits {
        self.import_limits
    }

    pub fn default_region(&self) -> Region {
        self.default_region
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn events(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// The database the read models live in.
    pub fn database(&self) -> &Database {
        &self.database
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Is the database reachable right now?
    pub async fn ready(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    /// Is the event log reachable right now (the same answer as
    /// [`App::ready`] when the log is in the database)?
    pub async fn event_log_ready(&self) -> StoreResult<()> {
        self.store.ping_log().await
    }

    /// Whether the database takes writes (see `Database::probe_write`).
    pub async fn writable(&self) -> StoreResult<()> {
        self.database().probe_write().await
    }

    /// Each read model's name and the log position it has applied up to.
    pub async fn projection_positions(&self) -> StoreResult<Vec<(&'static str, u64)>> {
        let projectors = textbank_projections::all();
        let (_, statuses) =
            textbank_projections::rebuild::status(self.events(), &projectors).await?;
        Ok(statuses
            .into_iter()
            .map(|one| (one.projector, one.position))
            .collect())
    }

    pub async fn close(&self) {
        self.database.close().await;
    }
}

/// The event log a configuration names: KurrentDB beside the SQL store when
/// an event store URL is given (with the `kurrentdb` feature), the SQL
/// store itself otherwise.
pub async fn open_event_log(
    url: Option<&str>,
    sql: Arc<SqlEventStore>,
) -> StoreResult<Arc<dyn EventStore>> {
    let Some(url) = url else {
        return Ok(sql);
    };
    #[cfg(feature = "kurrentdb")]
    {
        if textbank_store::is_kurrentdb_url(url) {
            let options = textbank_store::KurrentDbOptions::default();
            let store = textbank_store::KurrentDbStore::open(url, sql, &options).await?;
            tracing::info!(event_store = %textbank_store::redact_url(url), "the event log is on KurrentDB");
            return Ok(Arc::new(store));
        }
    }
    let _ = sql;
    Err(textbank_store::StoreError::UnsupportedUrl(
        unsupported_event_store(url),
    ))
}

/// Why an event store URL cannot be used by this build.
fn unsupported_event_store(url: &str) -> String {
    let url = textbank_store::redact_url(url);
    if cfg!(feature = "kurrentdb") {
        format!("{url}: expected kurrentdb://HOST:2113 (or another KurrentDB connection string)")
    } else {
        format!(
            "{url}: this textbank was built without KurrentDB support; \
             build it with `--features kurrentdb` to keep the event log in KurrentDB"
        )
    }
}

fn build_webhook_sender(settings: &WebhookSettings) -> Option<webhook_send::WebhookSender> {
    webhook_send::WebhookSender::new(settings.allow_private, settings.attempt_timeout)
        .inspect_err(|err| tracing::error!(error = %err, "building the webhook client failed"))
        .ok()
}

/// A query's `min_position` parameter as written: the log position a
/// command returned, which the query waits for its read model to reach.
pub fn parse_min_position(raw: Option<&str>) -> Result<Option<u64>, AppError> {
    raw.map(|raw| {
        raw.parse().map_err(|_| AppError::Invalid {
            field: "min_position",
            message: format!(
                "min_position must be a log position (a whole number ≥ 0), not {raw:?}"
            ),
        })
    })
    .transpose()
}

/// The client address of a request from `peer`: the peer itself, or, when
/// the peer is one of the `trusted` proxies, the nearest address in
/// `forwarded_for` (`X-Forwarded-For`, which each proxy appends to) that is
/// not a trusted proxy. Addresses a client wrote itself sit further left and
/// are never believed over that.
pub fn client_address(
    trusted: &[std::net::IpAddr],
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<std::net::IpAddr> = forwarded_for
        .unwrap_or_default()
        .split(',')
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|hop| !trusted.contains(hop))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod client_address_tests {
    use super::client_address;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        // Straight from a client: its own address, whatever it claims.
        assert_eq!(
            client_address(&proxies, ip("203.0.113.9"), Some("198.51.100.1")),
            ip("203.0.113.9")
        );
        // Through two proxies: the nearest untrusted hop, not the
        // client-written one further left.
        assert_eq!(
            client_address(
                &proxies,
                ip("10.0.0.1"),
                Some("6.6.6.6, 203.0.113.9, 10.0.0.2")
            ),
            ip("203.0.113.9")
        );
        // A proxy without the header, or with garbage: the proxy itself.
        assert_eq!(
            client_address(&proxies, ip("10.0.0.1"), None),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(&proxies, ip("10.0.0.1"), Some("not an address")),
            ip("10.0.0.1")
        );
        // No proxies configured: the header is ignored.
        assert_eq!(
            client_address(&[], ip("10.0.0.1"), Some("203.0.113.9")),
            ip("10.0.0.1")
        );
    }
}
