//! Opt-out lists: importing an organization's external opt-out list (CSV or
//! JSON) onto its recipient streams, and exporting the organization's
//! opt-outs from the `opt_outs` read model.
//!
//! An import is all or nothing until it writes: the body is read within its
//! byte limit and every number is parsed first, so a too-large or unreadable
//! upload, or a single bad number, stores nothing. Then each distinct number
//! is one command on its recipient stream — the stream that the send path
//! checks — and a number already opted out gets no second event. Should the
//! database fail halfway, sending the same list again finishes the job.

use std::collections::HashSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use textbank_domain::list::{ListError, phone_column};
use textbank_domain::phone::{PhoneError, PhoneNumber, Region};
use textbank_domain::recipient::{self, OptOutSource};
use textbank_domain::{OrgId, Permission};
use textbank_projections::opt_outs::OptOuts;

use crate::command::execute;
use crate::{App, AppError, Caller};

/// The largest opt-out upload, in bytes.
pub const MAX_OPT_OUT_BYTES: u64 = 10 * 1024 * 1024;
/// The most numbers (rows or list items, duplicates included) one upload may
/// hold.
pub const MAX_OPT_OUT_NUMBERS: usize = 100_000;
/// Bad rows named in a refusal: enough to see the pattern, short enough to read.
const NAMED_BAD_ROWS: usize = 10;
/// A bad row's description is cut here, so a huge cell cannot swell the error.
const MAX_ROW_MESSAGE: usize = 120;
/// Recipient streams written at once: each command is a read and an append,
/// mostly waiting on the database.
const CONCURRENT_WRITES: usize = 8;
/// Opt-outs per read-model page while exporting.
const EXPORT_PAGE: u32 = 5_000;

/// How an opt-out upload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutFormat {
    /// A header row naming a phone column (as a contact list does), then one
    /// number per row.
    Csv,
    /// `{"phones": ["…", …]}`.
    Json,
}

/// What an import did, counting each distinct number once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OptOutImport {
    /// Numbers opted out by this import.
    pub imported: u64,
    /// Numbers that had already opted out; left as they were.
    pub already_opted_out: u64,
    /// Distinct numbers in the upload.
    pub total: u64,
}

/// One number that has opted out of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OptOutEntry {
    /// E.164.
    pub phone: String,
    /// How it reached us (`keyword_reply`, `texter`, `import`).
    pub source: String,
    pub opted_out_at: DateTime<Utc>,
}

/// An export in progress: the org's opt-outs, page by page in phone order,
/// so that a large list never sits in memory at once.
pub struct OptOutExport {
    app: App,
    org: OrgId,
    after: String,
    done: bool,
}

impl App {
    /// Imports an opt-out list streamed as `body`. Nothing is written unless
    /// the whole upload is within the limits and every number parses.
    pub async fn import_opt_outs<S, E>(
        &self,
        caller: &Caller,
        format: OptOutFormat,
        body: S,
    ) -> Result<OptOutImport, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        caller.require(Permission::ManageOptOuts)?;
        let bytes = read_body(body, MAX_OPT_OUT_BYTES).await?;
        let region = self.default_region();
        // Parsing 100,000 numbers takes a while; keep it off the async workers.
        let phones = tokio::task::spawn_blocking(move || parse_upload(format, &bytes, region))
            .await
            .map_err(|err| AppError::Io(std::io::Error::other(err)))??;

        let metadata = caller.metadata();
        let metadata = &metadata;
        let org = caller.org_id;
        let total = phones.len() as u64;
        let mut writes = futures_util::stream::iter(phones)
            .map(|phone| async move {
                let stream = recipient::stream_id(org, &phone);
                execute(self, &stream, metadata, |state| {
                    Ok(recipient::decide_manual_opt_out(
                        state,
                        &phone,
                        OptOutSource::Import,
                        None,
                        None,
                    ))
                })
                .await
            })
            .buffer_unordered(CONCURRENT_WRITES);
        let mut imported = 0;
        while let Some(written) = writes.next().await {
            if written?.is_some() {
                imported += 1;
            }
        }
        Ok(OptOutImport {
            imported,
            already_opted_out: total - imported,
            total,
        })
    }

    /// Starts an export of the caller's org's opt-outs, once the read model
    /// has caught up with everything written before this call.
    pub async fn export_opt_outs(&self, caller: &Caller) -> Result<OptOutExport, AppError> {
        caller.require(Permission::ManageOptOuts)?;
        let head = self.events().head_position().await?;
        self.wait_for_projection(&OptOuts, head).await?;
        Ok(OptOutExport {
            app: self.clone(),
            org: caller.org_id,
            after: String::new(),
            done: false,
        })
    }
}

impl OptOutExport {
    /// The next page of opt-outs; empty once all have been read.
    pub async fn next_page(&mut self) -> Result<Vec<OptOutEntry>, AppError> {
        if self.done {
            return Ok(Vec::new());
        }
        // Every E.164 number sorts after "", so the first page starts at the
        // beginning; later ones continue after the last number read.
        let rows = textbank_projections::opt_outs::page(
            self.app.database(),
            self.org,
            &self.after,
            EXPORT_PAGE,
        )
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(err) => {
                self.done = true;
                return Err(err.into());
            }
        };
        if rows.len() < EXPORT_PAGE as usize {
            self.done = true;
        }
        if let Some((phone, _, _)) = rows.last() {
            self.after.clone_from(phone);
        }
        Ok(rows
            .into_iter()
            .map(|(phone, source, opted_out_at)| OptOutEntry {
                phone,
                source,
                opted_out_at,
            })
            .collect())
    }
}

/// Reads the whole body, refusing it as soon as it passes `max_bytes`.
async fn read_body<S, E>(mut body: S, max_bytes: u64) -> Result<Vec<u8>, AppError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| AppError::Invalid {
            field: "body",
            message: format!("the upload broke off: {err}"),
        })?;
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(AppError::TooLarge(format!(
                "the upload is larger than {max_bytes} bytes; nothing was stored"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The distinct numbers of an upload, in the order they first appear, or
/// why the upload is refused.
fn parse_upload(
    format: OptOutFormat,
    bytes: &[u8],
    region: Region,
) -> Result<Vec<PhoneNumber>, AppError> {
    match format {
        OptOutFormat::Csv => parse_csv(bytes, region),
        OptOutFormat::Json => parse_json(bytes, region),
    }
}

fn too_many() -> AppError {
    AppError::TooLarge(format!(
        "the upload has more than {MAX_OPT_OUT_NUMBERS} numbers; nothing was stored"
    ))
}

/// Collects the numbers of an upload and the rows that are not numbers.
struct Numbers {
    region: Region,
    seen: HashSet<PhoneNumber>,
    phones: Vec<PhoneNumber>,
    bad: Vec<String>,
    bad_count: usize,
}

impl Numbers {
    fn new(region: Region) -> Self {
        Self {
            region,
            seen: HashSet::new(),
            phones: Vec::new(),
            bad: Vec::new(),
            bad_count: 0,
        }
    }

    /// Takes one number as written; `place` names its row for the uploader.
    fn add(&mut self, place: impl FnOnce() -> String, raw: &str) {
        match PhoneNumber::parse(raw, self.region) {
            Ok(phone) => {
                if self.seen.insert(phone.clone()) {
                    self.phones.push(phone);
                }
            }
            Err(err) => {
                self.bad_count += 1;
                if self.bad.len() < NAMED_BAD_ROWS {
                    let why = match err {
                        PhoneError::Missing => "no phone number".to_owned(),
                        PhoneError::Invalid(why) => why,
                    };
                    self.bad.push(format!("{}: {}", place(), shorten(&why)));
                }
            }
        }
    }

    /// The distinct numbers, or a refusal naming the first bad rows.
    fn finish(self, field: &'static str) -> Result<Vec<PhoneNumber>, AppError> {
        if self.bad_count == 0 {
            return Ok(self.phones);
        }
        let more = self.bad_count - self.bad.len();
        let mut message = format!(
            "{} {} could not be read as a phone number; nothing was stored: {}",
            self.bad_count,
            if self.bad_count == 1 {
                "entry"
            } else {
                "entries"
            },
            self.bad.join("; ")
        );
        if more > 0 {
            message.push_str(&format!(" (and {more} more)"));
        }
        Err(AppError::invalid(field, message))
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ROW_MESSAGE) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn csv_error(err: csv::Error) -> AppError {
    AppError::invalid("file", format!("the file is not valid CSV: {err}"))
}

/// Rows are numbered as a spreadsheet numbers them (as the list importer
/// does): the header is row 1.
fn row_number(data_rows_before: usize) -> usize {
    data_rows_before + 2
}

fn parse_csv(bytes: &[u8], region: Region) -> Result<Vec<PhoneNumber>, AppError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        let why =
            "the file is empty; it needs a header row naming the phone column, then the numbers";
        return Err(AppError::invalid("file", why));
    }
    let header = record
        .iter()
        .enumerate()
        .map(|(index, field)| text(field, 1).map(|t| header_cell(t, index)))
        .collect::<Result<Vec<_>, _>>()?;
    let phone = phone_column(&header).ok_or_else(|| AppError::from(ListError::NoPhoneColumn))?;
    let mut numbers = Numbers::new(region);
    let mut rows = 0;
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = row_number(rows);
        rows += 1;
        if rows > MAX_OPT_OUT_NUMBERS {
            return Err(too_many());
        }
        let raw = text(record.get(phone).unwrap_or_default(), line)?;
        numbers.add(|| format!("line {line}"), raw);
    }
    if rows == 0 {
        return Err(AppError::invalid(
            "file",
            "the file has a header row but no numbers",
        ));
    }
    numbers.finish("file")
}

/// A field as text, or an error naming the line that is not UTF-8 text.
fn text(field: &[u8], line: usize) -> Result<&str, AppError> {
    std::str::from_utf8(field).map_err(|_| {
        AppError::invalid(
            "file",
            format!("line {line} is not UTF-8 text; save the file as UTF-8 CSV"),
        )
    })
}

/// A header cell without the UTF-8 byte-order mark that may open the file.
fn header_cell(cell: &str, index: usize) -> &str {
    if index == 0 {
        cell.trim_start_matches('\u{feff}')
    } else {
        cell
    }
}

#[derive(Deserialize)]
struct JsonUpload {
    phones: Vec<String>,
}

fn parse_json(bytes: &[u8], region: Region) -> Result<Vec<PhoneNumber>, AppError> {
    let upload: JsonUpload = serde_json::from_slice(bytes).map_err(|err| {
        AppError::invalid(
            "body",
            format!("the body must be {{\"phones\": [\"…\", …]}}: {err}"),
        )
    })?;
    if upload.phones.is_empty() {
        return Err(AppError::invalid("phones", "phones is empty"));
    }
    if upload.phones.len() > MAX_OPT_OUT_NUMBERS {
        return Err(too_many());
    }
    let mut numbers = Numbers::new(region);
    for (index, raw) in upload.phones.iter().enumerate() {
        numbers.add(|| format!("phones[{index}]"), raw);
    }
    numbers.finish("phones")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<String>, AppError> {
        parse_csv(text.as_bytes(), Region::US)
            .map(|phones| phones.iter().map(|p| p.as_str().to_owned()).collect())
    }

    #[test]
    fn the_phone_column_is_found_by_the_list_importers_names() {
        assert_eq!(phone_column(&["name", "Cell Phone"]), Some(1));
        assert_eq!(phone_column(&["PHONE_NUMBER"]), Some(0));
        assert_eq!(phone_column(&["phone", "mobile"]), Some(1));
        assert_eq!(phone_column(&["name", "email"]), None);
    }

    #[test]
    fn a_bom_and_duplicates_are_handled_and_extra_columns_ignored() {
        let phones =
            csv("\u{feff}Phone,notes,notes\n(555) 201-0001,a,b\n555.201.0001,,\n+1 555 201 0002\n")
                .unwrap();
        assert_eq!(phones, ["+15552010001", "+15552010002"]);
    }

    #[test]
    fn bad_rows_are_named_by_line_and_value_up_to_ten() {
        let mut file = String::from("phone\n5552010001\n");
        for i in 0..12 {
            file.push_str(&format!("bad{i}\n"));
        }
        let Err(AppError::Invalid { message, .. }) = csv(&file) else {
            panic!("accepted");
        };
        assert!(message.starts_with("12 entries"), "{message}");
        assert!(message.contains("line 3: \"bad0\""), "{message}");
        assert!(message.contains("line 12: \"bad9\""), "{message}");
        assert!(!message.contains("bad10"), "{message}");
        assert!(message.contains("(and 2 more)"), "{message}");
    }

    #[test]
    fn an_empty_file_or_list_is_refused() {
        assert!(matches!(csv(""), Err(AppError::Invalid { .. })));
        assert!(matches!(csv("phone\n"), Err(AppError::Invalid { .. })));
        assert!(matches!(
            parse_json(br#"{"phones": []}"#, Region::US),
            Err(AppError::Invalid { .. })
        ));
    }
}
