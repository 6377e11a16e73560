//! Recently used recipient streams, folded, so the send path's commands (a
//! click, its dispatch, its delivery reports, the voter's replies) decide
//! without reading the stream back from the database each time.
//!
//! The store stays the judge (ADR 0017): a decision taken on a cached state
//! is appended only if the stream is still at the cached version (so a
//! change made by another process, or by a path that skips the cache, is a
//! conflict, and the command decides again on a fresh read), and a decision
//! that appends nothing — a refusal, a duplicate — is taken again on a fresh
//! read before it is answered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use textbank_domain::recipient::{self, RecipientEvent, RecipientState};
use textbank_domain::{EventMetadata, StreamId};
use textbank_store::{AppendResult, ExpectedVersion};

use crate::App;
use crate::command::{Loaded, load, to_new_events};
use crate::error::AppError;

/// Streams kept. A recipient's state is a few hundred bytes for a voter
/// with one conversation; the send path's commands on one message come
/// within seconds of each other, so this covers minutes of sending at full
/// speed in well under 100 MB.
const CAPACITY: usize = 32_768;

#[derive(Default)]
pub(crate) struct RecipientCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    states: HashMap<StreamId, (u64, RecipientState)>,
    /// Insertion order, for eviction. A forgotten stream keeps its place
    /// (finding it would scan the queue); if it comes back it is queued
    /// again, and its first place only evicts it early.
    order: VecDeque<StreamId>,
}

impl RecipientCache {
    pub(crate) fn get(&self, stream: &StreamId) -> Option<Loaded<RecipientState>> {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.get(stream).map(|(version, state)| Loaded {
            state: state.clone(),
            version: Some(*version),
        })
    }

    fn put(&self, stream: &StreamId, version: u64, state: RecipientState) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if entries
            .states
            .insert(stream.clone(), (version, state))
            .is_none()
        {
            entries.order.push_back(stream.clone());
            while entries.order.len() > CAPACITY {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.states.remove(&oldest);
                }
            }
        }
    }

    fn forget(&self, stream: &StreamId) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.remove(stream);
    }
}

/// One command's view of one recipient stream: loads from the cache until
/// told a fresh read is needed, and keeps the cache in step with its own
/// appends.
pub(crate) struct Recipient<'a> {
    app: &'a App,
    stream: StreamId,
    fresh: bool,
    cached: bool,
}

impl<'a> Recipient<'a> {
    pub fn new(app: &'a App, stream: StreamId) -> Self {
        Self {
            app,
            stream,
            fresh: false,
            cached: false,
        }
    }

    /// The folded stream: cached if this command has not asked for a fresh
    /// read, else read from the store (and cached).
    pub async fn load(&mut self) -> Result<Loaded<RecipientState>, AppError> {
        if !self.fresh
            && let Some(loaded) = self.app.recipients().get(&self.stream)
        {
            self.cached = true;
            return Ok(loaded);
        }
        let loaded = load(self.app.events(), &self.stream, recipient::evolve).await?;
        self.cached = false;
        if let Some(version) = loaded.version {
            self.app
                .recipients()
                .put(&self.stream, version, loaded.state.clone());
        }
        Ok(loaded)
    }

    /// Whether the last load came from the cache: a decision that appends
    /// nothing must then be taken again after [`Recipient::reload`].
    pub fn was_cached(&self) -> bool {
        self.cached
    }

    /// Makes the next load read the store.
    pub fn reload(&mut self) {
        self.fresh = true;
    }

    /// Appends `events` if the stream is still at `loaded`'s version;
    /// `None` on a conflict (the next load then reads the store).
    pub async fn append_at(
        &mut self,
        loaded: &Loaded<RecipientState>,
        events: &[RecipientEvent],
        metadata: &EventMetadata,
    ) -> Result<Option<AppendResult>, AppError> {
        let expected = ExpectedVersion::after(loaded.version);
        match self.append(loaded, events, metadata, expected).await {
            Ok(result) => Ok(Some(result)),
            Err(AppError::Store(err)) if err.is_conflict() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Appends `events` whatever the stream's version (an outcome that
    /// belongs to what `loaded` led to); the cache follows if nothing came
    /// in between.
    pub async fn append_any(
        &mut self,
        loaded: &Loaded<RecipientState>,
        events: &[RecipientEvent],
        metadata: &EventMetadata,
    ) -> Result<AppendResult, AppError> {
        self.append(loaded, events, metadata, ExpectedVersion::Any)
            .await
    }

    async fn append(
        &mut self,
        loaded: &Loaded<RecipientState>,
        events: &[RecipientEvent],
        metadata: &EventMetadata,
        expected: ExpectedVersion,
    ) -> Result<AppendResult, AppError> {
        let new_events = to_new_events(events, metadata)?;
        let cache = self.app.recipients();
        match self
            .app
            .events()
            .append(&self.stream, expected, new_events)
            .await
        {
            Ok(result) => {
                let follows = result.first_version == loaded.version.map_or(0, |v| v + 1);
                if follows {
                    let state = events.iter().fold(loaded.state.clone(), recipient::evolve);
                    cache.put(&self.stream, result.last_version, state);
                } else {
                    cache.forget(&self.stream);
                }
                Ok(result)
            }
            Err(err) => {
                if err.is_conflict() {
                    cache.forget(&self.stream);
                    self.fresh = true;
                }
                Err(err.into())
            }
        }
    }
}

/// Decides on the recipient stream and appends under the version decided
/// on — `command::execute` through the cache. `None` when the decision was
/// to change nothing (taken on a fresh read).
pub(crate) async fn execute<D>(
    app: &App,
    stream: &StreamId,
    metadata: &EventMetadata,
    mut decide: D,
) -> Result<Option<AppendResult>, AppError>
where
    D: FnMut(&RecipientState) -> Result<Vec<RecipientEvent>, AppError>,
{
    let mut recipient = Recipient::new(app, stream.clone());
    for _ in 0..crate::command::ATTEMPTS {
        let loaded = recipient.load().await?;
        let decided = decide(&loaded.state);
        let events = match decided {
            Ok(events) if !events.is_empty() => events,
            // Nothing to append, or a refusal: only a fresh read may say so.
            _ if recipient.was_cached() => {
                recipient.reload();
                continue;
            }
            Ok(_) => return Ok(None),
            Err(err) => return Err(err),
        };
        if let Some(result) = recipient.append_at(&loaded, &events, metadata).await? {
            return Ok(Some(result));
        }
    }
    Err(AppError::Conflict(format!(
        "{stream} kept changing; try again"
    )))
}
