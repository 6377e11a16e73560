//! `textbank projections status|rebuild`: the read models' positions and
//! lag, and rebuilding them from the log while servers keep running.

use std::sync::Arc;

use clap::Subcommand;
use textbank_projections::rebuild::{rebuild_all, status};
use textbank_store::{ConnectOptions, Database, EventStore, SqlEventStore};

use crate::cli::{CliResult, DatabaseArgs, EventLogArgs};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Print each read model's position and lag behind the log's head, one
    /// JSON line per read model.
    Status {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        event_log: EventLogArgs,
    },
    /// Rebuild one read model (or all) from position 0 and swap it in,
    /// printing one JSON line per read model rebuilt.
    Rebuild {
        /// The read model's name (see `status`); all of them when omitted.
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        event_log: EventLogArgs,
    },
}

pub async fn run(command: ProjectionsCommand) -> CliResult {
    let projectors = textbank_projections::all();
    match command {
        ProjectionsCommand::Status {
            database,
            event_log,
        } => {
            let (store, database) = open(&database, &event_log).await?;
            let (head, statuses) = status(store.as_ref(), &projectors).await?;
            for one in statuses {
                println!(
                    "{}",
                    serde_json::json!({"projector": one.projector, "position": one.position, "lag": one.lag, "head": head})
                );
            }
            database.close().await;
            Ok(())
        }
        ProjectionsCommand::Rebuild {
            name,
            database,
            event_log,
        } => {
            let chosen: Vec<_> = match &name {
                Some(name) => {
                    let found: Vec<_> = projectors
                        .iter()
                        .filter(|projector| projector.name() == name)
                        .cloned()
                        .collect();
                    if found.is_empty() {
                        let known: Vec<_> = projectors.iter().map(|p| p.name()).collect();
                        return Err(format!(
                            "no read model named {name:?}; known: {}",
                            known.join(", ")
                        )
                        .into());
                    }
                    found
                }
                None => projectors,
            };
            let (store, database) = open(&database, &event_log).await?;
            let started = std::time::Instant::now();
            for rebuilt in rebuild_all(store.as_ref(), &database, &chosen).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "projector": rebuilt.projector,
                        "method": rebuilt.method,
                        "position": rebuilt.position,
                        "seconds": started.elapsed().as_secs_f64(),
                    })
                );
            }
            database.close().await;
            Ok(())
        }
    }
}

/// The log (in the database, or where --event-store-url says) and the
/// database of the read models.
async fn open(
    args: &DatabaseArgs,
    event_log: &EventLogArgs,
) -> CliResult<(Arc<dyn EventStore>, Database)> {
    let options = ConnectOptions {
        max_connections: args.db_max_connections.clamp(2, 8),
        migrate: true,
        sqlite_mmap_bytes: args.sqlite_mmap_bytes(),
        sqlite_cache_bytes: args.sqlite_cache_bytes(),
    };
    let store = Arc::new(SqlEventStore::open(&args.database_url, &options).await?);
    let database = store.database().clone();
    let store = textbank_app::open_event_log(event_log.event_store_url.as_deref(), store).await?;
    Ok((store, database))
}
