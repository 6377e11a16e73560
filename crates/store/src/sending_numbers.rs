//! Which organization each sending number belongs to (`sending_numbers`):
//! carrier webhooks are matched to an organization by number.

use textbank_domain::OrgId;
use uuid::Uuid;

use crate::error::StoreResult;
use crate::{Database, StoreTx};

/// The org a sending number belongs to.
pub async fn org_of(db: &Database, number: &str) -> StoreResult<Option<OrgId>> {
    let org: Option<Uuid> = crate::on_reader!(db, |pool| {
        sqlx::query_scalar("SELECT org_id FROM sending_numbers WHERE number = $1")
            .bind(number)
            .fetch_optional(pool)
            .await?
    });
    Ok(org.map(OrgId::from_uuid))
}

/// [`org_of`], read in `tx` (before [`replace`] in the same transaction).
pub async fn org_of_in(tx: &mut StoreTx, number: &str) -> StoreResult<Option<OrgId>> {
    let org: Option<Uuid> = crate::on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT org_id FROM sending_numbers WHERE number = $1")
            .bind(number)
            .fetch_optional(conn)
            .await?
    });
    Ok(org.map(OrgId::from_uuid))
}

/// Makes `numbers` the org's sending numbers, dropping the ones it had.
pub async fn replace(tx: &mut StoreTx, org: OrgId, numbers: &[String]) -> StoreResult<()> {
    let org = Uuid::from(org);
    crate::on_tx!(tx, |conn| {
        sqlx::query("DELETE FROM sending_numbers WHERE org_id = $1")
            .bind(org)
            .execute(&mut *conn)
            .await?;
        for number in numbers {
            sqlx::query("INSERT INTO sending_numbers (number, org_id) VALUES ($1, $2)")
                .bind(number)
                .bind(org)
                .execute(&mut *conn)
                .await?;
        }
    });
    Ok(())
}
