//! Read model "audit": the compliance audit. One row per message, both
//! directions — the human click (or automated answer, or voter's text) that
//! created it with all its evidence, then its carrier submission and final
//! delivery status — plus every refused send attempt, from the recipient-*
//! and texter-* streams. Each message keeps the log positions of its events,
//! so its whole trail can be read back from the log with hashes.
//!
//! A batch is folded in memory first (one entry per message touched) and
//! written with a few multi-row upserts: a rebuild goes through a million
//! and a half events, and one statement per event would be far too slow.

mod cadence;
mod fold;
mod query;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::QueryBuilder;
use textbank_store::{StoreError, StoreTx, on_tx};

use crate::batch::{Batch, Tables};
use crate::runner::{ProjectionError, Projector};

pub use cadence::{Cadence, analyse};
pub use query::{
    BlockedFilter, BlockedRow, CadenceClick, Cursor, MessageFilter, MessageRow, PhoneCampaign,
    PhoneList, blocked_counts, blocked_page, cadence_clicks, export_rows, message, message_page,
    org_streams, phone_campaigns, phone_lists, stream_belongs_to_org,
};

use fold::{BlockedInsert, Fold, MessageUpsert, UnmatchedUpsert};

/// Most rows per multi-row statement (42 binds each at most: far below both
/// engines' bind limits).
const MAX_ROWS_PER_STATEMENT: usize = 64;

/// Splits `rows` into chunks whose sizes are powers of two (largest first),
/// so every statement has one of a few shapes: the driver prepares each
/// shape once and reuses it, where a statement sized to each batch would be
/// parsed and planned anew for every batch.
fn shaped_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = MAX_ROWS_PER_STATEMENT.min(1 << rows.len().ilog2());
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

pub struct Audit {
    tables: Tables,
}

impl Audit {
    pub fn live() -> Self {
        Self {
            tables: Tables::Live,
        }
    }
}

#[async_trait]
impl Projector for Audit {
    fn name(&self) -> &'static str {
        match self.tables {
            Tables::Live => "audit",
            Tables::Next => "audit_next",
        }
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_messages", "audit_unmatched_reports", "audit_blocked"]
    }

    fn next(&self) -> Option<Arc<dyn Projector>> {
        Some(Arc::new(Self {
            tables: Tables::Next,
        }))
    }

    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError> {
        let fold = Fold::of_batch(self.name(), batch)?;
        // Messages created in this batch are inserted whole; those created
        // earlier get only what changed.
        let (created, progressed): (Vec<&MessageUpsert<'_>>, Vec<&MessageUpsert<'_>>) =
            fold.messages.values().partition(|row| row.origin.is_some());
        for chunk in shaped_chunks(&created) {
            self.insert_messages(tx, chunk).await?;
        }
        for chunk in shaped_chunks(&progressed) {
            self.update_messages(tx, chunk).await?;
        }
        let unmatched: Vec<&UnmatchedUpsert<'_>> = fold.unmatched.values().collect();
        for chunk in shaped_chunks(&unmatched) {
            self.upsert_unmatched(tx, chunk).await?;
        }
        for chunk in shaped_chunks(&fold.blocked) {
            self.insert_blocked(tx, chunk).await?;
        }
        Ok(())
    }
}

/// Whether a folded delivery status replaces the stored one: reports come
/// twice and out of order, and a final status (rank ≥ 3) never moves back —
/// the rule of `DeliveryStatus::may_become`, in SQL.
const TAKE_DELIVERY: &str = "excluded.delivery_rank IS NOT NULL AND ({t}.delivery_rank IS NULL \
     OR ({t}.delivery_rank < 3 AND excluded.delivery_rank > {t}.delivery_rank))";

impl Audit {
    /// Inserts messages whose creating event is in this batch. No conflict
    /// clause: the checkpoint applies each event once and a rebuild starts
    /// from empty tables.
    async fn insert_messages(
        &self,
        tx: &mut StoreTx,
        rows: &[&MessageUpsert<'_>],
    ) -> Result<(), StoreError> {
        let table = self.tables.name("audit_messages");
        let head = format!(
            "INSERT INTO {table} (message_id, org_id, phone, position, occurred_at, positions,
                direction, kind, automated, texter_id, campaign_id, conversation_id, list_id, key_id,
                body_sha256, segments, script_version, token_id, presented_at, clicked_at, received_at,
                display_to_click_ms, ip, user_agent, checked_events, opted_out, hours_allowed,
                local_time, time_zone, zone_source, hours_window, keyword, in_reply_to, carrier,
                carrier_message_id, our_number, dispatch_status, attempts, submit_error_code,
                submit_error, delivery_rank, delivery_error_code) "
        );
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(head.as_str());
            insert.push_values(rows, |mut values, row| {
                let origin = row.origin.as_ref();
                let hours = origin.and_then(|o| o.hours.as_ref());
                values
                    .push_bind(row.message_id)
                    .push_bind(row.org)
                    .push_bind(row.phone)
                    .push_bind(row.position)
                    .push_bind(row.occurred_at)
                    .push_bind(row.positions.as_str())
                    .push_bind(origin.map(|o| o.direction))
                    .push_bind(origin.map(|o| o.kind))
                    .push_bind(origin.and_then(|o| o.automated))
                    .push_bind(origin.and_then(|o| o.texter))
                    .push_bind(origin.and_then(|o| o.campaign))
                    .push_bind(origin.and_then(|o| o.conversation))
                    .push_bind(origin.and_then(|o| o.list))
                    .push_bind(origin.and_then(|o| o.key))
                    .push_bind(origin.map(|o| o.body_sha256.as_str()))
                    .push_bind(origin.and_then(|o| o.segments))
                    .push_bind(origin.and_then(|o| o.script_version))
                    .push_bind(origin.and_then(|o| o.token))
                    .push_bind(origin.and_then(|o| o.presented_at))
                    .push_bind(origin.and_then(|o| o.clicked_at))
                    .push_bind(origin.and_then(|o| o.received_at))
                    .push_bind(origin.and_then(|o| o.display_to_click_ms))
                    .push_bind(origin.and_then(|o| o.ip))
                    .push_bind(origin.and_then(|o| o.user_agent))
                    .push_bind(origin.and_then(|o| o.checked_events))
                    .push_bind(origin.and_then(|o| o.opted_out))
                    .push_bind(hours.map(|h| h.allowed))
                    .push_bind(hours.and_then(|h| h.local_time.as_deref()))
                    .push_bind(hours.and_then(|h| h.time_zone))
                    .push_bind(hours.map(|h| h.zone_source))
                    .push_bind(hours.map(|h| h.window))
                    .push_bind(origin.and_then(|o| o.keyword))
                    .push_bind(origin.and_then(|o| o.in_reply_to))
                    .push_bind(row.carrier)
                    .push_bind(row.carrier_message_id)
                    .push_bind(row.our_number)
                    .push_bind(row.dispatch_status)
                    .push_bind(row.attempts)
                    .push_bind(row.submit_error_code)
                    .push_bind(row.submit_error)
                    .push_bind(row.delivery.map(|(rank, _)| rank))
                    .push_bind(row.delivery.and_then(|(_, code)| code));
            });
            insert.build().execute(conn).await.map(|_| ())?
        });
        Ok(())
    }

    /// Folds later events (dispatch, delivery) into messages created by an
    /// earlier batch. Only the columns later events change are written;
    /// the creating event's (and the indexed ones) stay as inserted. An
    /// upsert rather than an UPDATE per row: one statement for the chunk.
    async fn update_messages(
        &self,
        tx: &mut StoreTx,
        rows: &[&MessageUpsert<'_>],
    ) -> Result<(), StoreError> {
        let table = self.tables.name("audit_messages");
        let take = TAKE_DELIVERY.replace("{t}", &table);
        let head = format!(
            "INSERT INTO {table} (message_id, org_id, phone, position, occurred_at, positions,
                carrier, carrier_message_id, our_number, dispatch_status, attempts,
                submit_error_code, submit_error, delivery_rank, delivery_error_code) "
        );
        let conflict = format!(
            " ON CONFLICT (message_id) DO UPDATE SET
                positions = {table}.positions || ',' || excluded.positions,
                carrier = COALESCE(excluded.carrier, {table}.carrier),
                carrier_message_id = COALESCE(excluded.carrier_message_id, {table}.carrier_message_id),
                our_number = COALESCE(excluded.our_number, {table}.our_number),
                dispatch_status = COALESCE(excluded.dispatch_status, {table}.dispatch_status),
                attempts = COALESCE(excluded.attempts, {table}.attempts),
                submit_error_code = COALESCE(excluded.submit_error_code, {table}.submit_error_code),
                submit_error = COALESCE(excluded.submit_error, {table}.submit_error),
                delivery_rank = CASE WHEN {take} THEN excluded.delivery_rank ELSE {table}.delivery_rank END,
                delivery_error_code = CASE WHEN {take} THEN excluded.delivery_error_code
                                           ELSE {table}.delivery_error_code END"
        );
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(head.as_str());
            insert.push_values(rows, |mut values, row| {
                values
                    .push_bind(row.message_id)
                    .push_bind(row.org)
                    .push_bind(row.phone)
                    .push_bind(row.position)
                    .push_bind(row.occurred_at)
                    .push_bind(row.positions.as_str())
                    .push_bind(row.carrier)
                    .push_bind(row.carrier_message_id)
                    .push_bind(row.our_number)
                    .push_bind(row.dispatch_status)
                    .push_bind(row.attempts)
                    .push_bind(row.submit_error_code)
                    .push_bind(row.submit_error)
                    .push_bind(row.delivery.map(|(rank, _)| rank))
                    .push_bind(row.delivery.and_then(|(_, code)| code));
            });
            insert.push(&conflict);
            insert.build().execute(conn).await.map(|_| ())?
        });
        Ok(())
    }

    async fn upsert_unmatched(
        &self,
        tx: &mut StoreTx,
        rows: &[&UnmatchedUpsert<'_>],
    ) -> Result<(), StoreError> {
        let table = self.tables.name("audit_unmatched_reports");
        let take = TAKE_DELIVERY.replace("{t}", &table);
        let head = format!(
            "INSERT INTO {table} (org_id, carrier_message_id, phone, carrier, delivery_rank,
                                  delivery_error_code, positions) "
        );
        let conflict = format!(
            " ON CONFLICT (org_id, carrier_message_id, phone) DO UPDATE SET
                positions = {table}.positions || ',' || excluded.positions,
                delivery_rank = CASE WHEN {take} THEN excluded.delivery_rank ELSE {table}.delivery_rank END,
                delivery_error_code = CASE WHEN {take} THEN excluded.delivery_error_code
                                           ELSE {table}.delivery_error_code END"
        );
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(head.as_str());
            insert.push_values(rows, |mut values, row| {
                values
                    .push_bind(row.org)
                    .push_bind(row.carrier_message_id)
                    .push_bind(row.phone)
                    .push_bind(row.carrier)
                    .push_bind(row.rank)
                    .push_bind(row.error_code)
                    .push_bind(row.positions.as_str());
            });
            insert.push(&conflict);
            insert.build().execute(conn).await.map(|_| ())?
        });
        Ok(())
    }

    async fn insert_blocked(
        &self,
        tx: &mut StoreTx,
        rows: &[BlockedInsert<'_>],
    ) -> Result<(), StoreError> {
        let table = self.tables.name("audit_blocked");
        let head = format!(
            "INSERT INTO {table} (attempt_id, org_id, position, occurred_at, reason, detail, kind,
                texter_id, key_id, campaign_id, conversation_id, phone, token_id, presented_at,
                clicked_at, received_at, ip, user_agent, hours_allowed, local_time, time_zone,
                zone_source, hours_window) "
        );
        on_tx!(tx, |conn| {
            let mut insert = QueryBuilder::new(head.as_str());
            insert.push_values(rows, |mut values, row| {
                let attempt = row.attempt.as_ref();
                let hours = attempt.hours.as_ref().map(fold::Hours::of);
                let hours = hours.as_ref();
                values
                    .push_bind(attempt.attempt_id)
                    .push_bind(row.org)
                    .push_bind(row.position)
                    .push_bind(row.occurred_at)
                    .push_bind(attempt.reason.code())
                    .push_bind(attempt.detail.as_str())
                    .push_bind(fold::kind_code(attempt.evidence.kind))
                    .push_bind(uuid::Uuid::from(attempt.evidence.texter_id))
                    .push_bind(uuid::Uuid::from(attempt.evidence.key_id))
                    .push_bind(attempt.campaign_id.map(uuid::Uuid::from))
                    .push_bind(attempt.conversation_id.map(uuid::Uuid::from))
                    .push_bind(attempt.phone.as_ref().map(|p| p.as_str()))
                    .push_bind(attempt.evidence.token_id)
                    .push_bind(attempt.evidence.presented_at)
                    .push_bind(attempt.evidence.clicked_at)
                    .push_bind(attempt.evidence.received_at)
                    .push_bind(attempt.evidence.ip.as_deref())
                    .push_bind(attempt.evidence.user_agent.as_deref())
                    .push_bind(hours.map(|h| h.allowed))
                    .push_bind(hours.and_then(|h| h.local_time.as_deref()))
                    .push_bind(hours.and_then(|h| h.time_zone))
                    .push_bind(hours.map(|h| h.zone_source))
                    .push_bind(hours.map(|h| h.window));
            });
            // A rebuild starts from empty tables and the checkpoint applies
            // each event once; the clause only guards a hand-replayed batch.
            insert.push(" ON CONFLICT (attempt_id) DO NOTHING");
            insert.build().execute(conn).await.map(|_| ())?
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_a_few_power_of_two_shapes() {
        let rows: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = shaped_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [64, 64, 64, 8, 2, 1]);
        let flat: Vec<u32> = shaped_chunks(&rows).flatten().copied().collect();
        assert_eq!(flat, rows);
        assert_eq!(shaped_chunks::<u32>(&[]).count(), 0);
    }
}
