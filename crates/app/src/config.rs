//! Server configuration, filled from the command line or the environment by
//! the binary. Secrets never appear in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use textbank_domain::phone::Region;
use textbank_domain::{Clock, SystemClock};
use textbank_store::{Database, redact_url};

use crate::{CarrierApiPolicy, ImportLimits};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://textbank.db";

#[derive(Clone)]
pub struct Config {
    /// Address the HTTP server listens on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The database: a URL to open, or one already open.
    pub database: DatabaseSource,
    /// Where the event log lives when not in the database: a KurrentDB
    /// connection string (`kurrentdb://HOST:2113?tls=false`; needs the
    /// `kurrentdb` cargo feature, ADR 0030). Read models, checkpoints and
    /// sessions stay in `database`.
    pub event_store_url: Option<String>,
    /// Database pool size (when opened from a URL).
    pub max_connections: u32,
    /// SQLite's shared memory map, in bytes (0: none; ADR 0023).
    pub sqlite_mmap_bytes: u64,
    /// SQLite's own memory, all connections together, in bytes.
    pub sqlite_cache_bytes: u64,
    /// The server's time: the system clock, or a fixed one in tests.
    pub clock: Arc<dyn Clock>,
    /// Country assumed for phone numbers written without a country code.
    pub default_region: Region,
    /// Size limits of list uploads.
    pub import_limits: ImportLimits,
    /// Where the server secret key comes from.
    pub secret_key: SecretKeySource,
    /// The URL carriers reach this server at (for webhook signatures behind
    /// a proxy); `None` means `http://{bind}`.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: requests from
    /// them are attributed (audit evidence, sign-in limits) to the client
    /// address they forward.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Which carrier API bases an organization's settings may name.
    pub carrier_api: CarrierApiPolicy,
    pub send: SendSettings,
    /// Outbound webhooks: where they may go and how long they are retried.
    pub webhooks: WebhookSettings,
}

/// Outbound webhooks' knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Lets receivers be loopback, private or link-local addresses, and be
    /// called over plain `http://` (a receiver on the same machine or
    /// network; the tests' receivers). Refused otherwise.
    pub allow_private: bool,
    /// How long a delivery is retried before its subscription is marked
    /// failing and disabled.
    pub retry_window: std::time::Duration,
    /// How long one attempt may take.
    pub attempt_timeout: std::time::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_window: std::time::Duration::from_secs(24 * 60 * 60),
            attempt_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Where the database comes from.
#[derive(Clone)]
pub enum DatabaseSource {
    /// `sqlite://PATH` (created if missing) or `postgres://…`; pending
    /// migrations are applied when it is opened.
    Url(String),
    /// A database already open and migrated (a test's or a benchmark's
    /// scratch database).
    Open(Database),
}

impl fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(&redact_url(url)).finish(),
            Self::Open(database) => f
                .debug_tuple("Open")
                .field(&database.backend().name())
                .finish(),
        }
    }
}

/// The server secret key: given (hex), kept in a file created on first
/// start, or made up for this process alone (tests, benchmarks, one-off
/// commands that sign and seal nothing).
#[derive(Clone)]
pub enum SecretKeySource {
    Hex(String),
    File(PathBuf),
    Generated,
}

impl fmt::Debug for SecretKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hex(_) => f.write_str("Hex(***)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Generated => f.write_str("Generated"),
        }
    }
}

/// The send path's knobs.
#[derive(Debug, Clone)]
pub struct SendSettings {
    /// How long a presented message may wait for its click.
    pub click_token_ttl: chrono::Duration,
    /// The least time a person takes between seeing a message and clicking
    /// Send; faster clicks are refused as `too_fast` (see the README).
    pub min_click_interval: chrono::Duration,
    /// How far a client's own `clicked_at` may be from the server's clock
    /// before the click is refused as bad input.
    pub max_client_clock_skew: chrono::Duration,
    /// The longest message one click may send (rendered body).
    pub message_limits: textbank_domain::click::MessageLimits,
    /// Messages per second per sending number (or messaging profile).
    pub sender_rate_per_second: f64,
    /// Carrier submissions tried per message when the carrier says nothing
    /// was sent.
    pub max_submit_attempts: u32,
    /// How the built-in simulator behaves.
    pub sim: SimSettings,
}

impl Default for SendSettings {
    fn default() -> Self {
        Self {
            click_token_ttl: chrono::Duration::minutes(15),
            min_click_interval: chrono::Duration::milliseconds(250),
            max_client_clock_skew: chrono::Duration::minutes(5),
            message_limits: textbank_domain::click::MessageLimits::default(),
            sender_rate_per_second: 10.0,
            max_submit_attempts: 3,
            sim: SimSettings::default(),
        }
    }
}

/// The simulator's delays and rates (see `textbank_sms::sim`).
#[derive(Debug, Clone, PartialEq)]
pub struct SimSettings {
    pub delivery_delay_ms: (u64, u64),
    pub failure_rate: f64,
    pub reply_rate: f64,
    pub opt_out_rate: f64,
    pub reply_delay_ms: (u64, u64),
}

impl SimSettings {
    /// A simulator that delivers every message after `delay_ms` (a range)
    /// and neither fails nor draws replies.
    pub fn quiet(delay_ms: (u64, u64)) -> Self {
        Self {
            delivery_delay_ms: delay_ms,
            failure_rate: 0.0,
            reply_rate: 0.0,
            opt_out_rate: 0.0,
            reply_delay_ms: delay_ms,
        }
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            delivery_delay_ms: (200, 1_500),
            failure_rate: 0.03,
            reply_rate: 0.2,
            // Of replies: 5% of delivered messages draw a STOP.
            opt_out_rate: 0.25,
            reply_delay_ms: (2_000, 20_000),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database", &self.database)
            .field(
                "event_store_url",
                &self.event_store_url.as_deref().map(redact_url),
            )
            .field("max_connections", &self.max_connections)
            .field("sqlite_mmap_bytes", &self.sqlite_mmap_bytes)
            .field("sqlite_cache_bytes", &self.sqlite_cache_bytes)
            .field("default_region", &self.default_region.code())
            .field("import_limits", &self.import_limits)
            .field("secret_key", &self.secret_key)
            .field("public_url", &self.public_url)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("carrier_api", &self.carrier_api)
            .field("send", &self.send)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

impl Config {
    /// Defaults with the given database URL; the rest as `textbank serve`
    /// has it.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self::on(DatabaseSource::Url(database_url.into()))
    }

    /// Defaults on a database already open.
    pub fn with_open_database(database: Database) -> Self {
        Self::on(DatabaseSource::Open(database))
    }

    fn on(database: DatabaseSource) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database,
            event_store_url: None,
            max_connections: 16,
            sqlite_mmap_bytes: textbank_store::DEFAULT_SQLITE_MMAP_BYTES,
            sqlite_cache_bytes: textbank_store::DEFAULT_SQLITE_CACHE_BYTES,
            clock: Arc::new(SystemClock),
            default_region: Region::US,
            import_limits: ImportLimits::default(),
            secret_key: SecretKeySource::File(PathBuf::from("textbank.key")),
            public_url: None,
            trusted_proxies: Vec::new(),
            carrier_api: CarrierApiPolicy::default(),
            send: SendSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_password() {
        let config = Config::with_database("postgres://app:s3cret@db/textbank");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db"));
        let config = Config {
            event_store_url: Some("kurrentdb://admin:changeit@kdb:2113?tls=false".into()),
            ..config
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("changeit"), "{shown}");
        assert!(shown.contains("kurrentdb://admin:***@kdb:2113"), "{shown}");
    }

    #[test]
    fn the_default_bind_parses() {
        assert_eq!(
            DEFAULT_BIND.parse::<SocketAddr>().unwrap(),
            Config::with_database("x").bind
        );
    }
}
