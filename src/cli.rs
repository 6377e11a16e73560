//! Command-line flags and the `serve` and `migrate` commands.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use textbank_app::{
    App, CarrierApiPolicy, Config, DEFAULT_BIND, DEFAULT_DATABASE_URL, ImportLimits,
    SecretKeySource, SendSettings, SimSettings, WebhookSettings,
};
use textbank_domain::click::MessageLimits;
use textbank_domain::phone::Region;
use textbank_store::{ConnectOptions, Database, redact_url};

use crate::logging::LogFormat;

pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// textbank: a peer-to-peer texting backend for political campaigns.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Log output format.
    #[arg(
        long,
        env = "TEXTBANK_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run a benchmark and print one JSON line per figure.
    Bench(textbank_bench::BenchArgs),
    /// The read models: status (position, lag) and rebuild.
    #[command(subcommand)]
    Projections(crate::projections_cmd::ProjectionsCommand),
    /// Administration that has no HTTP route (bootstrap).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and print its owner API key (shown only once)
    /// as one JSON line: {"org_id":"…","owner_key":"…"}.
    CreateOrg {
        /// The organization's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Set a member's web sign-in password. Reads it from stdin with
    /// --password-stdin; otherwise generates one and prints it once.
    SetPassword {
        /// The member's email.
        #[arg(long)]
        email: String,
        /// The organization, when members of several share the email.
        #[arg(long)]
        org: Option<uuid::Uuid>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "TEXTBANK_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Database connection pool size.
    #[arg(long, env = "TEXTBANK_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// SQLite: MiB of the database file read through a shared memory map;
    /// 0 turns it off, so a read error fails its query instead of ending
    /// the process with SIGBUS (ADR 0023).
    #[arg(long, env = "TEXTBANK_SQLITE_MMAP_MB", default_value_t = 1024)]
    pub sqlite_mmap_mb: u64,

    /// SQLite: MiB that SQLite may hold in memory, every pooled
    /// connection's page cache together; past it, cached pages are
    /// recycled instead of the heap growing.
    #[arg(long, env = "TEXTBANK_SQLITE_CACHE_MB", default_value_t = 64)]
    pub sqlite_cache_mb: u64,
}

impl DatabaseArgs {
    pub fn sqlite_mmap_bytes(&self) -> u64 {
        self.sqlite_mmap_mb.saturating_mul(1 << 20)
    }

    pub fn sqlite_cache_bytes(&self) -> u64 {
        self.sqlite_cache_mb.saturating_mul(1 << 20)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TEXTBANK_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,

    /// Country assumed for phone numbers written without a country code
    /// (ISO 3166 code, e.g. US or CA).
    #[arg(long, env = "TEXTBANK_DEFAULT_REGION", default_value = "US", value_parser = parse_region)]
    pub default_region: Region,

    /// Largest contact-list upload accepted, in bytes.
    #[arg(long, env = "TEXTBANK_MAX_LIST_BYTES", default_value_t = 200_000_000)]
    pub max_list_bytes: u64,

    /// Most rows a contact-list upload may have.
    #[arg(long, env = "TEXTBANK_MAX_LIST_ROWS", default_value_t = 1_000_000)]
    pub max_list_rows: u64,

    /// Most columns a contact-list row (the header too) may have.
    #[arg(long, env = "TEXTBANK_MAX_LIST_COLUMNS", default_value_t = 200)]
    pub max_list_columns: usize,

    /// Longest contact-list header row, in bytes.
    #[arg(long, env = "TEXTBANK_MAX_LIST_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_list_header_bytes: usize,

    /// Longest field of a contact list, in bytes.
    #[arg(long, env = "TEXTBANK_MAX_LIST_FIELD_BYTES", default_value_t = 1024)]
    pub max_list_field_bytes: usize,

    /// The server secret key (64 hex digits): signs click tokens and seals
    /// carrier credentials. Servers sharing a database must share it.
    #[arg(long, env = "TEXTBANK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Where the secret key is kept when TEXTBANK_SECRET_KEY is unset;
    /// created (mode 0600) with a new key on first start.
    #[arg(long, env = "TEXTBANK_SECRET_KEY_FILE", default_value = "textbank.key")]
    pub secret_key_file: std::path::PathBuf,

    /// The URL carriers reach this server at, when it differs from
    /// http://BIND (behind a proxy); webhook signatures are checked against it.
    #[arg(long, env = "TEXTBANK_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Reverse proxies (IP addresses, comma-separated) whose X-Forwarded-For
    /// names the client: the address recorded with each click and used by
    /// the sign-in limit. Without it, requests are attributed to the proxy.
    #[arg(
        long = "trusted-proxy",
        env = "TEXTBANK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Carrier API bases an organization's carrier settings may name
    /// (comma-separated): `scheme://host[:port]`, or a bare host for HTTPS
    /// to it. The carrier secret goes with every call, so the list replaces
    /// the default rather than adding to it.
    #[arg(
        long = "carrier-api-allow",
        env = "TEXTBANK_CARRIER_API_ALLOW",
        value_delimiter = ',',
        default_value = "https://api.twilio.com,https://api.telnyx.com"
    )]
    pub carrier_api_allow: Vec<String>,

    /// Let listed carrier API bases be loopback, private or link-local
    /// addresses (a local test double or proxy); refused otherwise.
    #[arg(long, env = "TEXTBANK_CARRIER_API_ALLOW_PRIVATE")]
    pub carrier_api_allow_private: bool,

    /// Let outbound webhooks go to loopback, private, link-local or other
    /// internal addresses, and over plain http (a receiver on the same
    /// machine or network); refused otherwise.
    #[arg(long, env = "TEXTBANK_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,

    /// Seconds a webhook delivery is retried (exponential backoff with
    /// jitter) before its subscription is marked failing and disabled.
    #[arg(
        long,
        env = "TEXTBANK_WEBHOOK_RETRY_WINDOW_SECS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..=2_592_000)
    )]
    pub webhook_retry_window_secs: u64,

    /// Seconds a presented message stays sendable (click token lifetime).
    #[arg(long, env = "TEXTBANK_CLICK_TOKEN_TTL_SECS", default_value_t = 900)]
    pub click_token_ttl_secs: u32,

    /// Least milliseconds between showing a message and its click; faster
    /// clicks are refused as too_fast.
    #[arg(long, env = "TEXTBANK_MIN_CLICK_MS", default_value_t = 250)]
    pub min_click_ms: u32,

    /// Most seconds a client's own clicked_at may differ from the server's
    /// clock; a click further off is refused as bad input.
    #[arg(long, env = "TEXTBANK_MAX_CLOCK_SKEW_SECS", default_value_t = 300)]
    pub max_clock_skew_secs: u32,

    /// Most characters one click may send (the rendered message); contacts
    /// whose message renders longer are held in the queue.
    #[arg(long, env = "TEXTBANK_MAX_MESSAGE_CHARS", default_value_t = 1_600)]
    pub max_message_chars: usize,

    /// Most SMS segments one click may send.
    #[arg(long, env = "TEXTBANK_MAX_MESSAGE_SEGMENTS", default_value_t = 10)]
    pub max_message_segments: u32,

    /// Messages per second per sending number.
    #[arg(long, env = "TEXTBANK_SENDER_RATE", default_value_t = 10.0)]
    pub sender_rate: f64,

    /// Carrier submissions per message when the carrier says nothing was sent.
    #[arg(long, env = "TEXTBANK_MAX_SUBMIT_ATTEMPTS", default_value_t = 3)]
    pub max_submit_attempts: u32,

    /// Simulator: share of messages that fail (0..1).
    #[arg(long, env = "TEXTBANK_SIM_FAILURE_RATE", default_value_t = 0.03)]
    pub sim_failure_rate: f64,

    /// Simulator: share of delivered messages that get a reply (0..1).
    #[arg(long, env = "TEXTBANK_SIM_REPLY_RATE", default_value_t = 0.2)]
    pub sim_reply_rate: f64,

    /// Simulator: share of replies that are STOP-like (0..1).
    #[arg(long, env = "TEXTBANK_SIM_OPT_OUT_RATE", default_value_t = 0.25)]
    pub sim_opt_out_rate: f64,

    /// Simulator: most milliseconds before a delivery report.
    #[arg(long, env = "TEXTBANK_SIM_DELIVERY_MS", default_value_t = 1_500)]
    pub sim_delivery_ms: u64,

    /// Simulator: most milliseconds before a reply.
    #[arg(long, env = "TEXTBANK_SIM_REPLY_MS", default_value_t = 20_000)]
    pub sim_reply_ms: u64,

    /// On an empty database, create a demo organization (a manager, a
    /// texter, a compliance officer and an admin, a contact list and a
    /// launched campaign on the simulated carrier) and print the sign-ins;
    /// on a demo database, print renewed sign-ins.
    #[arg(long, env = "TEXTBANK_DEMO")]
    pub demo: bool,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub event_log: EventLogArgs,
}

/// Where the event log lives, when not in the database.
#[derive(Debug, Args)]
pub struct EventLogArgs {
    /// Keep the event log in KurrentDB: `kurrentdb://HOST:2113?tls=false`
    /// (any connection string the KurrentDB client takes). Read models,
    /// checkpoints and sessions stay in --database-url. Needs a build with
    /// the `kurrentdb` feature; without this flag the log is in the
    /// database (ADR 0030).
    #[arg(long, env = "TEXTBANK_EVENT_STORE_URL")]
    pub event_store_url: Option<String>,
}

fn parse_region(code: &str) -> Result<Region, String> {
    code.parse()
        .map_err(|err: textbank_domain::phone::PhoneError| err.to_string())
}

pub async fn serve(args: ServeArgs) -> CliResult {
    let send = send_settings(&args)?;
    let demo = args.demo;
    let config = Config {
        bind: args.bind,
        default_region: args.default_region,
        import_limits: ImportLimits {
            max_bytes: args.max_list_bytes,
            max_rows: args.max_list_rows,
            max_columns: args.max_list_columns,
            max_header_bytes: args.max_list_header_bytes,
            max_field_bytes: args.max_list_field_bytes,
        },
        secret_key: match args.secret_key {
            Some(hex) => SecretKeySource::Hex(hex),
            None => SecretKeySource::File(args.secret_key_file),
        },
        public_url: args.public_url,
        trusted_proxies: args.trusted_proxies,
        carrier_api: CarrierApiPolicy {
            allowed: args.carrier_api_allow,
            allow_private: args.carrier_api_allow_private,
        },
        send,
        webhooks: WebhookSettings {
            allow_private: args.webhooks_allow_private,
            retry_window: std::time::Duration::from_secs(args.webhook_retry_window_secs),
            ..WebhookSettings::default()
        },
        max_connections: args.database.db_max_connections,
        sqlite_mmap_bytes: args.database.sqlite_mmap_bytes(),
        sqlite_cache_bytes: args.database.sqlite_cache_bytes(),
        event_store_url: args.event_log.event_store_url,
        ..Config::with_database(args.database.database_url)
    };
    tracing::info!(?config, "starting textbank");
    let running = textbank_api::start(config).await?;
    let addr = running.address();
    tracing::info!(%addr, "listening");
    // Printed as a plain line too, so scripts and tests can find the port.
    println!("textbank listening on http://{addr}");
    if demo && let Err(err) = print_demo(running.app(), &format!("http://{addr}")).await {
        running.shutdown().await?;
        return Err(err);
    }
    running.serve_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Seeds (or renews) the demo and prints where and how to sign in.
async fn print_demo(app: &App, url: &str) -> CliResult {
    let Some(demo) = app.seed_demo().await? else {
        println!(
            "--demo: this database already holds organizations other than the demo; no demo was created"
        );
        return Ok(());
    };
    let verb = if demo.created { "created" } else { "renewed" };
    println!("textbank demo {verb}: open {url}/login and sign in as");
    for sign_in in &demo.sign_ins {
        println!(
            "  {:<11} {:<30} password {}",
            sign_in.role.as_str(),
            sign_in.email,
            sign_in.password
        );
    }
    Ok(())
}

fn send_settings(args: &ServeArgs) -> CliResult<SendSettings> {
    let rate = |name: &str, value: f64| -> CliResult<f64> {
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(format!("{name} must be between 0 and 1").into())
        }
    };
    if !(args.sender_rate > 0.0 && args.sender_rate.is_finite()) {
        return Err("--sender-rate must be a positive number".into());
    }
    let defaults = SimSettings::default();
    Ok(SendSettings {
        click_token_ttl: chrono::Duration::seconds(i64::from(args.click_token_ttl_secs.max(1))),
        min_click_interval: chrono::Duration::milliseconds(i64::from(args.min_click_ms)),
        max_client_clock_skew: chrono::Duration::seconds(i64::from(args.max_clock_skew_secs)),
        message_limits: MessageLimits {
            max_chars: args.max_message_chars.max(1),
            max_segments: args.max_message_segments.max(1),
        },
        sender_rate_per_second: args.sender_rate,
        max_submit_attempts: args.max_submit_attempts.max(1),
        sim: SimSettings {
            delivery_delay_ms: (
                defaults.delivery_delay_ms.0.min(args.sim_delivery_ms),
                args.sim_delivery_ms,
            ),
            failure_rate: rate("--sim-failure-rate", args.sim_failure_rate)?,
            reply_rate: rate("--sim-reply-rate", args.sim_reply_rate)?,
            opt_out_rate: rate("--sim-opt-out-rate", args.sim_opt_out_rate)?,
            reply_delay_ms: (
                defaults.reply_delay_ms.0.min(args.sim_reply_ms),
                args.sim_reply_ms,
            ),
        },
    })
}

pub async fn admin(command: AdminCommand) -> CliResult {
    match command {
        AdminCommand::CreateOrg { name, database } => {
            let app = admin_app(database).await?;
            let created = app.create_org(&name).await;
            app.close().await;
            println!("{}", serde_json::to_string(&created?)?);
            Ok(())
        }
        AdminCommand::SetPassword {
            email,
            org,
            password_stdin,
            database,
        } => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (textbank_app::sign_in::generate_password(), true)
            };
            let app = admin_app(database).await?;
            let org = org.map(textbank_domain::OrgId::from_uuid);
            let set = app.set_password(&email, org, &password).await;
            app.close().await;
            let member_id = set?;
            let mut answer = serde_json::json!({"email": email, "member_id": member_id});
            if generated {
                answer["password"] = password.into();
            }
            println!("{answer}");
            Ok(())
        }
    }
}

/// The app for one-off admin commands. They sign and seal nothing: a
/// throwaway key keeps them from creating a key file where they run.
async fn admin_app(database: DatabaseArgs) -> CliResult<App> {
    Ok(App::open(&Config {
        max_connections: 2,
        sqlite_mmap_bytes: database.sqlite_mmap_bytes(),
        sqlite_cache_bytes: database.sqlite_cache_bytes(),
        secret_key: SecretKeySource::Generated,
        ..Config::with_database(database.database_url)
    })
    .await?)
}

pub async fn migrate(args: DatabaseArgs) -> CliResult {
    let options = ConnectOptions {
        max_connections: 2,
        migrate: true,
        ..ConnectOptions::default()
    };
    let database = Database::connect(&args.database_url, &options).await?;
    database.close().await;
    tracing::info!(database = %redact_url(&args.database_url), "migrations applied");
    println!("migrations applied to {}", redact_url(&args.database_url));
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; finishing in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received; finishing in-flight requests"),
    }
}
