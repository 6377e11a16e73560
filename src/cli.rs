//! Command-line flags and the `serve` and `migrate` commands.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use textbank_api::Server;
use textbank_app::{App, Config, DEFAULT_BIND, DEFAULT_DATABASE_URL, ImportLimits};
use textbank_domain::phone::Region;
use textbank_projections::follow;
use textbank_store::{ConnectOptions, Database, redact_url};
use tokio::sync::watch;

use crate::bench::BenchArgs;
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
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Run a benchmark and print one JSON line per figure.
    Bench(BenchArgs),
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
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "TEXTBANK_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Database connection pool size.
    #[arg(long, env = "TEXTBANK_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
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

    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_region(code: &str) -> Result<Region, String> {
    code.parse()
        .map_err(|err: textbank_domain::phone::PhoneError| err.to_string())
}

pub async fn serve(args: ServeArgs) -> CliResult {
    let config = Config {
        bind: args.bind,
        database_url: args.database.database_url,
        max_connections: args.database.db_max_connections,
        default_region: args.default_region,
        import_limits: ImportLimits {
            max_bytes: args.max_list_bytes,
            max_rows: args.max_list_rows,
        },
    };
    tracing::info!(?config, "starting textbank");
    let app = App::open(&config).await?;
    let (stop_projectors, stopped) = watch::channel(false);
    let projectors: Vec<_> = textbank_projections::all()
        .into_iter()
        .map(|projector| tokio::spawn(follow(app.store().clone(), projector, stopped.clone())))
        .collect();
    let server = Server::bind(app.clone(), config.bind).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, "listening");
    // Printed as a plain line too, so scripts and tests can find the port.
    println!("textbank listening on http://{addr}");
    server.run(shutdown_signal()).await?;
    let _ = stop_projectors.send(true);
    for projector in projectors {
        let _ = projector.await;
    }
    app.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn admin(command: AdminCommand) -> CliResult {
    match command {
        AdminCommand::CreateOrg { name, database } => {
            let app = App::open(&Config {
                max_connections: 2,
                ..Config::with_database(database.database_url)
            })
            .await?;
            let created = app.create_org(&name).await;
            app.close().await;
            println!("{}", serde_json::to_string(&created?)?);
            Ok(())
        }
    }
}

pub async fn migrate(args: DatabaseArgs) -> CliResult {
    let options = ConnectOptions {
        max_connections: 2,
        migrate: true,
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
