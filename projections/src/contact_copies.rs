//! The copy of a campaign's list contacts into `campaign_contacts` (part of
//! the campaigns read model). Small attachments are copied while the
//! `ListsAttached` event is applied; a large one is recorded as pending
//! copies, one per list, that [`copy_next`] moves forward a range of list
//! lines per transaction, so creating a campaign over a million contacts
//! answers at once and no transaction holds the write lock for the whole
//! copy (ADR 0035).

use serde::Serialize;
use textbank_domain::{CampaignId, ListId};
use textbank_store::{Database, EventStore, StoreResult, StoreTx, on_reader, on_tx};
use uuid::Uuid;

/// Attachments of at most this many list lines (all lists of the event
/// together) are copied at once, inside the event's batch: tens of
/// milliseconds.
pub const INLINE_COPY_LINES: i64 = 5_000;

/// List lines copied per transaction by [`copy_next`]: long enough to
/// amortize a commit, short enough that a click waiting for the write lock
/// behind it waits milliseconds.
pub const COPY_CHUNK_LINES: i64 = 5_000;

/// How far a campaign's deferred copies have got, in list lines (a line
/// the importer rejected counts as copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ContactCopyProgress {
    pub lines_copied: u64,
    pub lines_total: u64,
}

/// What one [`copy_next`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStep {
    /// Copied a range; more may be pending.
    Copied { campaign: CampaignId, lines: u64 },
    /// Another copier moved this copy first; nothing was written.
    Raced,
    /// No copy is pending.
    Idle,
}

/// Copies the contacts on lines `after + 1 ..= through` of `list` into the
/// campaign. A phone the campaign already has keeps its row: the earlier
/// list's.
async fn copy_lines(
    tx: &mut StoreTx,
    campaign: Uuid,
    list: Uuid,
    after: i64,
    through: i64,
) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        // The WHERE clause also settles SQLite's parsing ambiguity between
        // INSERT … SELECT and an upsert clause.
        sqlx::query(
            "INSERT INTO campaign_contacts (campaign_id, phone, list_id, org_id, line, zone)
             SELECT $1, phone, list_id, org_id, line, zone FROM contacts
              WHERE list_id = $2 AND line > $3 AND line <= $4
             ON CONFLICT DO NOTHING",
        )
        .bind(campaign)
        .bind(list)
        .bind(after)
        .bind(through)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// Copies the lists' contacts into the campaign, in order, now if they are
/// few, else records one pending copy per list. Once any copy of the
/// campaign is pending, later lists queue behind it, so the first list
/// still wins a phone on two lists.
pub(crate) async fn attach(tx: &mut StoreTx, campaign: Uuid, lists: &[ListId]) -> StoreResult<()> {
    let mut last_lines = Vec::with_capacity(lists.len());
    for &list in lists {
        let last: i64 = on_tx!(tx, |conn| {
            sqlx::query_scalar("SELECT COALESCE(MAX(line), 0) FROM contacts WHERE list_id = $1")
                .bind(Uuid::from(list))
                .fetch_one(conn)
                .await?
        });
        last_lines.push((Uuid::from(list), last));
    }
    let queued: i64 = on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM campaign_list_copies WHERE campaign_id = $1",
        )
        .bind(campaign)
        .fetch_one(conn)
        .await?
    });
    let total: i64 = last_lines.iter().map(|(_, last)| last).sum();
    if queued == 0 && total <= INLINE_COPY_LINES {
        for (list, last) in last_lines {
            copy_lines(tx, campaign, list, 0, last).await?;
        }
        return Ok(());
    }
    for (seq, (list, last)) in (queued + 1..).zip(last_lines) {
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO campaign_list_copies (campaign_id, list_id, seq, copied_through, last_line)
                 VALUES ($1, $2, $3, 0, $4)",
            )
            .bind(campaign)
            .bind(list)
            .bind(seq)
            .bind(last)
            .execute(conn)
            .await
            .map(|_| ())?
        });
    }
    Ok(())
}

/// Finishes the campaign's pending copies inside `tx`. The campaigns
/// projector calls it before an event that needs every contact in place
/// (an assignment, a launch): while the server runs those wait for the
/// copy, but a rebuild replays them right behind their `ListsAttached`.
pub(crate) async fn finish(tx: &mut StoreTx, campaign: Uuid) -> StoreResult<()> {
    let pending: Vec<(Uuid, i64, i64)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT list_id, copied_through, last_line FROM campaign_list_copies
              WHERE campaign_id = $1 AND copied_through < last_line ORDER BY seq",
        )
        .bind(campaign)
        .fetch_all(conn)
        .await?
    });
    if pending.is_empty() {
        return Ok(());
    }
    for (list, copied_through, last_line) in pending {
        copy_lines(tx, campaign, list, copied_through, last_line).await?;
    }
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE campaign_list_copies SET copied_through = last_line WHERE campaign_id = $1",
        )
        .bind(campaign)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    copies_finished(tx, campaign).await
}

/// Moves the oldest pending copy forward by up to [`COPY_CHUNK_LINES`]
/// lines, in a transaction of its own.
pub async fn copy_next(store: &dyn EventStore, db: &Database) -> StoreResult<CopyStep> {
    if !any_pending(db).await? {
        return Ok(CopyStep::Idle);
    }
    let mut tx = store.begin().await?;
    let next: Option<(Uuid, Uuid, i64, i64)> = on_tx!(&mut tx, |conn| {
        // A campaign's lists in order: the first list wins a shared phone.
        sqlx::query_as(
            "SELECT campaign_id, list_id, copied_through, last_line FROM campaign_list_copies
              WHERE copied_through < last_line ORDER BY campaign_id, seq LIMIT 1",
        )
        .fetch_optional(conn)
        .await?
    });
    let Some((campaign, list, copied_through, last_line)) = next else {
        tx.rollback().await?;
        return Ok(CopyStep::Idle);
    };
    let through = last_line.min(copied_through.saturating_add(COPY_CHUNK_LINES));
    copy_lines(&mut tx, campaign, list, copied_through, through).await?;
    // Guarded by the value read: a copier in another process (PostgreSQL),
    // or the projector finishing the copy, may have moved it meanwhile.
    let moved = on_tx!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE campaign_list_copies SET copied_through = $1
              WHERE campaign_id = $2 AND list_id = $3 AND copied_through = $4",
        )
        .bind(through)
        .bind(campaign)
        .bind(list)
        .bind(copied_through)
        .execute(conn)
        .await?
        .rows_affected()
    });
    if moved == 0 {
        tx.rollback().await?;
        return Ok(CopyStep::Raced);
    }
    if through == last_line && pending_lists(&mut tx, campaign).await? == 0 {
        copies_finished(&mut tx, campaign).await?;
    }
    tx.commit().await?;
    Ok(CopyStep::Copied {
        campaign: CampaignId::from_uuid(campaign),
        lines: u64::try_from(through - copied_through).unwrap_or(0),
    })
}

async fn pending_lists(tx: &mut StoreTx, campaign: Uuid) -> StoreResult<i64> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_list_copies
              WHERE campaign_id = $1 AND copied_through < last_line",
        )
        .bind(campaign)
        .fetch_one(conn)
        .await?
    }))
}

/// The campaign's contacts are all in place: the metrics read model's
/// contact count, taken when the lists were attached, becomes the full one.
async fn copies_finished(tx: &mut StoreTx, campaign: Uuid) -> StoreResult<()> {
    on_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE campaign_metrics_campaigns
                SET contacts = (SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = $1)
              WHERE campaign_id = $1",
        )
        .bind(campaign)
        .execute(conn)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// Is any copy pending? Read without a write transaction, so an idle
/// copier costs no write turn.
pub async fn any_pending(db: &Database) -> StoreResult<bool> {
    Ok(on_reader!(db, |pool| {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM campaign_list_copies WHERE copied_through < last_line)",
        )
        .fetch_one(pool)
        .await?
    }))
}

/// The campaign's deferred copies, or `None` if every contact is in place.
pub async fn progress(
    db: &Database,
    campaign: CampaignId,
) -> StoreResult<Option<ContactCopyProgress>> {
    let (copied, total, pending): (i64, i64, i64) = on_reader!(db, |pool| {
        sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(copied_through), 0) AS BIGINT),
                    CAST(COALESCE(SUM(last_line), 0) AS BIGINT),
                    COUNT(CASE WHEN copied_through < last_line THEN 1 END)
               FROM campaign_list_copies WHERE campaign_id = $1",
        )
        .bind(Uuid::from(campaign))
        .fetch_one(pool)
        .await?
    });
    Ok((pending > 0).then(|| ContactCopyProgress {
        lines_copied: u64::try_from(copied).unwrap_or(0),
        lines_total: u64::try_from(total).unwrap_or(0),
    }))
}
