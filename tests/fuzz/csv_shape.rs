//! The CSV upload's shape check (`textbank_app::csv_shape`), fed as an
//! upload arrives: it refuses a file exactly when a row has too many
//! columns, a field is too long or the header row is too long, as the `csv`
//! crate reads the file; it counts the rows the `csv` crate reads and finds
//! a quote the file never closes; and how the bytes are split into chunks
//! changes nothing.

use proptest::prelude::*;
use textbank_app::csv_shape::{Shape, ShapeCheck};
use textbank_app::{AppError, ImportLimits};

use crate::{TestCaseResult, generated, replay_corpus};

/// What the `csv` crate (read as the importer reads) and the dialect's
/// quoting rules say about a file.
#[derive(Debug)]
pub struct Oracle {
    /// Each record's field lengths in bytes, quotes taken off.
    pub records: Vec<Vec<usize>>,
    /// Bytes of the first record as written, without its line ending.
    pub header_bytes: usize,
    /// The file ends inside a quoted field.
    pub ends_in_quotes: bool,
}

impl Oracle {
    pub fn of(file: &[u8]) -> Self {
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(file)
            .byte_records()
            .map(|record| record.unwrap().iter().map(<[u8]>::len).collect())
            .collect();
        // The `csv` crate drops a byte-order mark that opens the file.
        let file = file.strip_prefix(b"\xef\xbb\xbf").unwrap_or(file);
        // Quotes open only at a field's start; inside them `""` is a quote
        // and any other `"` closes them.
        let mut quoted = false;
        let mut field_start = true;
        let mut header_end = None;
        let header_start = file.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        let mut bytes = file.iter().enumerate().peekable();
        while let Some((at, &byte)) = bytes.next() {
            if quoted {
                if byte == b'"' && bytes.next_if(|(_, b)| **b == b'"').is_none() {
                    quoted = false;
                }
                continue;
            }
            match byte {
                b'"' if field_start => {
                    quoted = true;
                    field_start = false;
                }
                b',' => field_start = true,
                b'\r' | b'\n' => {
                    field_start = true;
                    if header_start.is_some_and(|start| at > start) && header_end.is_none() {
                        header_end = Some(at);
                    }
                }
                _ => field_start = false,
            }
        }
        let header_bytes = match header_start {
            Some(start) => header_end.unwrap_or(file.len()) - start,
            None => 0,
        };
        Self {
            records,
            header_bytes,
            ends_in_quotes: quoted,
        }
    }

    /// The codes of the limits the file breaks.
    pub fn broken(&self, limits: &ImportLimits) -> Vec<&'static str> {
        let mut broken = Vec::new();
        if self.records.iter().any(|r| r.len() > limits.max_columns) {
            broken.push("too_many_columns");
        }
        if self
            .records
            .iter()
            .flatten()
            .any(|&f| f > limits.max_field_bytes)
        {
            broken.push("field_too_long");
        }
        if self.header_bytes > limits.max_header_bytes {
            broken.push("header_too_long");
        }
        broken
    }
}

/// Feeds `file` in chunks of the given sizes (cycled), then finishes.
pub fn shape_of(file: &[u8], limits: ImportLimits, chunks: &[usize]) -> Result<Shape, AppError> {
    let mut check = ShapeCheck::new(limits);
    let mut rest = file;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .copied()
            .unwrap_or(usize::MAX)
            .clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        check.feed(chunk)?;
        rest = tail;
    }
    check.finish()
}

pub fn limits(max_columns: usize, max_header_bytes: usize, max_field_bytes: usize) -> ImportLimits {
    ImportLimits {
        max_columns,
        max_header_bytes,
        max_field_bytes,
        ..ImportLimits::default()
    }
}

/// The check's answer for `file` under `limits`, whatever the chunks, is
/// the oracle's.
fn check(file: &[u8], limits: ImportLimits, chunks: &[usize]) -> TestCaseResult {
    let oracle = Oracle::of(file);
    let whole = shape_of(file, limits, &[]);
    let split = shape_of(file, limits, chunks);
    prop_assert_eq!(
        format!("{whole:?}"),
        format!("{split:?}"),
        "chunks {:?}",
        chunks
    );
    let broken = oracle.broken(&limits);
    match whole {
        Ok(shape) => {
            prop_assert!(broken.is_empty(), "accepted, but it breaks {:?}", broken);
            let records = oracle.records.len() as u64;
            prop_assert_eq!(shape.data_rows, records.saturating_sub(1));
            prop_assert_eq!(
                shape.unterminated_row,
                oracle.ends_in_quotes.then_some(records)
            );
        }
        Err(AppError::OverLimit { code, .. }) => {
            prop_assert!(
                broken.contains(&code),
                "refused as {}, but it breaks {:?}",
                code,
                broken
            )
        }
        Err(other) => return Err(TestCaseError::fail(format!("refused as {other:?}"))),
    }
    Ok(())
}

/// Bits a CSV file is made of, hostile ones included.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let bits: Vec<&[u8]> = vec![
        b"a",
        b"5552010001",
        b"name",
        b",",
        b",",
        b"\"",
        b"\"\"",
        b"\n",
        b"\n",
        b"\r\n",
        b"\r",
        b"x\"y",
        b"\xff",
        b"\0",
        b"\xc3\xa9",
        b" ",
        b"\x1b",
        b"\xef\xbb\xbf",
    ];
    prop_oneof![
        prop::collection::vec(prop::sample::select(bits), 0..48).prop_map(|bits| bits.concat()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn small_limits() -> impl Strategy<Value = ImportLimits> {
    (1usize..6, 0usize..24, 0usize..10).prop_map(|(c, h, f)| limits(c, h, f))
}

/// A corpus file under the default limits, and under limits the file just
/// meets and just breaks.
fn check_file(file: &[u8]) -> TestCaseResult {
    check(file, ImportLimits::default(), &[1])?;
    let oracle = Oracle::of(file);
    let columns = oracle.records.iter().map(Vec::len).max().unwrap_or(0);
    let field = oracle.records.iter().flatten().copied().max().unwrap_or(0);
    let header = oracle.header_bytes;
    check(file, limits(columns.max(1), header, field), &[3])?;
    check(file, limits(columns.max(2) - 1, header, field), &[7])?;
    check(file, limits(columns.max(1), header.max(1) - 1, field), &[2])?;
    check(file, limits(columns.max(1), header, field.max(1) - 1), &[5])
}

#[test]
fn the_shape_check_refuses_exactly_the_files_past_a_limit() {
    replay_corpus("csv_shape", check_file);
    let cases = (
        csv_bytes(),
        prop_oneof![small_limits(), Just(ImportLimits::default())],
        prop::collection::vec(1usize..9, 1..4),
    );
    generated("csv_shape", 1, cases, |(file, limits, chunks)| {
        check(&file, limits, &chunks)
    });
}

/// A header of 100,000 columns, a 10 MB header line and a header just
/// past its byte limit are refused under the default limits in the first
/// 64 KiB chunk, long before the rest would arrive.
#[test]
fn hostile_headers_are_refused_at_the_chunk_that_breaks_a_limit() {
    let defaults = ImportLimits::default();
    let wide = format!("{}cell\n5552010001\n", "a,".repeat(100_000));
    let long = format!("{}\n5552010001\n", "c".repeat(10 << 20));
    let padded: Vec<String> = (0..150).map(|i| format!("{i:0>120}")).collect();
    let padded = format!("cell,{}\n5552010001\n", padded.join(","));
    for (file, code) in [
        (wide, "too_many_columns"),
        (long, "field_too_long"),
        (padded, "header_too_long"),
    ] {
        let file = file.as_bytes();
        let mut shape = ShapeCheck::new(defaults);
        let refused = file
            .chunks(64 * 1024)
            .enumerate()
            .find_map(|(at, chunk)| shape.feed(chunk).err().map(|err| (at, err)));
        match refused {
            Some((0, AppError::OverLimit { code: refused, .. })) => assert_eq!(refused, code),
            other => panic!("{code}: {other:?}"),
        }
        check(file, defaults, &[64 * 1024]).unwrap();
    }
}
