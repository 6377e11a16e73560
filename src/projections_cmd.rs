//! `textbank projections status|rebuild`: the read models' positions and
//! lag, and rebuilding them from the log while servers keep running.

use clap::Subcommand;
use textbank_projections::rebuild::{rebuild_all, status};
use textbank_store::{ConnectOptions, Database, SqlEventStore};

use crate::cli::{CliResult, DatabaseArgs};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Print each read model's position and lag behind the log's head, one
    /// JSON line per read model.
    Status(DatabaseArgs),
    /// Rebuild one read model (or all) from position 0 and swap it in,
    /// printing one JSON line per read model rebuilt.
    Rebuild {
        /// The read model's name (see `status`); all of them when omitted.
        name: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub async fn run(command: ProjectionsCommand) -> CliResult {
    let projectors = textbank_projections::all();
    match command {
        ProjectionsCommand::Status(database) => {
            let (store, _) = open(&database).await?;
            let (head, statuses) = status(&store, &projectors).await?;
            for one in statuses {
                println!(
                    "{}",
                    serde_json::json!({"projector": one.projector, "position": one.position, "lag": one.lag, "head": head})
                );
            }
            store.database().close().await;
            Ok(())
        }
        ProjectionsCommand::Rebuild { name, database } => {
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
            let (store, database) = open(&database).await?;
            let started = std::time::Instant::now();
            for rebuilt in rebuild_all(&store, &database, &chosen).await? {
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

async fn open(args: &DatabaseArgs) -> CliResult<(SqlEventStore, Database)> {
    let options = ConnectOptions {
        max_connections: args.db_max_connections.clamp(2, 8),
        migrate: true,
        sqlite_mmap_bytes: args.sqlite_mmap_bytes(),
        sqlite_cache_bytes: args.sqlite_cache_bytes(),
    };
    let store = SqlEventStore::open(&args.database_url, &options).await?;
    let database = store.database().clone();
    Ok((store, database))
}
