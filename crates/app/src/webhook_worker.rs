//! The outbound webhook worker: while this process leads the role
//! `webhooks` (one leader per database, as the dispatch has), it runs one
//! task per enabled subscription. Each task follows the org's events after
//! its subscription's checkpoint, in position order, and delivers each one
//! until the receiver takes it (at least once: the event id is the
//! receiver's deduplication key), retrying with exponential backoff and
//! jitter through the retry window; when the window runs out the
//! subscription is marked failing and disabled, its checkpoint left before
//! the event, so re-enabling it resumes there. Tasks share nothing but the
//! database: a slow or dead receiver holds up its own subscription only,
//! and never the send path or the read models. Records and checkpoints are
//! written fenced with the leader's term.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use textbank_domain::{Actor, EventMetadata};
use textbank_store::webhooks::{self as store, Delivery, Subscription};
use textbank_store::{Fence, Leader, RecordedEvent, StoreError, try_lead, wait_beyond};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::webhook_send::signer;
use crate::webhook_subscriptions::{new_delivery, record_attempt, webhook_body};
use crate::{App, AppError};

/// The leadership role of the worker.
pub const ROLE: &str = "webhooks";
/// Events read per batch of one subscription.
const BATCH: usize = 200;
/// How often the worker looks for new or re-enabled subscriptions (another
/// server's changes; this one's wake it at once), and a task re-reads its
/// subscription's settings.
const SCAN: Duration = Duration::from_secs(1);
/// How often a process that does not lead asks again.
const LEADER_RETRY: Duration = Duration::from_secs(5);
/// Successful deliveries recorded together (a crash re-sends at most these).
const RECORD_EVERY: usize = 100;
const RECORD_AFTER: Duration = Duration::from_millis(250);
/// The first retry's delay and the longest, for a 24-hour window; a shorter
/// window shrinks both in proportion, so it still retries several times.
const FIRST_DELAY: Duration = Duration::from_secs(5);
const LONGEST_DELAY: Duration = Duration::from_secs(60 * 60);
const FULL_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
const SHORTEST_DELAY: Duration = Duration::from_millis(10);

/// The delay before retry number `failures` (1 after the first failure),
/// with ±20 % jitter so receivers that fail together are not retried
/// together.
pub(crate) fn backoff(failures: u32, window: Duration) -> Duration {
    let scale = window.as_secs_f64() / FULL_WINDOW.as_secs_f64();
    let first = (FIRST_DELAY.as_secs_f64() * scale).max(SHORTEST_DELAY.as_secs_f64());
    let longest = (LONGEST_DELAY.as_secs_f64() * scale).max(first);
    let exponent = failures.saturating_sub(1).min(30);
    let delay = (first * 2f64.powi(exponent as i32)).min(longest);
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(delay * jitter)
}

/// Runs until `stop` turns true.
pub(crate) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let mut leader: Option<Leader> = None;
    let mut tasks: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
    // One switch per term of leadership: set, it stops that term's tasks.
    let (mut stop_tasks, mut tasks_stop) = watch::channel(false);
    let wake = app.webhook_wake();
    while !*stop.borrow() {
        if leader.as_ref().is_some_and(|lead| !lead.still_leads()) {
            tracing::error!("webhook delivery leadership lost (its database connection ended)");
            leader = None;
            stop_all(&stop_tasks, &mut tasks).await;
        }
        let Some(lead) = &leader else {
            match try_lead(app.database(), ROLE).await {
                Ok(Some(lead)) => {
                    tracing::info!(term = lead.fence().term, "leading the webhook deliveries");
                    (stop_tasks, tasks_stop) = watch::channel(false);
                    leader = Some(lead);
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::error!(error = %err, "webhook leadership check failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(LEADER_RETRY) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        tasks.retain(|_, task| !task.is_finished());
        match store::enabled(app.database()).await {
            Ok(subs) => {
                for sub in subs {
                    tasks.entry(sub.webhook_id).or_insert_with(|| {
                        let follower = Follower {
                            app: app.clone(),
                            webhook_id: sub.webhook_id,
                            fence: lead.fence().clone(),
                            stop: tasks_stop.clone(),
                            resumed: None,
                        };
                        tokio::spawn(follower.run())
                    });
                }
            }
            Err(err) => tracing::error!(error = %err, "reading webhook subscriptions failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SCAN) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
    stop_all(&stop_tasks, &mut tasks).await;
}

/// Asks every subscription's task to stop (an attempt in flight is
/// abandoned: it was not recorded, so it is made again later) and waits.
async fn stop_all(stop: &watch::Sender<bool>, tasks: &mut HashMap<Uuid, JoinHandle<()>>) {
    stop.send_replace(true);
    for (_, task) in tasks.drain() {
        let _ = task.await;
    }
}

/// One subscription's delivery task.
struct Follower {
    app: App,
    webhook_id: Uuid,
    fence: Fence,
    stop: watch::Receiver<bool>,
    /// A delivery an earlier task left being retried (read once, at start).
    resumed: Option<Delivery>,
}

/// Deliveries made and not yet recorded, and how far they reach.
struct Unrecorded {
    deliveries: Vec<Delivery>,
    reached: Option<u64>,
    /// The checkpoint last written.
    saved: Option<u64>,
    since: Option<tokio::time::Instant>,
}

impl Follower {
    async fn run(mut self) {
        // Only a stop asked from now on counts.
        self.stop.borrow_and_update();
        let mut unrecorded = Unrecorded {
            deliveries: Vec::new(),
            reached: None,
            saved: None,
            since: None,
        };
        // Ends when told to stop, or when the subscription is gone,
        // disabled or failing.
        let followed = match store::pending(self.app.database(), self.webhook_id).await {
            Ok(pending) => {
                self.resumed = pending;
                self.follow(&mut unrecorded).await
            }
            Err(err) => Err(err.into()),
        };
        let recorded = self.record(&mut unrecorded).await;
        match followed.and(recorded) {
            Ok(()) => {}
            Err(err) => {
                if matches!(err, AppError::Store(StoreError::Fenced { .. })) {
                    tracing::warn!(webhook = %self.webhook_id, "webhook delivery fenced: another server leads");
                } else {
                    tracing::error!(webhook = %self.webhook_id, error = %err, "webhook delivery failed; retrying");
                    // The worker starts the task again at its next scan.
                    self.pause(SCAN).await;
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `delay`; false when told to stop first.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => !self.stopping(),
            _ = self.stop.changed() => false,
        }
    }

    /// The subscription as stored, if it is still enabled.
    async fn subscription(&self) -> Result<Option<Subscription>, AppError> {
        Ok(store::by_id(self.app.database(), self.webhook_id)
            .await?
            .filter(|sub| sub.enabled))
    }

    async fn follow(&mut self, unrecorded: &mut Unrecorded) -> Result<(), AppError> {
        loop {
            if self.stopping() {
                return Ok(());
            }
            let Some(sub) = self.subscription().await? else {
                return Ok(());
            };
            let after = unrecorded.reached.unwrap_or(0).max(sub.checkpoint);
            // Read before the events: every event up to it is visible, so a
            // short page means the subscription has seen all of them.
            let head = self.app.events().head_position().await?;
            let events = self
                .app
                .events()
                .read_org(sub.org_id, after, BATCH, &sub.event_types)
                .await?;
            let whole = events.len() < BATCH;
            let mut sub = sub;
            let mut read_at = tokio::time::Instant::now();
            for event in &events {
                if read_at.elapsed() >= SCAN {
                    // A rotated secret, a new URL or a disable apply from
                    // the next delivery on.
                    let Some(fresh) = self.subscription().await? else {
                        return Ok(());
                    };
                    sub = fresh;
                    read_at = tokio::time::Instant::now();
                }
                if self.deliver(&sub, event, unrecorded).await?.is_none() {
                    return Ok(());
                }
                let due = unrecorded
                    .since
                    .is_some_and(|since| since.elapsed() >= RECORD_AFTER);
                if unrecorded.deliveries.len() >= RECORD_EVERY || due {
                    self.record(unrecorded).await?;
                }
            }
            if whole {
                if head > after {
                    let reached = unrecorded.reached.unwrap_or(0).max(head);
                    unrecorded.reached = Some(reached);
                }
                self.record(unrecorded).await?;
            }
            if whole {
                let waited = head.max(after);
                tokio::select! {
                    _ = wait_beyond(self.app.events(), waited, SCAN) => {}
                    _ = self.stop.changed() => {}
                }
            }
        }
    }

    /// Delivers one event until the receiver takes it; `None` when the task
    /// must stop first (told to, the subscription disabled or failing).
    async fn deliver(
        &mut self,
        sub: &Subscription,
        event: &RecordedEvent,
        unrecorded: &mut Unrecorded,
    ) -> Result<Option<()>, AppError> {
        let app = self.app.clone();
        let body = webhook_body(event)?;
        let window = app.webhook_settings().retry_window;
        // A delivery already being retried (before a restart) goes on with
        // its attempts and its window.
        let resumed = self.resumed.take();
        let mut delivery = match resumed {
            Some(pending) if pending.position == Some(event.position) => pending,
            later => {
                // Still ahead (an event before it was not delivered yet).
                self.resumed = later.filter(|pending| pending.position > Some(event.position));
                new_delivery(
                    sub,
                    "event",
                    event.event_id,
                    Some(event.position),
                    &event.event_type,
                    app.clock().now(),
                )
            }
        };
        let mut sub = sub.clone();
        loop {
            if let Some(next) = delivery.next_attempt_at {
                let wait = (next - app.clock().now()).to_std().unwrap_or_default();
                if !self.pause(wait).await {
                    return Ok(None);
                }
                match self.subscription().await? {
                    Some(fresh) => sub = fresh,
                    None => return Ok(None),
                }
            }
            let signer = signer(&app.open_secret(&sub)?)?;
            let now = app.clock().now();
            let attempt = tokio::select! {
                attempt = app.webhook_sender()?.attempt(&sub.url, event.event_id, &body, &signer, now) => attempt,
                _ = self.stop.changed() => return Ok(None),
            };
            let succeeded = attempt.succeeded();
            delivery.updated_at = app.clock().now();
            record_attempt(&mut delivery, attempt)?;
            if succeeded {
                delivery.status = "succeeded".into();
                delivery.next_attempt_at = None;
                unrecorded.deliveries.push(delivery);
                unrecorded.reached = Some(event.position);
                unrecorded
                    .since
                    .get_or_insert_with(tokio::time::Instant::now);
                return Ok(Some(()));
            }
            let deadline = delivery.created_at + window_of(window);
            let now = app.clock().now();
            if now >= deadline {
                delivery.status = "failed".into();
                delivery.next_attempt_at = None;
                unrecorded.deliveries.push(delivery);
                self.record(unrecorded).await?;
                self.give_up(&sub, now).await?;
                return Ok(None);
            }
            let delay = backoff(delivery.attempt_count, window);
            let next = (now + window_of(delay)).min(deadline);
            delivery.next_attempt_at = Some(next);
            unrecorded.deliveries.push(delivery.clone());
            self.record(unrecorded).await?;
        }
    }

    /// Writes the deliveries made and the checkpoint reached, fenced.
    async fn record(&self, unrecorded: &mut Unrecorded) -> Result<(), AppError> {
        if unrecorded.deliveries.is_empty() && unrecorded.reached == unrecorded.saved {
            return Ok(());
        }
        let mut tx = self.app.events().begin().await?;
        store::check_fence(&mut tx, &self.fence).await?;
        store::save_deliveries(&mut tx, &unrecorded.deliveries).await?;
        if let Some(reached) = unrecorded.reached {
            store::save_checkpoint(&mut tx, self.webhook_id, reached).await?;
        }
        tx.commit().await?;
        unrecorded.deliveries.clear();
        unrecorded.saved = unrecorded.reached;
        unrecorded.since = None;
        Ok(())
    }

    /// The retry window ran out: the subscription is marked failing and
    /// disabled, and the change recorded.
    async fn give_up(&self, sub: &Subscription, now: DateTime<Utc>) -> Result<(), AppError> {
        let mut tx = self.app.events().begin().await?;
        store::check_fence(&mut tx, &self.fence).await?;
        store::mark_failing(&mut tx, sub.webhook_id, now).await?;
        tx.commit().await?;
        tracing::warn!(webhook = %sub.webhook_id, "a webhook delivery failed for its whole retry window; the subscription is disabled");
        let failing = Subscription {
            enabled: false,
            failing_since: Some(now),
            ..sub.clone()
        };
        let metadata = EventMetadata::new(Some(sub.org_id), Actor::System);
        self.app.record_webhook_change(&failing, &metadata).await
    }
}

fn window_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter_and_shrinks_with_the_window() {
        for _ in 0..100 {
            let first = backoff(1, FULL_WINDOW).as_secs_f64();
            assert!((4.0..=6.0).contains(&first), "{first}");
            let third = backoff(3, FULL_WINDOW).as_secs_f64();
            assert!((16.0..=24.0).contains(&third), "{third}");
            let late = backoff(40, FULL_WINDOW).as_secs_f64();
            assert!((2880.0..=4320.0).contains(&late), "{late}");
            let short = backoff(1, Duration::from_secs(2)).as_secs_f64();
            assert!((0.008..=0.012).contains(&short), "{short}");
        }
    }
}
