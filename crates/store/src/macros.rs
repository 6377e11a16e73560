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

/// `current_terms!(conn, batch, statement)`: the current term of each role
/// the batch's fenced appends name, read with `statement` on the writer's
/// connection inside its transaction (a future of `StoreResult<HashMap<…>>`).
macro_rules! current_terms {
    ($conn:expr, $batch:expr, $statement:expr) => {
        async {
            let mut terms = std::collections::HashMap::new();
            for role in $crate::plan::fenced_roles($batch) {
                let term: Option<i64> = sqlx::query_scalar($statement)
                    .bind(role)
                    .fetch_optional(&mut *$conn)
                    .await?;
                terms.insert(role.to_owned(), $crate::decode::to_u64(term.unwrap_or(0))?);
            }
            $crate::error::StoreResult::Ok(terms)
        }
    };
}
pub(crate) use current_terms;

/// `execute!(&mut tx, "SQL", value, …)`: runs one statement in the
/// transaction with the values bound in the order given; evaluates to the
/// number of rows it affected.
#[macro_export]
macro_rules! execute {
    ($tx:expr, $sql:expr $(, $value:expr)* $(,)?) => {
        $crate::on_tx!($tx, |conn| {
            sqlx::query($sql)$(.bind($value))*.execute(conn).await?.rows_affected()
        })
    };
}

/// `optional_id!(on_reader!(&database), "SQL", key)` or
/// `optional_id!(on_tx!(&mut tx), "SQL", key)`: the one UUID `SQL` selects
/// for `key`, if a row matches, read from the reader pool or in the
/// transaction.
macro_rules! optional_id {
    ($on:ident!($source:expr), $sql:expr, $key:expr) => {{
        let id: Option<uuid::Uuid> = $crate::$on!($source, |conn| {
            sqlx::query_scalar($sql)
                .bind($key)
                .fetch_optional(conn)
                .await?
        });
        id
    }};
}
pub(crate) use optional_id;
