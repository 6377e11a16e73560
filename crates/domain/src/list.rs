//! The contact-list aggregate (`list-{id}` stream): an upload's provenance,
//! its contacts in chunks, the rows it rejected and why, and its completion.
//! Also the column rules of the CSV format: which header is the phone, the
//! names, the ZIP, and which columns become custom fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::{ListId, OrgId};
use crate::metadata::Actor;
use crate::stream::StreamId;
use crate::timezone::ContactZone;

pub const MAX_LIST_NAME_LEN: usize = 200;
pub const MAX_DECLARATION_LEN: usize = 500;

pub fn stream_id(list: ListId) -> StreamId {
    StreamId::of("list", &[&list])
}

/// What the uploader declared about the list, and what we measured of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Provenance {
    pub name: String,
    /// Where the numbers came from (e.g. "voter file 2026-10", "sign-up form").
    pub source: String,
    /// The consent basis declared for texting them (e.g. "opted in on
    /// website", "existing supporter relationship").
    pub consent_basis: String,
    pub uploaded_by: Actor,
    pub file_sha256: String,
    pub file_bytes: u64,
}

/// One imported contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    /// The row's number as a spreadsheet shows it: the header is 1, and a
    /// quoted field spanning text lines does not add rows.
    pub line: u64,
    /// E.164.
    pub phone: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub zip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// Time zone and state, from the ZIP, else the area code.
    pub zone: ContactZone,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// Why a row was not imported.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    MissingPhone,
    InvalidPhone,
    /// The number appears earlier in the same list; the first row is kept.
    Duplicate,
    /// The number has opted out of the organization.
    OptedOut,
    /// The row is not well-formed CSV: it opens a quote the file never
    /// closes.
    Malformed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::MissingPhone,
        RejectReason::InvalidPhone,
        RejectReason::Duplicate,
        RejectReason::OptedOut,
        RejectReason::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingPhone => "missing_phone",
            Self::InvalidPhone => "invalid_phone",
            Self::Duplicate => "duplicate",
            Self::OptedOut => "opted_out",
            Self::Malformed => "malformed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    pub line: u64,
    pub reason: RejectReason,
    /// The phone cell as written (for the uploader to fix).
    pub raw_phone: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum ListEvent {
    ListUploadStarted {
        list_id: ListId,
        org_id: OrgId,
        provenance: Box<Provenance>,
        /// The header as written, and how each column is used.
        columns: Vec<String>,
        phone_column: String,
        custom_fields: Vec<String>,
    },
    ContactsImported {
        contacts: Vec<Contact>,
    },
    RowsRejected {
        rejections: Vec<Rejection>,
    },
    /// The list is complete and usable. An upload without this event was
    /// interrupted and is never used.
    ListImportCompleted {
        rows: u64,
        imported: u64,
        rejected: BTreeMap<RejectReason, u64>,
    },
}

impl DomainEvent for ListEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the file has no phone column; name one of: {}", PHONE_HEADERS.join(", "))]
    NoPhoneColumn,
    #[error("the header has two columns named {0:?}")]
    DuplicateColumn(String),
}

/// Checks the declared name, source and consent basis.
pub fn check_declaration(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ListError> {
    let value = value.trim();
    let invalid = |problem: String| ListError::Invalid { field, problem };
    if value.is_empty() {
        return Err(invalid("is required".into()));
    }
    if value.chars().count() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(value.to_owned())
}

/// Header names (normalized: lower case, letters and digits only) that hold
/// the phone, in order of preference: a list with both `cell` and `phone`
/// texts the cell.
pub const PHONE_HEADERS: [&str; 12] = [
    "cell",
    "cellphone",
    "cellnumber",
    "mobile",
    "mobilephone",
    "mobilenumber",
    "wireless",
    "phone",
    "phonenumber",
    "telephone",
    "tel",
    "number",
];
const FIRST_NAME_HEADERS: [&str; 4] = ["firstname", "first", "fname", "givenname"];
const LAST_NAME_HEADERS: [&str; 5] = ["lastname", "last", "lname", "surname", "familyname"];
const ZIP_HEADERS: [&str; 5] = ["zip", "zipcode", "zip5", "postalcode", "postcode"];
const EXTERNAL_ID_HEADERS: [&str; 4] = ["externalid", "voterid", "vanid", "id"];

/// What each column of a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    pub phone: usize,
    pub first_name: Option<usize>,
    pub last_name: Option<usize>,
    pub zip: Option<usize>,
    pub external_id: Option<usize>,
    /// (column index, template field name) of every other column.
    pub custom: Vec<(usize, String)>,
}

fn squash(header: &str) -> String {
    header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A header as a template field name: lower case, `_` for anything else,
/// never starting with a digit. Empty headers become `column_N`.
fn field_name(header: &str, index: usize) -> String {
    let mut name = String::with_capacity(header.len());
    for c in header.trim().chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_owned();
    match name.chars().next() {
        None => format!("column_{}", index + 1),
        Some(c) if c.is_ascii_digit() => format!("c_{name}"),
        Some(_) => name,
    }
}

/// The phone column of a header row, by the names (and preference order) of
/// [`PHONE_HEADERS`], ignoring case, spaces and punctuation.
pub fn phone_column(header: &[&str]) -> Option<usize> {
    let squashed: Vec<String> = header.iter().map(|h| squash(h)).collect();
    find_column(&squashed, &PHONE_HEADERS)
}

fn find_column(squashed: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|name| squashed.iter().position(|h| h == name))
}

impl ColumnMap {
    /// Maps a header row. Spoke's format (firstName,lastName,cell,zip,
    /// external_id,…) maps as-is.
    pub fn from_header(header: &[&str]) -> Result<Self, ListError> {
        let squashed: Vec<String> = header.iter().map(|h| squash(h)).collect();
        let find = |names: &[&str]| find_column(&squashed, names);
        let phone = find(&PHONE_HEADERS).ok_or(ListError::NoPhoneColumn)?;
        let first_name = find(&FIRST_NAME_HEADERS);
        let last_name = find(&LAST_NAME_HEADERS);
        let zip = find(&ZIP_HEADERS);
        let external_id = find(&EXTERNAL_ID_HEADERS);
        let standard = [Some(phone), first_name, last_name, zip, external_id];
        let mut custom = Vec::new();
        let mut seen: Vec<String> = [
            "first_name",
            "last_name",
            "texter_name",
            "zip",
            "external_id",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for (index, raw) in header.iter().enumerate() {
            if standard.contains(&Some(index)) {
                continue;
            }
            let name = field_name(raw, index);
            if seen.contains(&name) {
                return Err(ListError::DuplicateColumn(raw.trim().to_owned()));
            }
            seen.push(name.clone());
            custom.push((index, name));
        }
        Ok(Self {
            phone,
            first_name,
            last_name,
            zip,
            external_id,
            custom,
        })
    }

    /// Template fields a contact of this list has.
    pub fn field_names(&self) -> Vec<String> {
        self.custom.iter().map(|(_, name)| name.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spokes_upload_format_maps_as_is() {
        let map = ColumnMap::from_header(&[
            "firstName",
            "lastName",
            "cell",
            "zip",
            "external_id",
            "precinct",
        ])
        .unwrap();
        assert_eq!(map.phone, 2);
        assert_eq!(
            (map.first_name, map.last_name, map.zip, map.external_id),
            (Some(0), Some(1), Some(3), Some(4))
        );
        assert_eq!(map.custom, vec![(5, "precinct".to_owned())]);
    }

    #[test]
    fn phone_columns_are_found_by_common_names_and_cell_wins() {
        for header in ["Phone", "PHONE_NUMBER", "Mobile", "cell phone", "Tel"] {
            assert_eq!(
                ColumnMap::from_header(&["name", header]).unwrap().phone,
                1,
                "{header}"
            );
        }
        let both = ColumnMap::from_header(&["phone", "Cell"]).unwrap();
        assert_eq!(both.phone, 1);
        // The other number stays available to scripts as a custom field.
        assert_eq!(both.custom, vec![(0, "phone".to_owned())]);
    }

    #[test]
    fn a_file_without_a_phone_column_is_refused() {
        let err = ColumnMap::from_header(&["name", "email"]).unwrap_err();
        assert_eq!(err, ListError::NoPhoneColumn);
        assert!(err.to_string().contains("cell"));
    }

    #[test]
    fn custom_headers_become_template_field_names() {
        let map =
            ColumnMap::from_header(&["cell", "Polling Place", "2024 vote", "", "Ward #"]).unwrap();
        assert_eq!(
            map.field_names(),
            ["polling_place", "c_2024_vote", "column_4", "ward"]
        );
    }

    #[test]
    fn colliding_custom_headers_are_refused() {
        let err = ColumnMap::from_header(&["cell", "Ward", "ward"]).unwrap_err();
        assert_eq!(err, ListError::DuplicateColumn("ward".into()));
    }

    #[test]
    fn declarations_are_required_and_bounded() {
        assert!(check_declaration("source", "  ", 10).is_err());
        assert!(check_declaration("source", &"x".repeat(11), 10).is_err());
        assert_eq!(
            check_declaration("source", " voter file ", 20).unwrap(),
            "voter file"
        );
    }
}
