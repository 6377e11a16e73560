//! Which recipient stream each texter's `Idempotency-Key` belongs to
//! (`idempotency_keys`): the first click that uses a key claims it for its
//! stream, and a click for another stream with the same key is another
//! request, not a retry.

use chrono::{DateTime, Utc};
use textbank_domain::{MemberId, OrgId, StreamId};
use uuid::Uuid;

use crate::StoreTx;
use crate::error::StoreResult;

/// Claims `key` of `texter` for `stream` unless it is claimed already, and
/// returns the stream that holds it (this one, or the first claimant's).
pub async fn claim(
    tx: &mut StoreTx,
    org: OrgId,
    texter: MemberId,
    key: &str,
    stream: &StreamId,
    at: DateTime<Utc>,
) -> StoreResult<String> {
    // The no-op update makes RETURNING answer with the row that holds the
    // key when it exists (DO NOTHING would return no row).
    const CLAIM: &str = "INSERT INTO idempotency_keys
            (org_id, texter_id, idempotency_key, stream_id, claimed_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (org_id, texter_id, idempotency_key)
            DO UPDATE SET stream_id = idempotency_keys.stream_id
        RETURNING stream_id";
    let holder: String = crate::on_tx!(tx, |conn| {
        sqlx::query_scalar(CLAIM)
            .bind(Uuid::from(org))
            .bind(Uuid::from(texter))
            .bind(key)
            .bind(stream.as_str())
            .bind(at)
            .fetch_one(conn)
            .await?
    });
    Ok(holder)
}
