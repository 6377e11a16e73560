//! Each organization's carrier account (`carrier_accounts`): its settings as
//! JSON and its credentials sealed with the server key. What the settings
//! mean is the application's business; this module only stores them.

use chrono::{DateTime, Utc};
use textbank_domain::OrgId;
use uuid::Uuid;

use crate::error::StoreResult;
use crate::{Database, StoreTx};

/// One org's stored carrier account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierAccount {
    /// "sim", "twilio" or "telnyx".
    pub carrier: String,
    /// The settings, as JSON.
    pub settings: String,
    /// The credentials, sealed.
    pub sealed_secret: String,
    pub updated_at: DateTime<Utc>,
}

/// Stores the org's account, replacing the one it had.
pub async fn upsert(tx: &mut StoreTx, org: OrgId, account: &CarrierAccount) -> StoreResult<()> {
    crate::execute!(
        tx,
        "INSERT INTO carrier_accounts (org_id, carrier, settings, sealed_secret, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id) DO UPDATE SET carrier = excluded.carrier,
             settings = excluded.settings, sealed_secret = excluded.sealed_secret,
             updated_at = excluded.updated_at",
        Uuid::from(org),
        &account.carrier,
        &account.settings,
        &account.sealed_secret,
        account.updated_at
    );
    Ok(())
}

/// The org's account, if it configured one.
pub async fn get(db: &Database, org: OrgId) -> StoreResult<Option<CarrierAccount>> {
    let row: Option<(String, String, String, DateTime<Utc>)> = crate::on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT carrier, settings, sealed_secret, updated_at FROM carrier_accounts
              WHERE org_id = $1",
        )
        .bind(Uuid::from(org))
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(
        |(carrier, settings, sealed_secret, updated_at)| CarrierAccount {
            carrier,
            settings,
            sealed_secret,
            updated_at,
        },
    ))
}

/// Removes the org's account; whether it had one.
pub async fn delete(tx: &mut StoreTx, org: OrgId) -> StoreResult<bool> {
    let removed = crate::execute!(
        tx,
        "DELETE FROM carrier_accounts WHERE org_id = $1",
        Uuid::from(org)
    );
    Ok(removed > 0)
}
