//! Running one sqlx expression on whichever engine is in use. sqlx's query API
//! is generic over the database, so the same text and binds serve SQLite and
//! PostgreSQL; these macros expand the expression once per engine.

/// `on_reader!(&database, |pool| expr)`: runs `expr` with `pool` bound to the
/// reader pool (SQLite) or the pool (PostgreSQL).
#[macro_export]
macro_rules! on_reader {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Database::Sqlite { read: $pool, .. } => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}

/// `on_tx!(&mut tx, |conn| expr)`: runs `expr` with `conn` bound to the
/// transaction's connection.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::StoreTx::Sqlite(tx, _) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::StoreTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
