//! Contact-list import: the CSV upload pipeline.
//!
//! 1. Spool the body to a temporary file while hashing it and enforcing the
//!    byte limit and the limits on columns, header and field sizes (see
//!    `csv_shape`) — nothing is stored if the upload breaks one or breaks off.
//! 2. Inspect the file (blocking thread): UTF-8, CSV shape, header, row limit,
//!    at least one contact row. Every problem that makes the file unusable is
//!    found here, before any event is written.
//! 3. Import: a blocking thread reads the file again, normalizes phones,
//!    resolves time zones, drops duplicates and emits chunk events; the async
//!    side appends them to the list's stream as they come (the two overlap).
//!    The list becomes usable only with its final `ListImportCompleted`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use textbank_domain::list::{
    self, ColumnMap, Contact, ListEvent, MAX_DECLARATION_LEN, MAX_LIST_NAME_LEN, Provenance,
    RejectReason, Rejection, check_declaration,
};
use textbank_domain::phone::{PhoneError, PhoneNumber, Region};
use textbank_domain::timezone::ContactZone;
use textbank_domain::{ListId, Permission};
use textbank_projections::catch_up;
use textbank_projections::lists::{self, ListView, Lists};
use textbank_projections::opt_outs::{self, OptOuts};
use textbank_store::{EventStore, ExpectedVersion};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

use crate::App;
use crate::caller::Caller;
use crate::command::to_new_events;
use crate::csv_shape::{Shape, ShapeCheck};
use crate::error::AppError;

/// Contacts (or rejections) per event.
const CHUNK: usize = 1_000;

/// What the uploader declares about a list.
#[derive(Debug, Clone)]
pub struct ListDeclaration {
    pub name: String,
    pub source: String,
    pub consent_basis: String,
}

/// What a list upload may hold. Past `max_bytes` or `max_rows` it is too
/// large (413); past the others, unusable (422 naming the limit). Columns
/// and field sizes bound what every reader of the list gets back.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    pub max_bytes: u64,
    pub max_rows: u64,
    /// Columns in any row, the header included.
    pub max_columns: usize,
    /// Bytes of the header row as written.
    pub max_header_bytes: usize,
    /// Bytes of any one field (a quoted field without its quotes).
    pub max_field_bytes: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self {
            max_bytes: 200_000_000,
            max_rows: 1_000_000,
            max_columns: 200,
            max_header_bytes: 16 * 1024,
            max_field_bytes: 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub list_id: ListId,
    /// Data rows in the file (the header not counted).
    pub rows: u64,
    pub imported: u64,
    /// Rejected rows by reason; every reason is present.
    pub rejected: BTreeMap<&'static str, u64>,
    pub position: u64,
}

impl App {
    /// Imports a CSV contact list streamed as `body`.
    pub async fn import_list<S, E>(
        &self,
        caller: &Caller,
        declaration: ListDeclaration,
        body: S,
        limits: ImportLimits,
    ) -> Result<ImportSummary, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        caller.require(Permission::UploadLists)?;
        let name = check_declaration("name", &declaration.name, MAX_LIST_NAME_LEN)?;
        let source = check_declaration("source", &declaration.source, MAX_DECLARATION_LEN)?;
        let consent_basis = check_declaration(
            "consent_basis",
            &declaration.consent_basis,
            MAX_DECLARATION_LEN,
        )?;

        let spooled = spool(body, limits).await?;
        let path = spooled.file.path().to_owned();
        let max_rows = limits.max_rows;
        let inspected = tokio::task::spawn_blocking(move || inspect(&path, max_rows))
            .await
            .map_err(|err| AppError::Io(std::io::Error::other(err)))??;
        // Numbers that opted out of the org are rejected, never imported.
        // Read before the list's first event, so that a failure here leaves
        // no list behind.
        catch_up(self.events(), &OptOuts).await?;
        let opted_out = opt_outs::opted_out_phones(self.database(), caller.org_id).await?;

        let list_id = ListId::new();
        let stream = list::stream_id(list_id);
        let metadata = caller.metadata();
        let started = ListEvent::ListUploadStarted {
            list_id,
            org_id: caller.org_id,
            provenance: Box::new(Provenance {
                name,
                source,
                consent_basis,
                uploaded_by: metadata.actor.clone(),
                file_sha256: spooled.sha256.clone(),
                file_bytes: spooled.bytes,
            }),
            columns: inspected.header.clone(),
            phone_column: inspected.header[inspected.columns.phone].clone(),
            custom_fields: inspected.columns.field_names(),
        };
        let appender = ListAppender {
            store: self.events(),
            stream,
            metadata,
        };
        let mut version = appender.append(ExpectedVersion::NoStream, started).await?;

        let (events, mut incoming) = mpsc::channel::<ListEvent>(4);
        let path = spooled.file.path().to_owned();
        let region = self.default_region();
        let columns = inspected.columns.clone();
        let unterminated_row = spooled.shape.unterminated_row;
        let producer = tokio::task::spawn_blocking(move || {
            produce(
                &path,
                &columns,
                region,
                &opted_out,
                unterminated_row,
                &events,
            )
        });
        // Project contacts while later chunks are still being appended, so
        // the list is queryable soon after its last chunk lands.
        let (appending, finished) = watch::channel(false);
        let projector = tokio::spawn(project_while(self.store().clone(), finished));
        while let Some(event) = incoming.recv().await {
            version = appender
                .append(ExpectedVersion::Exact(version), event)
                .await?;
        }
        let _ = appending.send(true);
        projector
            .await
            .map_err(|err| AppError::Io(std::io::Error::other(err)))??;
        let counts = producer
            .await
            .map_err(|err| AppError::Io(std::io::Error::other(err)))??;
        let completed = ListEvent::ListImportCompleted {
            rows: counts.rows,
            imported: counts.imported,
            rejected: counts.rejected.clone(),
        };
        appender
            .append(ExpectedVersion::Exact(version), completed)
            .await?;
        drop(spooled);
        let position = catch_up(self.events(), &Lists).await?;
        Ok(ImportSummary {
            list_id,
            rows: counts.rows,
            imported: counts.imported,
            rejected: RejectReason::ALL
                .into_iter()
                .map(|reason| {
                    (
                        reason.as_str(),
                        counts.rejected.get(&reason).copied().unwrap_or(0),
                    )
                })
                .collect(),
            position,
        })
    }
}

/// Keeps the lists read model caught up until `finished` turns true.
async fn project_while(
    store: std::sync::Arc<dyn EventStore>,
    mut finished: watch::Receiver<bool>,
) -> Result<(), AppError> {
    loop {
        catch_up(store.as_ref(), &Lists).await?;
        if *finished.borrow() {
            return Ok(());
        }
        tokio::select! {
            _ = finished.changed() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
    }
}

struct ListAppender<'a> {
    store: &'a dyn EventStore,
    stream: textbank_domain::StreamId,
    metadata: textbank_domain::EventMetadata,
}

impl ListAppender<'_> {
    /// Appends one event; returns the stream's new version.
    async fn append(&self, expected: ExpectedVersion, event: ListEvent) -> Result<u64, AppError> {
        let events = to_new_events(std::slice::from_ref(&event), &self.metadata)?;
        let result = self.store.append(&self.stream, expected, events).await?;
        Ok(result.last_version)
    }
}

struct Spooled {
    file: tempfile::NamedTempFile,
    sha256: String,
    bytes: u64,
    shape: Shape,
}

async fn spool<S, E>(mut body: S, limits: ImportLimits) -> Result<Spooled, AppError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let file = tempfile::NamedTempFile::new()?;
    let mut writer =
        tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file.reopen()?));
    let mut hasher = Sha256::new();
    let mut shape = ShapeCheck::new(limits);
    let max_bytes = limits.max_bytes;
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| AppError::Invalid {
            field: "body",
            message: format!("the upload broke off: {err}"),
        })?;
        bytes += chunk.len() as u64;
        if bytes > max_bytes {
            return Err(AppError::TooLarge(format!(
                "the file is larger than {max_bytes} bytes; nothing was stored"
            )));
        }
        // Refuses a file past a shape limit at the chunk that breaks it,
        // so a 10 MB header line is never read whole.
        shape.feed(&chunk)?;
        hasher.update(&chunk);
        writer.write_all(&chunk).await?;
    }
    writer.flush().await?;
    let shape = shape.finish()?;
    if shape.unterminated_row == Some(1) {
        return Err(invalid_file(
            "the header row opens a quote that is never closed".into(),
        ));
    }
    Ok(Spooled {
        file,
        sha256: hex::encode(hasher.finalize()),
        bytes,
        shape,
    })
}

struct Inspected {
    header: Vec<String>,
    columns: ColumnMap,
}

fn invalid_file(message: String) -> AppError {
    AppError::Invalid {
        field: "file",
        message,
    }
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, AppError> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_path(path)
        .map_err(|err| AppError::Io(std::io::Error::other(err)))
}

/// Rows are numbered as a spreadsheet numbers them: the header is row 1,
/// and a quoted field spanning several text lines is still one row.
fn row_number(data_rows_before: u64) -> u64 {
    data_rows_before + 2
}

fn csv_error(err: csv::Error) -> AppError {
    invalid_file(format!("the file is not valid CSV: {err}"))
}

/// Reads the header and checks every row, so that an unusable file is
/// refused before anything is stored.
fn inspect(path: &Path, max_rows: u64) -> Result<Inspected, AppError> {
    let mut reader = reader(path)?;
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(invalid_file(
            "the file is empty; it needs a header row and contacts".into(),
        ));
    }
    let header = utf8_fields(&record, 1)?;
    let columns = ColumnMap::from_header(&header.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut rows = 0u64;
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = row_number(rows);
        rows += 1;
        if rows > max_rows {
            return Err(AppError::TooLarge(format!(
                "the file has more than {max_rows} rows; nothing was stored"
            )));
        }
        if record.len() > header.len() {
            return Err(invalid_file(format!(
                "line {line} has {} fields but the header has {}; is this a CSV file with a header row?",
                record.len(),
                header.len()
            )));
        }
        utf8_fields(&record, line)?;
    }
    if rows == 0 {
        return Err(invalid_file(
            "the file has a header row but no contacts; nothing was stored".into(),
        ));
    }
    Ok(Inspected { header, columns })
}

/// The record's fields as text, or an error naming the line that is not
/// UTF-8 text.
fn utf8_fields(record: &csv::ByteRecord, line: u64) -> Result<Vec<String>, AppError> {
    record
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let text = std::str::from_utf8(field).map_err(|_| {
                invalid_file(format!(
                    "line {line} is not UTF-8 text; save the file as UTF-8 CSV"
                ))
            })?;
            if text.contains('\0') {
                return Err(invalid_file(format!(
                    "line {line} holds binary data; upload a CSV text file"
                )));
            }
            // A UTF-8 byte-order mark may open the file.
            let text = if index == 0 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            Ok(text.to_owned())
        })
        .collect()
}

struct Counts {
    rows: u64,
    imported: u64,
    rejected: BTreeMap<RejectReason, u64>,
}

/// Reads the (inspected) file and emits `ContactsImported` and
/// `RowsRejected` chunks.
fn produce(
    path: &Path,
    columns: &ColumnMap,
    region: Region,
    opted_out: &HashSet<String>,
    unterminated_row: Option<u64>,
    events: &mpsc::Sender<ListEvent>,
) -> Result<Counts, AppError> {
    let mut reader = reader(path)?;
    let mut record = csv::StringRecord::new();
    reader.read_record(&mut record).map_err(csv_error)?; // the header
    let mut seen: HashSet<String> = HashSet::new();
    let mut counts = Counts {
        rows: 0,
        imported: 0,
        rejected: BTreeMap::new(),
    };
    let mut contacts = Vec::with_capacity(CHUNK);
    let mut rejections = Vec::new();
    let send = |event: ListEvent| {
        events
            .blocking_send(event)
            .map_err(|_| AppError::Io(std::io::Error::other("the import was abandoned")))
    };
    while reader.read_record(&mut record).map_err(csv_error)? {
        let line = row_number(counts.rows);
        counts.rows += 1;
        let cell = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .map(str::trim)
                .unwrap_or("")
        };
        let raw_phone = cell(Some(columns.phone));
        let reject = |reason: RejectReason, detail: String| Rejection {
            line,
            reason,
            raw_phone: raw_phone.to_owned(),
            detail,
        };
        // The csv crate closes a quote the file never closes at its end,
        // taking the rest of the file into one field: not a contact.
        let parsed = if unterminated_row == Some(line) {
            Err(None)
        } else {
            PhoneNumber::parse(raw_phone, region).map_err(Some)
        };
        let rejection = match parsed {
            Err(None) => Some(reject(
                RejectReason::Malformed,
                "a quote opened in this row is never closed".into(),
            )),
            Err(Some(PhoneError::Missing)) => {
                Some(reject(RejectReason::MissingPhone, "no phone number".into()))
            }
            Err(Some(PhoneError::Invalid(why))) => Some(reject(RejectReason::InvalidPhone, why)),
            Ok(phone) if !seen.insert(phone.as_str().to_owned()) => Some(reject(
                RejectReason::Duplicate,
                format!("an earlier row has the same number ({phone})"),
            )),
            Ok(phone) if opted_out.contains(phone.as_str()) => Some(reject(
                RejectReason::OptedOut,
                format!("opted out of this organization ({})", phone.as_str()),
            )),
            Ok(phone) => {
                let zip = cell(columns.zip);
                contacts.push(Contact {
                    line,
                    zone: ContactZone::resolve((!zip.is_empty()).then_some(zip), &phone),
                    phone: phone.as_str().to_owned(),
                    first_name: cell(columns.first_name).to_owned(),
                    last_name: cell(columns.last_name).to_owned(),
                    zip: zip.to_owned(),
                    external_id: cell(columns.external_id).to_owned(),
                    fields: columns
                        .custom
                        .iter()
                        .map(|(index, name)| (name.clone(), cell(Some(*index)).to_owned()))
                        .filter(|(_, value)| !value.is_empty())
                        .collect(),
                });
                counts.imported += 1;
                None
            }
        };
        if let Some(rejection) = rejection {
            *counts.rejected.entry(rejection.reason).or_default() += 1;
            rejections.push(rejection);
        }
        if contacts.len() == CHUNK {
            send(ListEvent::ContactsImported {
                contacts: std::mem::take(&mut contacts),
            })?;
        }
        if rejections.len() == CHUNK {
            send(ListEvent::RowsRejected {
                rejections: std::mem::take(&mut rejections),
            })?;
        }
    }
    if !contacts.is_empty() {
        send(ListEvent::ContactsImported { contacts })?;
    }
    if !rejections.is_empty() {
        send(ListEvent::RowsRejected { rejections })?;
    }
    Ok(counts)
}

impl App {
    pub async fn lists(&self, caller: &Caller) -> Result<Vec<ListView>, AppError> {
        caller.require(Permission::ReadLists)?;
        Ok(lists::lists(self.database(), caller.org_id).await?)
    }

    /// One of the caller's org's lists; another org's list is "not found".
    pub async fn list(&self, caller: &Caller, list_id: ListId) -> Result<ListView, AppError> {
        caller.require(Permission::ReadLists)?;
        lists::list(self.database(), caller.org_id, list_id)
            .await?
            .ok_or(AppError::NotFound("list"))
    }

    /// A page of a list's rejected rows (line, reason, phone as written,
    /// detail) after `after_line`.
    pub async fn list_rejections(
        &self,
        caller: &Caller,
        list_id: ListId,
        after_line: u64,
        limit: u32,
    ) -> Result<Vec<(u64, String, String, String)>, AppError> {
        self.list(caller, list_id).await?;
        Ok(lists::rejections(self.database(), list_id, after_line, limit).await?)
    }
}
