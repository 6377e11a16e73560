//! Read model "opt_outs": which numbers have opted out of which organization.

use std::collections::HashSet;

use async_trait::async_trait;
use textbank_domain::OrgId;
use textbank_domain::recipient::RecipientEvent;
use textbank_store::{Database, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

use crate::batch::Batch;
use crate::runner::{ProjectionError, Projector};

pub struct OptOuts;

#[async_trait]
impl Projector for OptOuts {
    fn name(&self) -> &'static str {
        "opt_outs"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["opt_outs"]
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        for event in batch.events() {
            // Most recipient events are clicks and reports: skip them before
            // paying for a JSON decode.
            if !matches!(
                event.event_type.as_str(),
                "OptOutRecorded" | "OptInRecorded"
            ) || !event.stream_id.as_str().starts_with("recipient-")
            {
                continue;
            }
            let parsed = <RecipientEvent as textbank_domain::DomainEvent>::from_parts(
                &event.event_type,
                &event.data,
            )
            .map_err(|err| ProjectionError::Apply {
                projector: "opt_outs",
                position: event.position,
                reason: err.to_string(),
            })?;
            let (Some(parsed), Some(org)) = (parsed, event.metadata.org_id) else {
                continue;
            };
            let org = Uuid::from(org);
            match parsed {
                RecipientEvent::OptOutRecorded { phone, source, .. } => {
                    let source = serde_json::to_value(source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    on_tx!(tx, |conn| {
                        sqlx::query(
                            "INSERT INTO opt_outs (org_id, phone, source, opted_out_at) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (org_id, phone) DO NOTHING",
                        )
                        .bind(org)
                        .bind(phone.as_str())
                        .bind(source)
                        .bind(event.recorded_at)
                        .execute(conn)
                        .await
                        .map(|_| ())
                        .map_err(textbank_store::StoreError::from)?
                    });
                }
                RecipientEvent::OptInRecorded { phone, .. } => on_tx!(tx, |conn| {
                    sqlx::query("DELETE FROM opt_outs WHERE org_id = $1 AND phone = $2")
                        .bind(org)
                        .bind(phone.as_str())
                        .execute(conn)
                        .await
                        .map(|_| ())
                        .map_err(textbank_store::StoreError::from)?
                }),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Every number that has opted out of `org` (E.164).
pub async fn opted_out_phones(db: &Database, org: OrgId) -> StoreResult<HashSet<String>> {
    let phones: Vec<String> = on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT phone FROM opt_outs WHERE org_id = $1")
            .bind(Uuid::from(org))
            .fetch_all(pool)
            .await?
    });
    Ok(phones.into_iter().collect())
}

/// One page of the org's opt-outs in phone order, after `after` (start with
/// ""): (phone, source, opted_out_at).
pub async fn page(
    db: &Database,
    org: OrgId,
    after: &str,
    limit: u32,
) -> StoreResult<Vec<(String, String, chrono::DateTime<chrono::Utc>)>> {
    Ok(on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT phone, source, opted_out_at FROM opt_outs
              WHERE org_id = $1 AND phone > $2 ORDER BY phone LIMIT $3",
        )
        .bind(Uuid::from(org))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    }))
}
