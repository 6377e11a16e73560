//! Server configuration, filled from the command line or the environment by
//! the binary. Secrets never appear in `Debug` output.

use std::fmt;
use std::net::SocketAddr;

use textbank_domain::phone::Region;
use textbank_store::redact_url;

use crate::ImportLimits;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://textbank.db";

#[derive(Clone)]
pub struct Config {
    /// Address the HTTP server listens on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Database pool size.
    pub max_connections: u32,
    /// Country assumed for phone numbers written without a country code.
    pub default_region: Region,
    /// Size limits of list uploads.
    pub import_limits: ImportLimits,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("max_connections", &self.max_connections)
            .field("default_region", &self.default_region.code())
            .field("import_limits", &self.import_limits)
            .finish()
    }
}

impl Config {
    /// Defaults with the given database; the rest as `textbank serve` has it.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: database_url.into(),
            max_connections: 16,
            default_region: Region::US,
            import_limits: ImportLimits::default(),
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
    }

    #[test]
    fn the_default_bind_parses() {
        assert_eq!(
            DEFAULT_BIND.parse::<SocketAddr>().unwrap(),
            Config::with_database("x").bind
        );
    }
}
