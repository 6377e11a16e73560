//! SQL text shared by the store and the read models: multi-row
//! placeholders, and the placeholder style each engine binds fastest.

use std::fmt::Write as _;

use crate::{Database, StoreTx};

/// The statement as `tx`'s engine should get it. SQLite binds `$N`
/// parameters by name, and looking a name up walks the list of all of them:
/// binding is quadratic in the number of placeholders, which made a
/// 200-row upsert spend most of its time binding. Plain `?` placeholders
/// bind by position, so on SQLite `$N` becomes `?`: every statement here
/// numbers its placeholders in the order they appear.
pub fn for_engine(tx: &StoreTx, sql: String) -> String {
    match tx {
        StoreTx::Postgres(_) => sql,
        StoreTx::Sqlite(..) => positional(&sql),
    }
}

/// [`for_engine`] for a query on the pool rather than in a transaction.
pub fn for_database(db: &Database, sql: String) -> String {
    match db {
        Database::Postgres(_) => sql,
        Database::Sqlite { .. } => positional(&sql),
    }
}

fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut expected = 1;
    while let Some(c) = chars.next() {
        if c != '$' || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut number = 0usize;
        while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
            number = number * 10 + digit as usize;
            chars.next();
        }
        debug_assert_eq!(number, expected, "placeholders out of order in {sql}");
        expected += 1;
        out.push('?');
    }
    out
}

/// `($1, $2), ($3, $4)`: placeholders for `rows` rows of `columns` values.
pub fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * (columns * 6 + 4));
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", row * columns + column + 1);
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_positional_placeholders() {
        assert_eq!(
            positional("INSERT INTO t (a, b) VALUES ($1, $2), ($3, '$x') RETURNING $4"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, '$x') RETURNING ?"
        );
        assert_eq!(positional("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }
}
