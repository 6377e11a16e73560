//! Outbound webhook subscriptions (`webhook_subscriptions`) and the record
//! of their deliveries (`webhook_deliveries`). Each subscription carries its
//! own checkpoint: the last log position it delivered. What the rows mean
//! (signing, retries, who may see them) is the application's business; the
//! signing secret arrives and leaves sealed.

use chrono::{DateTime, Utc};
use textbank_domain::OrgId;
use uuid::Uuid;

use crate::decode::to_u64;
use crate::error::{StoreError, StoreResult};
use crate::plan::Fence;
use crate::{Database, StoreTx};

/// One subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub webhook_id: Uuid,
    pub org_id: OrgId,
    pub url: String,
    /// Event type names wanted; empty: every type.
    pub event_types: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub sealed_secret: String,
    /// When the retry window ran out and the subscription was disabled.
    pub failing_since: Option<DateTime<Utc>>,
    /// The last log position delivered (or not wanted).
    pub checkpoint: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One event (or ping) sent to one subscription, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub org_id: OrgId,
    /// "event" or "ping".
    pub kind: String,
    /// The `webhook-id` header: the event's id, or the ping's.
    pub message_id: Uuid,
    /// The event's log position; `None` for a ping.
    pub position: Option<u64>,
    pub event_type: String,
    /// "pending", "succeeded" or "failed".
    pub status: String,
    /// The attempts, as a JSON array.
    pub attempts: String,
    pub attempt_count: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `fetch_optional!(on_reader!(db) or on_tx!(tx), decode, "SQL", value, …)`:
/// the one row `SQL` selects with the values bound, decoded, if any.
macro_rules! fetch_optional {
    ($on:ident!($source:expr), $decode:expr, $sql:expr $(, $value:expr)* $(,)?) => {{
        let sql: String = $sql;
        let row = crate::$on!($source, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))$(.bind($value))*
                .fetch_optional(conn)
                .await?
        });
        row.map($decode).transpose()
    }};
}

const SUBSCRIPTION_COLUMNS: &str = "webhook_id, org_id, url, event_types, description, enabled,
    sealed_secret, failing_since, checkpoint, created_at, updated_at";

/// Where one org's subscription is, by `$1` (its id) and `$2` (the org).
const OWNED: &str = "WHERE webhook_id = $1 AND org_id = $2";

type SubscriptionRow = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    bool,
    String,
    Option<DateTime<Utc>>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn subscription(row: SubscriptionRow) -> StoreResult<Subscription> {
    let (webhook_id, org_id, url, types, description, enabled, sealed_secret, failing, at, c, u) =
        row;
    let event_types = serde_json::from_str(&types)
        .map_err(|err| StoreError::InvalidInput(format!("webhook {webhook_id} types: {err}")))?;
    Ok(Subscription {
        webhook_id,
        org_id: OrgId::from_uuid(org_id),
        url,
        event_types,
        description,
        enabled,
        sealed_secret,
        failing_since: failing,
        checkpoint: to_u64(at)?,
        created_at: c,
        updated_at: u,
    })
}

fn types_json(types: &[String]) -> String {
    serde_json::Value::from(types.to_vec()).to_string()
}

fn position(value: u64) -> StoreResult<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidInput(format!("position {value} out of range")))
}

/// Stores a new subscription.
pub async fn insert(tx: &mut StoreTx, sub: &Subscription) -> StoreResult<()> {
    crate::execute!(
        tx,
        "INSERT INTO webhook_subscriptions (webhook_id, org_id, url, event_types, description,
             enabled, sealed_secret, failing_since, checkpoint, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        sub.webhook_id,
        Uuid::from(sub.org_id),
        &sub.url,
        types_json(&sub.event_types),
        &sub.description,
        sub.enabled,
        &sub.sealed_secret,
        sub.failing_since,
        position(sub.checkpoint)?,
        sub.created_at,
        sub.updated_at
    );
    Ok(())
}

/// Writes the subscription's settings (not its checkpoint, which only the
/// delivery worker moves).
pub async fn update(tx: &mut StoreTx, sub: &Subscription) -> StoreResult<()> {
    crate::execute!(
        tx,
        "UPDATE webhook_subscriptions SET url = $1, event_types = $2, description = $3,
             enabled = $4, sealed_secret = $5, failing_since = $6, updated_at = $7
         WHERE webhook_id = $8 AND org_id = $9",
        &sub.url,
        types_json(&sub.event_types),
        &sub.description,
        sub.enabled,
        &sub.sealed_secret,
        sub.failing_since,
        sub.updated_at,
        sub.webhook_id,
        Uuid::from(sub.org_id)
    );
    Ok(())
}

/// Deletes the subscription and its deliveries; whether it existed.
pub async fn delete(tx: &mut StoreTx, org: OrgId, webhook_id: Uuid) -> StoreResult<bool> {
    let org = Uuid::from(org);
    let removed = crate::execute!(
        tx,
        "DELETE FROM webhook_subscriptions WHERE webhook_id = $1 AND org_id = $2",
        webhook_id,
        org
    );
    crate::execute!(
        tx,
        "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND org_id = $2",
        webhook_id,
        org
    );
    Ok(removed > 0)
}

/// The org's subscription, read in `tx` (to change it).
pub async fn get_in(
    tx: &mut StoreTx,
    org: OrgId,
    webhook_id: Uuid,
) -> StoreResult<Option<Subscription>> {
    fetch_optional!(
        on_tx!(tx),
        subscription,
        format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions {OWNED}"),
        webhook_id,
        Uuid::from(org)
    )
}

/// The org's subscription.
pub async fn get(db: &Database, org: OrgId, webhook_id: Uuid) -> StoreResult<Option<Subscription>> {
    fetch_optional!(
        on_reader!(db),
        subscription,
        format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions {OWNED}"),
        webhook_id,
        Uuid::from(org)
    )
}

/// The org's subscriptions, oldest first.
pub async fn list(db: &Database, org: OrgId) -> StoreResult<Vec<Subscription>> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
          WHERE org_id = $1 ORDER BY webhook_id"
    );
    let rows: Vec<SubscriptionRow> = crate::on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(Uuid::from(org))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(subscription).collect()
}

/// Every enabled subscription of every org (the delivery worker's work).
pub async fn enabled(db: &Database) -> StoreResult<Vec<Subscription>> {
    let sql = format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
          WHERE enabled ORDER BY webhook_id"
    );
    let rows: Vec<SubscriptionRow> = crate::on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(subscription).collect()
}

/// One subscription by id, whichever org it belongs to (the worker's view).
pub async fn by_id(db: &Database, webhook_id: Uuid) -> StoreResult<Option<Subscription>> {
    fetch_optional!(
        on_reader!(db),
        subscription,
        format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE webhook_id = $1"),
        webhook_id
    )
}

/// Moves the subscription's checkpoint forward to `position` (never back).
pub async fn save_checkpoint(tx: &mut StoreTx, webhook_id: Uuid, at: u64) -> StoreResult<()> {
    let at = position(at)?;
    crate::execute!(
        tx,
        "UPDATE webhook_subscriptions SET checkpoint = $1 WHERE webhook_id = $2 AND checkpoint < $3",
        at,
        webhook_id,
        at
    );
    Ok(())
}

/// Disables the subscription because its retry window ran out.
pub async fn mark_failing(
    tx: &mut StoreTx,
    webhook_id: Uuid,
    since: DateTime<Utc>,
) -> StoreResult<()> {
    crate::execute!(
        tx,
        "UPDATE webhook_subscriptions SET enabled = $1, failing_since = $2, updated_at = $3
          WHERE webhook_id = $4",
        false,
        since,
        since,
        webhook_id
    );
    Ok(())
}

/// Refuses the transaction's writes ([`StoreError::Fenced`]) unless
/// `fence` is still its role's current term. On PostgreSQL the term's row
/// stays share-locked until the transaction ends, so a new leader's term
/// cannot be raised between this check and the commit.
pub async fn check_fence(tx: &mut StoreTx, fence: &Fence) -> StoreResult<()> {
    let sql = match tx {
        StoreTx::Postgres(_) => "SELECT term FROM leader_terms WHERE role = $1 FOR SHARE",
        StoreTx::Sqlite(..) => "SELECT term FROM leader_terms WHERE role = $1",
    };
    let term: Option<i64> = crate::on_tx!(tx, |conn| {
        sqlx::query_scalar(sql)
            .bind(&fence.role)
            .fetch_optional(conn)
            .await?
    });
    let current = to_u64(term.unwrap_or(0))?;
    if current == fence.term {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            role: fence.role.clone(),
            term: fence.term,
            current,
        })
    }
}

const DELIVERY_COLUMNS: &str = "delivery_id, webhook_id, org_id, kind, message_id, position,
    event_type, status, attempts, attempt_count, next_attempt_at, created_at, updated_at";

type DeliveryRow = (
    Uuid,
    Uuid,
    Uuid,
    String,
    Uuid,
    Option<i64>,
    String,
    String,
    String,
    i32,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn delivery(row: DeliveryRow) -> StoreResult<Delivery> {
    let (
        delivery_id,
        webhook_id,
        org_id,
        kind,
        message_id,
        at,
        event_type,
        status,
        attempts,
        n,
        next,
        c,
        u,
    ) = row;
    Ok(Delivery {
        delivery_id,
        webhook_id,
        org_id: OrgId::from_uuid(org_id),
        kind,
        message_id,
        position: at.map(to_u64).transpose()?,
        event_type,
        status,
        attempts,
        attempt_count: u32::try_from(n).unwrap_or(0),
        next_attempt_at: next,
        created_at: c,
        updated_at: u,
    })
}

/// Stores deliveries, replacing the status and attempts of those already
/// stored (a pending delivery that has now succeeded or failed).
pub async fn save_deliveries(tx: &mut StoreTx, deliveries: &[Delivery]) -> StoreResult<()> {
    // 13 values a row; well under either engine's bind limit.
    for chunk in deliveries.chunks(200) {
        let sql = crate::sql::for_engine(
            tx,
            format!(
                "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES {}
                 ON CONFLICT (delivery_id) DO UPDATE SET status = excluded.status,
                     attempts = excluded.attempts, attempt_count = excluded.attempt_count,
                     next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
                crate::sql::placeholders(chunk.len(), 13)
            ),
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for one in chunk {
            rows.push((one, one.position.map(position).transpose()?));
        }
        crate::on_tx!(tx, |conn| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (one, at) in &rows {
                query = query
                    .bind(one.delivery_id)
                    .bind(one.webhook_id)
                    .bind(Uuid::from(one.org_id))
                    .bind(&one.kind)
                    .bind(one.message_id)
                    .bind(*at)
                    .bind(&one.event_type)
                    .bind(&one.status)
                    .bind(&one.attempts)
                    .bind(i32::try_from(one.attempt_count).unwrap_or(i32::MAX))
                    .bind(one.next_attempt_at)
                    .bind(one.created_at)
                    .bind(one.updated_at);
            }
            query.execute(conn).await.map(|_| ())?
        });
    }
    Ok(())
}

/// The subscription's event delivery still being retried, if any (at most
/// one: a subscription delivers in order).
pub async fn pending(db: &Database, webhook_id: Uuid) -> StoreResult<Option<Delivery>> {
    fetch_optional!(
        on_reader!(db),
        delivery,
        format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
              WHERE webhook_id = $1 AND status = 'pending' AND kind = 'event'
              ORDER BY position LIMIT 1"
        ),
        webhook_id
    )
}

/// One delivery of the org's subscription.
pub async fn get_delivery(
    db: &Database,
    org: OrgId,
    webhook_id: Uuid,
    delivery_id: Uuid,
) -> StoreResult<Option<Delivery>> {
    fetch_optional!(
        on_reader!(db),
        delivery,
        format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
              WHERE delivery_id = $1 AND webhook_id = $2 AND org_id = $3"
        ),
        delivery_id,
        webhook_id,
        Uuid::from(org)
    )
}

/// Up to `limit` of the org's subscription's deliveries, newest first,
/// older than `before` when given.
pub async fn deliveries(
    db: &Database,
    org: OrgId,
    webhook_id: Uuid,
    before: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
          WHERE webhook_id = $1 AND org_id = $2 AND ($3 OR delivery_id < $4)
          ORDER BY delivery_id DESC LIMIT $5"
    );
    let rows: Vec<DeliveryRow> = crate::on_reader!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(webhook_id)
            .bind(Uuid::from(org))
            .bind(before.is_none())
            .bind(before.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(delivery).collect()
}
