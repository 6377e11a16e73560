//! Throwaway databases for tests of every crate and for benchmarks: a fresh
//! SQLite file, or a fresh schema in a PostgreSQL database (for tests, the
//! one named by `TEXTBANK_TEST_POSTGRES_URL`). Without that variable PostgreSQL tests are
//! skipped with a message — unless `CI` is set, where a missing PostgreSQL is
//! a failure, so CI can never pass by skipping. Kept out of the store crate:
//! the crates' tests take it as a dev-dependency, the server never links it.
#![forbid(unsafe_code)]
// Test support: a test that cannot get its database fails at once, loudly.
#![allow(clippy::expect_used)]

use std::path::PathBuf;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use textbank_store::{ConnectOptions, Database, StoreResult};

pub const POSTGRES_URL_VAR: &str = "TEXTBANK_TEST_POSTGRES_URL";
/// A KurrentDB server for the store's contract tests on that backend.
pub const KURRENTDB_URL_VAR: &str = "TEXTBANK_TEST_KURRENTDB_URL";

/// The test KurrentDB connection string, or `None` (after saying so). No
/// KurrentDB server can run on the project's CI machines, so its absence
/// is a skip there too, never a failure (ADR 0030).
pub fn kurrentdb_url(test: &str) -> Option<String> {
    match std::env::var(KURRENTDB_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped {test} on KurrentDB: {KURRENTDB_URL_VAR} is not set");
            None
        }
    }
}

/// The test PostgreSQL URL, or `None` (after saying so) when tests should
/// skip PostgreSQL.
///
/// # Panics
/// When `CI` is set and the variable is not.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{POSTGRES_URL_VAR} is not set but CI is: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!("skipped {test} on PostgreSQL: {POSTGRES_URL_VAR} is not set");
            None
        }
    }
}

enum Scratch {
    SqliteFile(PathBuf),
    PostgresSchema { admin_url: String, schema: String },
}

/// A database that exists for one test.
pub struct ScratchDb {
    pub database: Database,
    url: String,
    scratch: Scratch,
}

impl ScratchDb {
    fn options() -> ConnectOptions {
        ConnectOptions {
            max_connections: 6,
            migrate: true,
            ..ConnectOptions::default()
        }
    }

    /// A migrated SQLite database in a new file under the temp directory.
    pub async fn sqlite() -> Self {
        Self::sqlite_file("textbank-test")
            .await
            .expect("open a test SQLite database")
    }

    /// A migrated SQLite database in a new file `{prefix}-{uuid}.db` under
    /// the temp directory.
    pub async fn sqlite_file(prefix: &str) -> StoreResult<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}.db", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}", path.display());
        let database = Database::connect(&url, &Self::options()).await?;
        Ok(Self {
            database,
            url,
            scratch: Scratch::SqliteFile(path),
        })
    }

    /// A migrated, empty schema of the test PostgreSQL database, or `None`
    /// when PostgreSQL tests are skipped.
    pub async fn postgres(test: &str) -> Option<Self> {
        let admin_url = postgres_url(test)?;
        Some(
            Self::postgres_schema_in(&admin_url, "tb_test")
                .await
                .expect("create a test schema in TEXTBANK_TEST_POSTGRES_URL"),
        )
    }

    /// A new, migrated schema `{prefix}_{uuid}` in the database at
    /// `admin_url`; the benchmark uses one so it never writes into real data.
    pub async fn postgres_schema_in(admin_url: &str, prefix: &str) -> StoreResult<Self> {
        let schema = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{schema}");
        let database = Database::connect(&url, &Self::options()).await?;
        Ok(Self {
            database,
            url,
            scratch: Scratch::PostgresSchema {
                admin_url: admin_url.to_owned(),
                schema,
            },
        })
    }

    /// A URL that opens this same database (another "process").
    /// Runs one statement of the test's own (a table, an index, a deletion)
    /// with the writer.
    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database {
            Database::Sqlite { write, .. } => sqlx::query(sql).execute(write).await.map(|_| ()),
            Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .expect("the test's statement");
    }

    /// The rows of two integers that `sql` selects, read with the readers.
    pub async fn int_pairs(&self, sql: &'static str) -> Vec<(i64, i64)> {
        match &self.database {
            Database::Sqlite { read, .. } => sqlx::query_as(sql).fetch_all(read).await,
            Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .expect("the test's query")
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the pools and removes the file or schema.
    pub async fn cleanup(self) {
        self.database.close().await;
        match self.scratch {
            Scratch::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Scratch::PostgresSchema { admin_url, schema } => {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await;
                }
            }
        }
    }
}
