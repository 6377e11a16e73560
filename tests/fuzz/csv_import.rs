//! The whole CSV import, `App::import_list` on SQLite, against a model
//! built on the `csv` crate: a file past a limit, unusable or too long is
//! refused with nothing stored; an accepted one accounts for every row —
//! each valid number imported once, every other row rejected on its own line
//! for its own reason.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use proptest::prelude::*;
use textbank_app::{App, AppError, Caller, Config, ImportLimits, ListDeclaration, SecretKeySource};
use textbank_domain::list::ColumnMap;
use textbank_domain::phone::{PhoneError, PhoneNumber, Region};
use textbank_testkit::ScratchDb;

use crate::csv_shape::{Oracle, limits};
use crate::{TestCaseResult, generated, replay_corpus};

/// What the import must come to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Refused for one of these limits.
    OverLimit(Vec<&'static str>),
    /// More rows than allowed.
    TooLarge,
    /// Not a usable contact list.
    Invalid,
    Imported {
        rows: u64,
        imported: u64,
        /// Line and reason of each rejected row.
        rejected: Vec<(u64, String)>,
    },
}

/// The fields as text (a byte-order mark taken off the first), or `None`
/// if one is not UTF-8 or holds a NUL.
fn text_fields(record: &csv::ByteRecord) -> Option<Vec<String>> {
    record
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let text = std::str::from_utf8(field).ok()?;
            let text = if index == 0 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            (!text.contains('\0')).then(|| text.to_owned())
        })
        .collect()
}

fn model(file: &[u8], limits: &ImportLimits) -> Outcome {
    let oracle = Oracle::of(file);
    let broken = oracle.broken(limits);
    if !broken.is_empty() {
        return Outcome::OverLimit(broken);
    }
    if oracle.ends_in_quotes && oracle.records.len() == 1 {
        return Outcome::Invalid;
    }
    let records: Vec<csv::ByteRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file)
        .byte_records()
        .map(Result::unwrap)
        .collect();
    let Some((header, rows)) = records.split_first() else {
        return Outcome::Invalid;
    };
    let Some(names) = text_fields(header) else {
        return Outcome::Invalid;
    };
    let Ok(columns) = ColumnMap::from_header(&names.iter().map(String::as_str).collect::<Vec<_>>())
    else {
        return Outcome::Invalid;
    };
    for (count, row) in (1u64..).zip(rows) {
        if count > limits.max_rows {
            return Outcome::TooLarge;
        }
        if row.len() > header.len() || text_fields(row).is_none() {
            return Outcome::Invalid;
        }
    }
    if rows.is_empty() {
        return Outcome::Invalid;
    }
    let mut seen = HashSet::new();
    let mut imported = 0;
    let mut rejected = Vec::new();
    for (line, row) in (2u64..).zip(rows) {
        let phone = std::str::from_utf8(row.get(columns.phone).unwrap_or_default())
            .unwrap()
            .trim();
        let last = line == rows.len() as u64 + 1;
        let reason = if oracle.ends_in_quotes && last {
            Some("malformed")
        } else {
            match PhoneNumber::parse(phone, Region::US) {
                Err(PhoneError::Missing) => Some("missing_phone"),
                Err(PhoneError::Invalid(_)) => Some("invalid_phone"),
                Ok(phone) if !seen.insert(phone.as_str().to_owned()) => Some("duplicate"),
                Ok(_) => None,
            }
        };
        match reason {
            Some(reason) => rejected.push((line, reason.to_owned())),
            None => imported += 1,
        }
    }
    Outcome::Imported {
        rows: rows.len() as u64,
        imported,
        rejected,
    }
}

/// One organization's app on a scratch SQLite database, and a runtime to
/// drive it from proptest's synchronous cases.
struct Importer {
    runtime: tokio::runtime::Runtime,
    scratch: Option<ScratchDb>,
    app: App,
    caller: Caller,
}

impl Importer {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (scratch, app, caller) = runtime.block_on(async {
            let scratch = ScratchDb::sqlite_file("textbank-fuzz").await.unwrap();
            let app = App::open(&Config {
                secret_key: SecretKeySource::Generated,
                ..Config::with_open_database(scratch.database.clone())
            })
            .await
            .unwrap();
            let created = app.create_org("Fuzz").await.unwrap();
            let caller = app
                .authenticate(&created.owner_key, None, None)
                .await
                .unwrap();
            (scratch, app, caller)
        });
        Self {
            runtime,
            scratch: Some(scratch),
            app,
            caller,
        }
    }

    /// Uploads `file` in chunks of `chunk` bytes and compares the outcome,
    /// and the list left behind, with the model's.
    fn check(&self, file: &[u8], limits: ImportLimits, chunk: usize) -> TestCaseResult {
        let expected = model(file, &limits);
        self.runtime.block_on(async {
            let lists_before = self.app.lists(&self.caller).await.unwrap().len();
            let body = futures_util::stream::iter(
                file.chunks(chunk.max(1))
                    .map(|chunk| Ok::<_, std::io::Error>(Bytes::copy_from_slice(chunk)))
                    .collect::<Vec<_>>(),
            );
            let declaration = ListDeclaration {
                name: "fuzzed list".into(),
                source: "generated".into(),
                consent_basis: "property test".into(),
            };
            let result = self
                .app
                .import_list(&self.caller, declaration, body, limits)
                .await;
            let lists_after = self.app.lists(&self.caller).await.unwrap().len();
            let summary = match (result, &expected) {
                (Ok(summary), Outcome::Imported { .. }) => summary,
                (Err(AppError::OverLimit { code, .. }), Outcome::OverLimit(broken)) => {
                    prop_assert!(
                        broken.contains(&code),
                        "refused as {}, model {:?}",
                        code,
                        broken
                    );
                    prop_assert_eq!(lists_after, lists_before, "a refused file left a list");
                    return Ok(());
                }
                (Err(AppError::TooLarge(_)), Outcome::TooLarge)
                | (Err(AppError::Invalid { field: "file", .. }), Outcome::Invalid) => {
                    prop_assert_eq!(lists_after, lists_before, "a refused file left a list");
                    return Ok(());
                }
                (result, expected) => {
                    return Err(TestCaseError::fail(format!(
                        "got {result:?}, the model says {expected:?}"
                    )));
                }
            };
            let rejections = self
                .app
                .list_rejections(&self.caller, summary.list_id, 0, 10_000)
                .await
                .unwrap();
            let rejected: Vec<(u64, String)> = rejections
                .into_iter()
                .map(|(line, reason, _, _)| (line, reason))
                .collect();
            let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, reason) in &rejected {
                *counted.entry(reason.as_str()).or_default() += 1;
            }
            prop_assert_eq!(
                summary.rows,
                summary.imported + summary.rejected.values().sum::<u64>()
            );
            prop_assert!(
                summary.rejected.iter().all(|(reason, n)| counted
                    .get(reason)
                    .copied()
                    .unwrap_or(0)
                    == *n),
                "the counts {:?} are not the rows {:?}",
                summary.rejected,
                rejected
            );
            let view = self.app.list(&self.caller, summary.list_id).await.unwrap();
            prop_assert_eq!(view.imported, Some(summary.imported));
            prop_assert_eq!(
                Outcome::Imported {
                    rows: summary.rows,
                    imported: summary.imported,
                    rejected,
                },
                expected
            );
            Ok(())
        })
    }
}

impl Drop for Importer {
    fn drop(&mut self) {
        if let Some(scratch) = self.scratch.take() {
            self.runtime.block_on(async {
                self.app.close().await;
                scratch.cleanup().await;
            });
        }
    }
}

/// A cell as a client may write it: bare where that reads back the same,
/// quoted (with doubled quotes) otherwise or at random.
fn write_cell(cell: &str, quote: bool) -> String {
    let needs = cell.is_empty() || cell.starts_with('"') || cell.contains([',', '\r', '\n']);
    if quote || needs {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

const PHONES: [&str; 12] = [
    "5552010001",
    "(555) 201-0002",
    "+1 555 201 0003",
    "555.201.0004",
    "1-555-201-0005",
    "5552010001",
    "+15552010002",
    "12345",
    "not a number",
    "",
    "  ",
    "+44 20 7946 0958",
];

const HEADERS: [&str; 9] = [
    "cell",
    "Phone",
    "firstName",
    "last",
    "zip",
    "precinct",
    "Party, if known",
    "note \"a\"",
    "id",
];

#[derive(Debug, Clone)]
struct Sheet {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    quote: Vec<bool>,
    endings: Vec<&'static str>,
    /// Rows may be wider than the header.
    wide: bool,
    /// A last row that opens a quote it never closes.
    open_quote: bool,
    /// A byte that is not text, somewhere.
    poison: Option<(usize, &'static [u8])>,
}

impl Sheet {
    fn bytes(&self) -> Vec<u8> {
        let mut quotes = self.quote.iter().cycle();
        let mut endings = self.endings.iter().cycle();
        let header: Vec<String> = self.header.iter().map(|h| write_cell(h, false)).collect();
        let mut lines = vec![header.join(",")];
        let width = if self.wide { usize::MAX } else { header.len() };
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .take(width)
                .map(|cell| write_cell(cell, *quotes.next().unwrap_or(&false)))
                .collect();
            lines.push(cells.join(","));
        }
        let mut file = Vec::new();
        for line in lines {
            file.extend_from_slice(line.as_bytes());
            file.extend_from_slice(endings.next().unwrap_or(&"\n").as_bytes());
        }
        if self.open_quote {
            file.extend_from_slice(b"5552019999,\"never closed\n5552019998\n");
        }
        if let Some((at, bytes)) = self.poison {
            let at = at % (file.len() + 1);
            file.splice(at..at, bytes.iter().copied());
        }
        file
    }
}

fn sheet() -> impl Strategy<Value = Sheet> {
    let cell = prop_oneof![
        prop::sample::select(PHONES.to_vec()).prop_map(str::to_owned),
        "[a-zA-Z ,\"\n]{0,8}",
        any::<String>(),
    ];
    (
        (
            prop::bool::weighted(0.9),
            prop::sample::subsequence(HEADERS[1..].to_vec(), 0..=4),
        )
            .prop_map(|(phone, mut header)| {
                if phone {
                    header.push(HEADERS[0]);
                }
                header
            })
            .prop_shuffle(),
        prop::collection::vec(prop::collection::vec(cell, 0..7), 0..12),
        prop::collection::vec(any::<bool>(), 1..5),
        prop::collection::vec(prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n"]), 1..4),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        prop::option::weighted(
            0.15,
            (
                any::<usize>(),
                prop::sample::select(vec![&b"\xff"[..], b"\0", b"\xef\xbb\xbf", b"\x1b\x07"]),
            ),
        ),
    )
        .prop_map(
            |(header, rows, quote, endings, wide, open_quote, poison)| Sheet {
                header,
                rows,
                quote,
                endings,
                wide,
                open_quote,
                poison,
            },
        )
}

fn import_limits() -> impl Strategy<Value = ImportLimits> {
    prop_oneof![
        3 => Just(ImportLimits::default()),
        1 => (2usize..8, 8usize..80, 2usize..24).prop_map(|(c, h, f)| limits(c, h, f)),
        1 => (1u64..12).prop_map(|max_rows| ImportLimits {
            max_rows,
            ..ImportLimits::default()
        }),
    ]
}

#[test]
fn an_import_refuses_files_past_a_limit_and_accounts_for_every_row() {
    let importer = Importer::new();
    replay_corpus("csv_import", |file| {
        importer.check(file, ImportLimits::default(), 5)
    });
    // The hostile header of issue 18, made here rather than kept.
    let wide = format!("{}cell\n5552010001\n", "a,".repeat(100_000));
    importer
        .check(wide.as_bytes(), ImportLimits::default(), 64 * 1024)
        .unwrap();
    generated(
        "csv_import",
        4,
        (sheet(), import_limits(), 1usize..200),
        |(sheet, limits, chunk)| importer.check(&sheet.bytes(), limits, chunk),
    );
}
