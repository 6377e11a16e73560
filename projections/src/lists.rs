//! Read model "lists": contact lists, their contacts and rejected rows, from
//! the `list-*` streams. A list is usable once its status is `complete`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::QueryBuilder;
use textbank_domain::list::{Contact, ListEvent, Rejection};
use textbank_domain::{ListId, OrgId};
use textbank_store::{Database, StoreError, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

use crate::batch::Batch;
use crate::runner::{ProjectionError, Projector, aggregate_event};

pub struct Lists;

#[async_trait]
impl Projector for Lists {
    fn name(&self) -> &'static str {
        "lists"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["lists", "contacts", "list_rejections"]
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for event in batch.events() {
            let Some((list, Some(list_event))) =
                aggregate_event::<ListEvent>("lists", "list-", event)?
            else {
                continue;
            };
            apply_one(tx, list, &list_event, event.recorded_at).await?;
        }
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::InvalidInput(err.to_string()))
}

async fn apply_one(
    tx: &mut StoreTx,
    list: Uuid,
    event: &ListEvent,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    match event {
        ListEvent::ListUploadStarted {
            org_id,
            provenance,
            columns,
            phone_column,
            custom_fields,
            ..
        } => {
            let (uploaded_by, columns, custom_fields) = (
                to_json(&provenance.uploaded_by)?,
                to_json(columns)?,
                to_json(custom_fields)?,
            );
            on_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO lists (list_id, org_id, name, source, consent_basis, uploaded_by, uploaded_at,
                                        file_sha256, file_bytes, columns, phone_column, custom_fields, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'importing')
                     ON CONFLICT DO NOTHING",
                )
                .bind(list)
                .bind(Uuid::from(*org_id))
                .bind(&provenance.name)
                .bind(&provenance.source)
                .bind(&provenance.consent_basis)
                .bind(&uploaded_by)
                .bind(at)
                .bind(&provenance.file_sha256)
                .bind(provenance.file_bytes as i64)
                .bind(&columns)
                .bind(phone_column)
                .bind(&custom_fields)
                .execute(conn)
                .await
                .map(|_| ())?
            })
        }
        ListEvent::ContactsImported { contacts } => insert_contacts(tx, list, contacts).await?,
        ListEvent::RowsRejected { rejections } => insert_rejections(tx, list, rejections).await?,
        ListEvent::ListImportCompleted {
            rows,
            imported,
            rejected,
        } => {
            let rejected = to_json(rejected)?;
            on_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE lists SET status = 'complete', rows = $1, imported = $2, rejected = $3, completed_at = $4
                      WHERE list_id = $5",
                )
                .bind(*rows as i64)
                .bind(*imported as i64)
                .bind(&rejected)
                .bind(at)
                .bind(list)
                .execute(conn)
                .await
                .map(|_| ())?
            })
        }
    }
    Ok(())
}

async fn insert_contacts(tx: &mut StoreTx, list: Uuid, contacts: &[Contact]) -> StoreResult<()> {
    let org: Option<Uuid> = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT org_id FROM lists WHERE list_id = $1")
            .bind(list)
            .fetch_optional(conn)
            .await?
    });
    let org =
        org.ok_or_else(|| StoreError::Corrupt(format!("contacts for unknown list {list}")))?;
    let rows = contacts
        .iter()
        .map(|c| {
            Ok((
                c,
                to_json(&c.zone)?,
                to_json(&c.fields)?,
                c.zone.zone.map(|tz| tz.name().to_owned()),
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // 11 columns × 1,000 rows stays under both engines' bind limits. No ON
    // CONFLICT clause: the checkpoint applies each event once, a rebuild
    // starts from empty tables, and the clause would cost SQLite a statement
    // journal per insert.
    for chunk in rows.chunks(1_000) {
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO contacts (list_id, phone, org_id, line, first_name, last_name, zip, external_id,
                                       time_zone, zone, fields) ",
            );
            insert.push_values(chunk, |mut values, (c, zone, fields, time_zone)| {
                values
                    .push_bind(list)
                    .push_bind(c.phone.clone())
                    .push_bind(org)
                    .push_bind(c.line as i64)
                    .push_bind(c.first_name.clone())
                    .push_bind(c.last_name.clone())
                    .push_bind(c.zip.clone())
                    .push_bind(c.external_id.clone())
                    .push_bind(time_zone.clone())
                    .push_bind(zone.clone())
                    .push_bind(fields.clone());
            });
            insert.build().execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

async fn insert_rejections(
    tx: &mut StoreTx,
    list: Uuid,
    rejections: &[Rejection],
) -> StoreResult<()> {
    for chunk in rejections.chunks(1_000) {
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO list_rejections (list_id, line, reason, raw_phone, detail) ",
            );
            insert.push_values(chunk, |mut values, r| {
                values
                    .push_bind(list)
                    .push_bind(r.line as i64)
                    .push_bind(r.reason.as_str())
                    .push_bind(r.raw_phone.clone())
                    .push_bind(r.detail.clone());
            });
            insert.build().execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

/// A list as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListView {
    pub list_id: ListId,
    pub name: String,
    pub source: String,
    pub consent_basis: String,
    pub uploaded_by: Value,
    pub uploaded_at: DateTime<Utc>,
    pub file_sha256: String,
    pub file_bytes: u64,
    pub columns: Value,
    pub phone_column: String,
    pub custom_fields: Value,
    pub status: String,
    pub rows: Option<u64>,
    pub imported: Option<u64>,
    pub rejected: Option<BTreeMap<String, u64>>,
    pub completed_at: Option<DateTime<Utc>>,
}

type ListRow = (
    Uuid,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<DateTime<Utc>>,
);

const LIST_COLUMNS: &str = "SELECT list_id, name, source, consent_basis, uploaded_by, uploaded_at, file_sha256, \
     file_bytes, columns, phone_column, custom_fields, status, rows, imported, rejected, completed_at FROM lists";

fn view(row: ListRow) -> StoreResult<ListView> {
    let json = |text: &str| {
        serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("lists: {err}")))
    };
    Ok(ListView {
        list_id: ListId::from_uuid(row.0),
        name: row.1,
        source: row.2,
        consent_basis: row.3,
        uploaded_by: json(&row.4)?,
        uploaded_at: row.5,
        file_sha256: row.6,
        file_bytes: row.7.max(0) as u64,
        columns: json(&row.8)?,
        phone_column: row.9,
        custom_fields: json(&row.10)?,
        status: row.11,
        rows: row.12.map(|n| n.max(0) as u64),
        imported: row.13.map(|n| n.max(0) as u64),
        rejected: row
            .14
            .as_deref()
            .map(|text| {
                serde_json::from_str(text)
                    .map_err(|err| StoreError::Corrupt(format!("lists: {err}")))
            })
            .transpose()?,
        completed_at: row.15,
    })
}

pub async fn lists(db: &Database, org: OrgId) -> StoreResult<Vec<ListView>> {
    let rows: Vec<ListRow> = on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LIST_COLUMNS} WHERE org_id = $1 ORDER BY uploaded_at DESC, list_id DESC"
        )))
        .bind(Uuid::from(org))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(view).collect()
}

/// One list of the org; `None` for another org's list, as for a missing one.
pub async fn list(db: &Database, org: OrgId, list: ListId) -> StoreResult<Option<ListView>> {
    let row: Option<ListRow> = on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LIST_COLUMNS} WHERE org_id = $1 AND list_id = $2"
        )))
        .bind(Uuid::from(org))
        .bind(Uuid::from(list))
        .fetch_optional(pool)
        .await?
    });
    row.map(view).transpose()
}

/// Rejected rows after `after_line`, in line order.
pub async fn rejections(
    db: &Database,
    list: ListId,
    after_line: u64,
    limit: u32,
) -> StoreResult<Vec<(u64, String, String, String)>> {
    let rows: Vec<(i64, String, String, String)> = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT line, reason, raw_phone, detail FROM list_rejections
              WHERE list_id = $1 AND line > $2 ORDER BY line LIMIT $3",
        )
        .bind(Uuid::from(list))
        .bind(after_line as i64)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(line, reason, raw, detail)| (line.max(0) as u64, reason, raw, detail))
        .collect())
}
