//! Group commit. Every append goes through one writer task per process: while
//! it writes one transaction, new appends queue up, and the next transaction
//! takes all of them (up to a limit). Under load this turns many one-event
//! transactions into few large ones; when idle, an append is written at once
//! with no added delay. Each request is still decided on its own (its own
//! version check, its own answer); if a whole batch fails in the database, the
//! writer retries its requests one by one so one bad request fails alone.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{StoreError, StoreResult};
use crate::event::AppendResult;
use crate::plan::AppendRequest;

/// Most events gathered into one write transaction.
pub(crate) const MAX_BATCH_EVENTS: usize = 8_192;
/// Appends that may wait for the writer before callers feel back-pressure.
const QUEUE_DEPTH: usize = 4_096;

/// A backend's way of writing one batch in one transaction.
pub(crate) trait BatchWriter: Send + 'static {
    /// Writes the batch atomically and answers each request in order. An
    /// `Err` means nothing of the batch was written.
    fn write(
        &mut self,
        batch: &[AppendRequest],
    ) -> impl Future<Output = StoreResult<Vec<StoreResult<AppendResult>>>> + Send;
}

struct Job {
    request: AppendRequest,
    reply: oneshot::Sender<StoreResult<AppendResult>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub(crate) struct Appender {
    jobs: mpsc::Sender<Job>,
    task: Arc<Mutex<WriterTask>>,
}

/// The writer task, kept so that its end is reported with its cause.
enum WriterTask {
    Running(JoinHandle<()>),
    Ended(StoreError),
}

impl Appender {
    /// Starts the writer; `head` is advanced to the last position written.
    pub fn spawn<W: BatchWriter>(writer: W, head: watch::Sender<u64>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(writer, queue, head));
        Self {
            jobs,
            task: Arc::new(Mutex::new(WriterTask::Running(task))),
        }
    }

    pub async fn append(&self, request: AppendRequest) -> StoreResult<AppendResult> {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { request, reply }).await.is_err() {
            return Err(self.gone().await);
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.gone().await),
        }
    }

    /// Why the writer no longer answers: its panic, said once in the log
    /// and then to every caller, or plain `WriterGone` when it stopped
    /// because the store is closing.
    async fn gone(&self) -> StoreError {
        let mut task = self.task.lock().await;
        if let WriterTask::Running(handle) = &mut *task {
            // The queue or the reply closed: the task has ended or is
            // unwinding, so this wait is short.
            let ended = match handle.await {
                Ok(()) => StoreError::WriterGone,
                Err(err) => {
                    let cause = panic_message(err);
                    tracing::error!(cause = %cause, "the event writer failed; appends fail until restart");
                    StoreError::WriterFailed(cause)
                }
            };
            *task = WriterTask::Ended(ended);
        }
        match &*task {
            WriterTask::Ended(StoreError::WriterFailed(cause)) => {
                StoreError::WriterFailed(cause.clone())
            }
            _ => StoreError::WriterGone,
        }
    }
}

fn panic_message(err: tokio::task::JoinError) -> String {
    if !err.is_panic() {
        return err.to_string();
    }
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

async fn run<W: BatchWriter>(
    mut writer: W,
    mut queue: mpsc::Receiver<Job>,
    head: watch::Sender<u64>,
) {
    while let Some(first) = queue.recv().await {
        let mut events = first.request.event_count();
        let mut jobs = vec![first];
        while events < MAX_BATCH_EVENTS {
            match queue.try_recv() {
                Ok(job) => {
                    events += job.request.event_count();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
        let outcomes = match writer.write(&requests).await {
            Ok(outcomes) => outcomes,
            Err(err) if requests.len() == 1 => vec![Err(err)],
            Err(err) => {
                tracing::warn!(error = %err, requests = requests.len(), "batch append failed; retrying its appends one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in &requests {
                    let outcome = match writer.write(std::slice::from_ref(request)).await {
                        Ok(mut single) => single.pop().unwrap_or(Err(StoreError::WriterGone)),
                        Err(err) => Err(err),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
        };
        let written = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().ok().map(|result| result.last_position))
            .max();
        if let Some(position) = written {
            advance(&head, position);
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The caller may have gone away (request cancelled); the append
            // stands either way.
            let _ = reply.send(outcome);
        }
    }
}

/// Moves the visible head forward, never back (another process's
/// notification may already have moved it further).
pub(crate) fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        if position > *current {
            *current = position;
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExpectedVersion, NewEvent};
    use textbank_domain::{Actor, EventMetadata, StreamId};

    fn request() -> AppendRequest {
        let event = NewEvent::new(
            "Tested",
            serde_json::json!({}),
            EventMetadata::new(None, Actor::System),
        );
        AppendRequest::prepare(
            &StreamId::parse("test-1").unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .unwrap()
    }

    struct Panicking;

    impl BatchWriter for Panicking {
        async fn write(
            &mut self,
            _batch: &[AppendRequest],
        ) -> StoreResult<Vec<StoreResult<AppendResult>>> {
            panic!("disk on fire")
        }
    }

    #[tokio::test]
    async fn a_panicking_writer_is_reported_with_its_cause_to_every_later_append() {
        let (head, _) = watch::channel(0);
        let appender = Appender::spawn(Panicking, head);
        for _ in 0..2 {
            let err = appender
                .append(request())
                .await
                .expect_err("the writer panicked");
            assert!(
                matches!(&err, StoreError::WriterFailed(cause) if cause == "disk on fire"),
                "{err:?}"
            );
        }
    }
}
