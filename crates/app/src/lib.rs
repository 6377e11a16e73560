//! textbank's application layer: configuration and the services the HTTP API
//! and the CLI call. Command handlers (load a stream, decide, append) live
//! here as they arrive; the API and the CLI stay thin.
#![forbid(unsafe_code)]

mod assignment;
mod caller;
mod campaign;
mod command;
mod config;
mod error;
mod import;
mod keys;
mod org;

use std::sync::Arc;

use textbank_domain::phone::Region;
use textbank_domain::{Clock, SystemClock};
use textbank_store::{ConnectOptions, Database, EventStore, SqlEventStore, StoreResult};

pub use assignment::{Assigned, Assignments, Reassigned, Released, TexterAssignment};
pub use caller::Caller;
pub use campaign::{CampaignTransitioned, CampaignWritten, NewCampaign, SampleMessage};
pub use config::{Config, DEFAULT_BIND, DEFAULT_DATABASE_URL};
pub use error::AppError;
pub use import::{ImportLimits, ImportSummary, ListDeclaration};
pub use org::{AddedMember, CreatedOrg, IssuedKey};

/// Everything a request or a job needs: the event store and the clock.
#[derive(Clone)]
pub struct App {
    store: Arc<SqlEventStore>,
    clock: Arc<dyn Clock>,
    default_region: Region,
    import_limits: ImportLimits,
}

impl App {
    /// Opens the configured database and applies pending migrations.
    pub async fn open(config: &Config) -> StoreResult<Self> {
        let store = SqlEventStore::open(
            &config.database_url,
            &ConnectOptions {
                max_connections: config.max_connections,
                migrate: true,
            },
        )
        .await?;
        Ok(Self::new(Arc::new(store), Arc::new(SystemClock))
            .with_default_region(config.default_region)
            .with_import_limits(config.import_limits))
    }

    pub fn new(store: Arc<SqlEventStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            default_region: Region::US,
            import_limits: ImportLimits::default(),
        }
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

    pub fn store(&self) -> &Arc<SqlEventStore> {
        &self.store
    }

    pub fn events(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// The database the read models live in.
    pub fn database(&self) -> &Database {
        self.store.database()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Is the database reachable right now?
    pub async fn ready(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    pub async fn close(&self) {
        self.store.database().close().await;
    }
}
