//! The projector runner: catch up from the checkpoint, then follow the log as
//! it grows.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use textbank_domain::DomainEvent;
use textbank_store::{EventStore, RecordedEvent, StoreError, StoreTx, wait_beyond};

use crate::batch::{Batch, OwnedBatch};
use tokio::sync::watch;
use uuid::Uuid;

/// How much one batch reads and applies in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct BatchSize {
    pub events: usize,
    /// Payload bytes: one list-import event carries a thousand contacts
    /// (~300 KB), and its decoded JSON several times that.
    pub bytes: u64,
}

/// Following the log: small enough that a batch's write transaction (which
/// holds SQLite's write lock) keeps appends waiting only milliseconds.
pub const LIVE_BATCH: BatchSize = BatchSize {
    events: 2_000,
    bytes: 4 << 20,
};

/// Rebuilding from position 0: read models fold each batch in memory and
/// write each touched row once per batch, so bigger batches write a message's
/// click, dispatch and reports as one row instead of several updates.
pub const REBUILD_BATCH: BatchSize = BatchSize {
    events: 20_000,
    bytes: 32 << 20,
};
/// How long a follower sleeps without a wake-up before re-reading anyway (a
/// wake-up from another process can be lost while its listener reconnects).
const POLL: Duration = Duration::from_secs(1);
/// How long a follower lets events gather after a wake-up before applying
/// them. Every append wakes every follower; applying one event per
/// transaction would make each projector take the database's write lock as
/// often as events arrive, starving the appends. Lingering turns that into
/// one transaction per few hundred events; `bench send` measured 1,170–1,240
/// clicks/s at 5 ms and 1,155–1,430 (median 1,405 of five runs) at 25 ms, so
/// 25 ms: read models (and the dispatcher) stay well under a tenth of a
/// second behind.
pub const LINGER: Duration = Duration::from_millis(25);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("projector {projector} failed at position {position}: {reason}")]
    Apply {
        projector: &'static str,
        position: u64,
        reason: String,
    },
}

/// A read model.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name; also the checkpoint's name.
    fn name(&self) -> &'static str;

    /// Applies events (in position order) to the read model inside `tx`. An
    /// error rolls back the whole batch, checkpoint included.
    async fn apply(&self, tx: &mut StoreTx, batch: Batch<'_>) -> Result<(), ProjectionError>;

    /// The tables this read model writes, by their live names. A read model
    /// that names them (and gives [`Projector::next`]) is rebuilt beside
    /// itself and swapped in; see `rebuild`.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// The same read model writing to `{table}_next` under its own
    /// checkpoint (its name must differ): what a rebuild fills.
    fn next(&self) -> Option<Arc<dyn Projector>> {
        None
    }
}

/// Decodes an event of an aggregate whose streams are named
/// `{prefix}{uuid}`: `None` for another stream; otherwise the aggregate id
/// and the event (`None` for a type this code does not know).
pub fn aggregate_event<E: DomainEvent>(
    projector: &'static str,
    prefix: &str,
    event: &RecordedEvent,
) -> Result<Option<(Uuid, Option<E>)>, ProjectionError> {
    let Some(id) = event.stream_id.as_str().strip_prefix(prefix) else {
        return Ok(None);
    };
    let fail = |reason: String| ProjectionError::Apply {
        projector,
        position: event.position,
        reason,
    };
    let id: Uuid = id
        .parse()
        .map_err(|err| fail(format!("stream id: {err}")))?;
    let parsed =
        E::from_parts(&event.event_type, &event.data).map_err(|err| fail(err.to_string()))?;
    Ok(Some((id, parsed)))
}

/// Applies every event after the projector's checkpoint, batch by batch, and
/// returns the position it reached.
///
/// Events are read before the write transaction begins (on SQLite a write
/// transaction holds the database's write lock, and appends should not wait
/// for a read); the checkpoint is then checked again inside the transaction,
/// so two runners racing on one projector cannot both apply a batch.
pub async fn catch_up(
    store: &dyn EventStore,
    projector: &dyn Projector,
) -> Result<u64, ProjectionError> {
    catch_up_reporting(store, projector, None, LIVE_BATCH).await
}

/// [`catch_up`], publishing the position reached after every batch: under
/// a steady stream of appends the loop may not end for a while, and readers
/// waiting for their own write must not wait for it to.
async fn catch_up_reporting(
    store: &dyn EventStore,
    projector: &dyn Projector,
    reached: Option<&watch::Sender<u64>>,
    size: BatchSize,
) -> Result<u64, ProjectionError> {
    let name = projector.name();
    loop {
        let from = store.checkpoint(name).await?.unwrap_or(0);
        let events = read_batch(store, from, size).await?;
        let Some(last) = events.last_position() else {
            if let Some(reached) = reached {
                reached.send_replace(from);
            }
            return Ok(from);
        };
        let mut tx = store.begin().await?;
        if tx.load_checkpoint(name).await?.unwrap_or(0) != from {
            // Another runner applied this batch meanwhile; start over.
            tx.rollback().await?;
            continue;
        }
        projector.apply(&mut tx, events.all()).await?;
        tx.save_checkpoint(name, last).await?;
        tx.commit().await?;
        if let Some(reached) = reached {
            reached.send_replace(last);
        }
    }
}

/// Keeps the projector caught up until `stop` turns true, publishing each
/// position it reaches on `reached` (queries wait on it to read their own
/// writes). A failing batch is logged and retried after a pause; it never
/// advances the checkpoint.
pub async fn follow(
    store: Arc<dyn EventStore>,
    projector: Arc<dyn Projector>,
    mut stop: watch::Receiver<bool>,
    reached: watch::Sender<u64>,
) {
    let name = projector.name();
    while !*stop.borrow() {
        let position = match catch_up_reporting(
            store.as_ref(),
            projector.as_ref(),
            Some(&reached),
            LIVE_BATCH,
        )
        .await
        {
            Ok(position) => position,
            Err(err) => {
                tracing::error!(projector = name, error = %err, "projection failed; retrying");
                pause(&mut stop).await;
                continue;
            }
        };
        idle(store.as_ref(), position, &mut stop).await;
    }
}

/// A projector and where its progress is published.
pub struct Followed {
    pub projector: Arc<dyn Projector>,
    pub reached: watch::Sender<u64>,
}

/// Keeps several projectors caught up with one reader: each batch is read
/// (and its JSON decoded) once and applied to every projector in one
/// transaction, with every checkpoint saved in it. Projectors at different
/// positions (one was rebuilt) each get only the events they have not
/// applied. When the shared transaction fails — one projector's batch is
/// refused — each projector catches up on its own for that round, so one
/// failing read model never holds the others back.
pub async fn follow_together(
    store: Arc<dyn EventStore>,
    followed: Vec<Followed>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let head = match apply_together(store.as_ref(), &followed).await {
            Ok(Some(head)) => head,
            // Events applied (or a checkpoint moved under us): go again.
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "shared projection batch failed; projectors catch up one by one");
                let mut failed = false;
                for one in &followed {
                    let projector = one.projector.as_ref();
                    if let Err(err) = catch_up_reporting(
                        store.as_ref(),
                        projector,
                        Some(&one.reached),
                        LIVE_BATCH,
                    )
                    .await
                    {
                        tracing::error!(projector = projector.name(), error = %err, "projection failed; retrying");
                        failed = true;
                    }
                }
                if failed {
                    pause(&mut stop).await;
                }
                continue;
            }
        };
        idle(store.as_ref(), head, &mut stop).await;
    }
}

/// Brings every projector to the head with one reader (see
/// [`follow_together`]) and returns the position reached: what a rebuild of
/// several read models costs. The next batch is read while the current one
/// is applied (on SQLite the read and the write run on different
/// connections), so reading and decoding overlap with writing.
pub async fn catch_up_together(
    store: &dyn EventStore,
    projectors: &[Arc<dyn Projector>],
) -> Result<u64, ProjectionError> {
    catch_up_together_in(store, projectors, REBUILD_BATCH).await
}

/// [`catch_up_together`] in batches of `size`.
pub async fn catch_up_together_in(
    store: &dyn EventStore,
    projectors: &[Arc<dyn Projector>],
    size: BatchSize,
) -> Result<u64, ProjectionError> {
    let followed: Vec<Followed> = projectors
        .iter()
        .map(|projector| Followed {
            projector: projector.clone(),
            reached: watch::channel(0).0,
        })
        .collect();
    let names: Vec<&str> = projectors
        .iter()
        .map(|projector| projector.name())
        .collect();
    'restart: loop {
        let mut at = positions(store, &names).await?;
        let mut events =
            read_batch(store, at.iter().copied().min().unwrap_or(0), REBUILD_BATCH).await?;
        loop {
            let Some(last) = events.last_position() else {
                return Ok(at.iter().copied().min().unwrap_or(0));
            };
            let (applied, next) = tokio::join!(
                apply_batch(store, &followed, &names, &at, &events),
                read_batch(store, last, size)
            );
            if !applied? {
                // Another runner moved a checkpoint: start from the database.
                continue 'restart;
            }
            for position in &mut at {
                *position = (*position).max(last);
            }
            events = next?;
        }
    }
}

/// The projectors' checkpoints, 0 for one that never ran.
async fn positions(store: &dyn EventStore, names: &[&str]) -> Result<Vec<u64>, StoreError> {
    Ok(store
        .checkpoints(names)
        .await?
        .into_iter()
        .map(|position| position.unwrap_or(0))
        .collect())
}

/// Applies the next batch to every projector behind it. `Some(position)`
/// when all were already caught up to it (nothing to read), `None` after a
/// batch was applied or a checkpoint moved meanwhile.
async fn apply_together(
    store: &dyn EventStore,
    followed: &[Followed],
) -> Result<Option<u64>, ProjectionError> {
    let names: Vec<&str> = followed.iter().map(|one| one.projector.name()).collect();
    let at = positions(store, &names).await?;
    let Some(&from) = at.iter().min() else {
        return Ok(Some(0));
    };
    let events = read_batch(store, from, LIVE_BATCH).await?;
    let Some(last) = events.last_position() else {
        for (one, position) in followed.iter().zip(&at) {
            one.reached.send_replace(*position);
        }
        return Ok(Some(from));
    };
    if apply_batch(store, followed, &names, &at, &events).await? {
        for (one, position) in followed.iter().zip(&at) {
            one.reached.send_replace(last.max(*position));
        }
    }
    Ok(None)
}

/// Applies `events` to each projector past its position in `at`, with
/// every checkpoint, in one transaction; `false` (nothing applied) when a
/// checkpoint is no longer where `at` says.
async fn apply_batch(
    store: &dyn EventStore,
    followed: &[Followed],
    names: &[&str],
    at: &[u64],
    events: &OwnedBatch,
) -> Result<bool, ProjectionError> {
    let Some(last) = events.last_position() else {
        return Ok(true);
    };
    let mut tx = store.begin().await?;
    let began = std::time::Instant::now();
    // Checkpoints are loaded (and, on PostgreSQL, locked) in one fixed
    // order, so runners in several processes cannot deadlock.
    let loaded = tx.load_checkpoints(names).await?;
    if loaded
        .iter()
        .zip(at)
        .any(|(now, then)| now.unwrap_or(0) != *then)
    {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut saved = Vec::with_capacity(followed.len());
    // How long the batch held the write lock (SQLite), and who spent it:
    // `RUST_LOG=textbank_projections=debug` while a benchmark runs. Timed
    // only then: this runs for every live batch.
    let mut timings: Option<Vec<(&str, u128)>> =
        tracing::enabled!(tracing::Level::DEBUG).then(|| Vec::with_capacity(followed.len()));
    for ((one, position), name) in followed.iter().zip(at).zip(names) {
        if *position >= last {
            continue;
        }
        let started = std::time::Instant::now();
        one.projector
            .apply(&mut tx, events.after(*position))
            .await?;
        if let Some(timings) = &mut timings {
            timings.push((*name, started.elapsed().as_micros()));
        }
        saved.push((*name, last));
    }
    tx.save_checkpoints(&saved).await?;
    tx.commit().await?;
    if let Some(timings) = timings {
        tracing::debug!(
            events = events.all().len(),
            total_us = began.elapsed().as_micros(),
            ?timings,
            "applied a shared batch"
        );
    }
    Ok(true)
}

/// The next batch after `position`: up to `size.events` events and about
/// `size.bytes` of payload.
pub(crate) async fn read_batch(
    store: &dyn EventStore,
    position: u64,
    size: BatchSize,
) -> Result<OwnedBatch, StoreError> {
    Ok(OwnedBatch::new(
        store
            .read_all_bounded(position + 1, size.events, size.bytes)
            .await?,
    ))
}

/// Waits for events beyond `position` (then lets more gather for
/// [`LINGER`]), or for the stop signal.
async fn idle(store: &dyn EventStore, position: u64, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = async {
            wait_beyond(store, position, POLL).await;
            tokio::time::sleep(LINGER).await;
        } => {}
        _ = stop.changed() => {}
    }
}

/// Waits a while after a failure before trying again, or for the stop signal.
async fn pause(stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => {}
        _ = stop.changed() => {}
    }
}
