//! The shape of a CSV upload checked as its bytes arrive: how many columns a
//! row has and how long the header and each field are. A file past a limit
//! is refused at the byte that breaks it, before the rest is read or stored.
//!
//! The scanner follows the `csv` crate's default dialect (comma, `"` quotes
//! that only open at the start of a field, `""` inside quotes, `\r`, `\n` or
//! `\r\n` ending a row, blank lines skipped, a UTF-8 byte-order mark that
//! opens the file dropped), so its row numbers are the importer's. It also
//! notices a file that ends inside a quoted field: the `csv` crate quietly
//! closes such a field, taking the rest of the file in.

use crate::error::AppError;
use crate::import::ImportLimits;

/// The UTF-8 byte-order mark. The `csv` crate drops one that opens the
/// file; read as data, it would hide a quote that opens the header (and
/// with it a header the `csv` crate reads as one field of any length).
const BOM: &[u8] = b"\xef\xbb\xbf";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a row: blank lines are skipped here.
    StartRow,
    StartField,
    InField,
    InQuotes,
    /// A `"` inside quotes: either the closing quote or the first of `""`.
    QuoteInQuotes,
}

/// What the whole file looked like, once every byte has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows after the header.
    pub data_rows: u64,
    /// The row (spreadsheet-numbered: the header is 1) that opens a quote
    /// the file never closes; always the last row.
    pub unterminated_row: Option<u64>,
}

pub struct ShapeCheck {
    limits: ImportLimits,
    state: State,
    /// Rows finished so far; the row being read is `rows + 1`.
    rows: u64,
    /// Fields finished in the row being read.
    fields: usize,
    /// Bytes of the field being read, as the importer will see it.
    field_bytes: usize,
    /// Bytes of the header as written (its line ending not counted),
    /// while it is being read.
    header_bytes: usize,
    /// Bytes of a byte-order mark read so far while the file may still
    /// open with one; `None` once that is settled.
    bom_read: Option<usize>,
}

impl ShapeCheck {
    pub fn new(limits: ImportLimits) -> Self {
        Self {
            limits,
            state: State::StartRow,
            rows: 0,
            fields: 0,
            field_bytes: 0,
            header_bytes: 0,
            bom_read: Some(0),
        }
    }

    /// Checks the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), AppError> {
        let bytes = match self.bom_read {
            Some(read) => {
                let wanted = &BOM[read..];
                let given = wanted.len().min(bytes.len());
                if bytes[..given] == wanted[..given] {
                    let read = read + given;
                    self.bom_read = (read < BOM.len()).then_some(read);
                    &bytes[given..]
                } else {
                    // Not a mark after all: what began like one is data.
                    self.bom_read = None;
                    self.scan(&BOM[..read])?;
                    bytes
                }
            }
            None => bytes,
        };
        self.scan(bytes)
    }

    fn scan(&mut self, bytes: &[u8]) -> Result<(), AppError> {
        let mut next = 0;
        while next < bytes.len() {
            // Past the header, a run of plain bytes inside a field is
            // counted at once (the byte-by-byte walk is 3x slower).
            if self.rows > 0 {
                let rest = &bytes[next..];
                let run = match self.state {
                    State::InField => rest.iter().position(|&b| b == b',' || is_end(b)),
                    State::InQuotes => rest.iter().position(|&b| b == b'"'),
                    _ => Some(0),
                }
                .unwrap_or(rest.len());
                if run > 0 {
                    self.grow_field(run)?;
                    next += run;
                    continue;
                }
            }
            let byte = bytes[next];
            next += 1;
            // The header's line ending (or a blank line before it) is not
            // part of it; a line break inside quotes is.
            if self.rows == 0 && (self.state == State::InQuotes || !is_end(byte)) {
                self.header_bytes += 1;
                let limit = self.limits.max_header_bytes;
                within(self.header_bytes, limit, "header_too_long", || {
                    format!("the header row is longer than {limit} bytes")
                })?;
            }
            self.state = match (self.state, byte) {
                (State::StartRow, byte) if is_end(byte) => State::StartRow,
                (State::StartRow | State::StartField, b'"') => State::InQuotes,
                (
                    State::StartRow | State::StartField | State::InField | State::QuoteInQuotes,
                    b',',
                ) => {
                    self.end_field()?;
                    State::StartField
                }
                (State::StartField | State::InField | State::QuoteInQuotes, byte)
                    if is_end(byte) =>
                {
                    self.end_field()?;
                    self.end_row();
                    State::StartRow
                }
                (State::InQuotes, b'"') => State::QuoteInQuotes,
                (State::InQuotes, _) | (State::QuoteInQuotes, b'"') => {
                    self.grow_field(1)?;
                    State::InQuotes
                }
                (
                    State::StartRow | State::StartField | State::InField | State::QuoteInQuotes,
                    _,
                ) => {
                    self.grow_field(1)?;
                    State::InField
                }
            };
        }
        Ok(())
    }

    /// The file has ended.
    pub fn finish(mut self) -> Result<Shape, AppError> {
        // A file shorter than a mark, that began like one.
        if let Some(read) = self.bom_read.take() {
            self.scan(&BOM[..read])?;
        }
        let unterminated_row = (self.state == State::InQuotes).then_some(self.rows + 1);
        if self.state != State::StartRow {
            self.end_field()?;
            self.end_row();
        }
        Ok(Shape {
            data_rows: self.rows.saturating_sub(1),
            unterminated_row,
        })
    }

    fn grow_field(&mut self, bytes: usize) -> Result<(), AppError> {
        self.field_bytes += bytes;
        let (row, limit) = (self.rows + 1, self.limits.max_field_bytes);
        within(self.field_bytes, limit, "field_too_long", || {
            format!(
                "row {row} has a field longer than {limit} bytes (or opens a quote it never closes)"
            )
        })
    }

    fn end_field(&mut self) -> Result<(), AppError> {
        self.fields += 1;
        self.field_bytes = 0;
        let (row, limit) = (self.rows + 1, self.limits.max_columns);
        within(self.fields, limit, "too_many_columns", || {
            format!("row {row} has more than {limit} columns")
        })
    }

    fn end_row(&mut self) {
        self.rows += 1;
        self.fields = 0;
    }
}

fn is_end(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// Fails with `code` once `count` is past `limit`; `problem` words it (only
/// then, so the hot path formats nothing).
fn within(
    count: usize,
    limit: usize,
    code: &'static str,
    problem: impl FnOnce() -> String,
) -> Result<(), AppError> {
    if count <= limit {
        return Ok(());
    }
    Err(AppError::OverLimit {
        code,
        limit: limit as u64,
        message: format!("{}; nothing was stored", problem()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_columns: usize, max_header_bytes: usize, max_field_bytes: usize) -> ImportLimits {
        ImportLimits {
            max_columns,
            max_header_bytes,
            max_field_bytes,
            ..ImportLimits::default()
        }
    }

    /// Feeds the file whole and one byte at a time (the worst-split
    /// upload); both must come to the same answer.
    fn check(file: &[u8], limits: ImportLimits) -> Result<Shape, AppError> {
        let whole = ShapeCheck::new(limits).fed(file);
        let mut bytewise = ShapeCheck::new(limits);
        let bytewise = file
            .iter()
            .try_for_each(|byte| bytewise.feed(std::slice::from_ref(byte)))
            .and_then(|()| bytewise.finish());
        assert_eq!(format!("{whole:?}"), format!("{bytewise:?}"));
        whole
    }

    impl ShapeCheck {
        fn fed(mut self, file: &[u8]) -> Result<Shape, AppError> {
            self.feed(file)?;
            self.finish()
        }
    }

    fn code<T: std::fmt::Debug>(result: Result<T, AppError>) -> &'static str {
        match result {
            Err(AppError::OverLimit { code, .. }) => code,
            other => panic!("expected a limit, got {other:?}"),
        }
    }

    /// Rows and fields as the `csv` crate reads them with the importer's
    /// settings.
    fn csv_crate(file: &[u8]) -> Vec<Vec<usize>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(file)
            .byte_records()
            .map(|record| record.unwrap().iter().map(<[u8]>::len).collect())
            .collect()
    }

    #[test]
    fn rows_and_field_sizes_agree_with_the_csv_crate() {
        let files: [&[u8]; 7] = [
            b"cell,name\n5552010001,Ana\n",
            b"\r\n\ncell,name\r\n5552010001,\"O\"\"Neil, Ann\"\r\n\r\n5552010002,x\r\n",
            b"cell,note\n5552010001,\"two\nlines\"\n5552010002,ab\"c\n",
            b"cell,note\n5552010001,\"closed\"tail\n",
            b"cell\n5552010001",
            b"cell,note\n5552010001,\"never closed\n5552010002,x\n",
            b"a,,b\n,,\n",
        ];
        for file in files {
            let rows = csv_crate(file);
            let widest = rows.iter().flatten().copied().max().unwrap_or(0);
            let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
            let text = String::from_utf8_lossy(file);
            let shape = check(file, limits(columns, 1 << 20, widest)).expect(&text);
            assert_eq!(shape.data_rows + 1, rows.len() as u64, "{text:?}");
            if widest > 0 {
                assert_eq!(
                    code(check(file, limits(columns, 1 << 20, widest - 1))),
                    "field_too_long",
                    "{text:?}"
                );
            }
            assert_eq!(
                code(check(file, limits(columns - 1, 1 << 20, widest))),
                "too_many_columns",
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_header_past_its_limit_is_refused_before_its_row_ends() {
        let mut scanner = ShapeCheck::new(limits(200, 16, 1024));
        scanner.feed(b"first_name,last_").unwrap();
        assert_eq!(code(scanner.feed(b"n")), "header_too_long");
        // Data rows may be longer than the header's limit.
        let long_row = format!("cell\n{}\n", "5".repeat(40));
        assert!(check(long_row.as_bytes(), limits(200, 16, 1024)).is_ok());
    }

    #[test]
    fn a_quote_never_closed_is_found_on_its_row() {
        let shape = check(
            b"cell,name\n5552010001,Ana\n5552010002,\"Ben\n",
            limits(200, 1024, 1024),
        )
        .unwrap();
        assert_eq!(shape.unterminated_row, Some(3));
        assert_eq!(shape.data_rows, 2);
        let closed = check(
            b"cell,name\n5552010002,\"Ben\"\"\"\n",
            limits(200, 1024, 1024),
        )
        .unwrap();
        assert_eq!(closed.unterminated_row, None);
    }
}
