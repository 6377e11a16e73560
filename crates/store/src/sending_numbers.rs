//! Which organization each sending number belongs to (`sending_numbers`):
//! carrier webhooks are matched to an organization by number.

use textbank_domain::OrgId;
use uuid::Uuid;

use crate::error::StoreResult;
use crate::macros::optional_id;
use crate::{Database, StoreTx};

const ORG_OF: &str = "SELECT org_id FROM sending_numbers WHERE number = $1";

/// The org a sending number belongs to.
pub async fn org_of(db: &Database, number: &str) -> StoreResult<Option<OrgId>> {
    Ok(optional_id!(on_reader!(db), ORG_OF, number).map(OrgId::from_uuid))
}

/// [`org_of`], read in `tx` (before [`replace`] in the same transaction).
pub async fn org_of_in(tx: &mut StoreTx, number: &str) -> StoreResult<Option<OrgId>> {
    Ok(optional_id!(on_tx!(tx), ORG_OF, number).map(OrgId::from_uuid))
}

/// Makes `numbers` the org's sending numbers, dropping the ones it had.
pub async fn replace(tx: &mut StoreTx, org: OrgId, numbers: &[String]) -> StoreResult<()> {
    let org = Uuid::from(org);
    crate::execute!(tx, "DELETE FROM sending_numbers WHERE org_id = $1", org);
    for number in numbers {
        crate::execute!(
            tx,
            "INSERT INTO sending_numbers (number, org_id) VALUES ($1, $2)",
            number,
            org
        );
    }
    Ok(())
}
