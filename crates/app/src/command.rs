//! The one command loop (ADR 0021): load a stream (from the cache, for
//! aggregates that have one, or from the store), decide on its state with a
//! pure domain function, append under the version that was read. A
//! concurrent change to the stream is a conflict; the command is then
//! decided again on a fresh read. A refusal or a decision to change nothing
//! is only ever taken on a fresh read, so a stale cache can never refuse a
//! click or drop a report.

use std::time::Instant;

use textbank_domain::campaign::{self, CampaignEvent, CampaignState};
use textbank_domain::org::{self, OrgEvent, OrgState};
use textbank_domain::recipient::{self, RecipientEvent, RecipientState};
use textbank_domain::{DomainEvent, EventMetadata, StreamId};
use textbank_store::{AppendResult, EventStore, ExpectedVersion, Fence, NewEvent};

use crate::App;
use crate::error::AppError;
use crate::stream_cache::StreamCache;

/// Tries before a command gives up on a hot stream.
pub(crate) const ATTEMPTS: usize = 8;
/// An append the database could not take just now (a dropped connection,
/// a failover) is tried again after these waits, doubling in between, so a
/// blip does not lose a recorded fact (a carrier's answer) or a click.
const RETRY_FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_LAST_WAIT: std::time::Duration = std::time::Duration::from_millis(1600);
/// Events read per page while loading a stream.
const PAGE: usize = 1_000;

/// A stream's events and how they fold into the state its commands decide on.
pub(crate) trait Aggregate: DomainEvent {
    type State: Default + Clone;

    fn evolve(state: Self::State, event: &Self) -> Self::State;

    /// The cache of folded streams, for aggregates on the send path.
    fn cache(_app: &App) -> Option<&StreamCache<Self::State>> {
        None
    }
}

impl Aggregate for RecipientEvent {
    type State = RecipientState;

    fn evolve(state: RecipientState, event: &Self) -> RecipientState {
        recipient::evolve(state, event)
    }

    fn cache(app: &App) -> Option<&StreamCache<RecipientState>> {
        Some(app.recipients())
    }
}

impl Aggregate for OrgEvent {
    type State = OrgState;

    fn evolve(state: OrgState, event: &Self) -> OrgState {
        org::evolve(state, event)
    }
}

impl Aggregate for CampaignEvent {
    type State = CampaignState;

    fn evolve(state: CampaignState, event: &Self) -> CampaignState {
        campaign::evolve(state, event)
    }
}

/// The folded state of a stream and its last version.
#[derive(Debug, Clone)]
pub(crate) struct Loaded<S> {
    pub state: S,
    pub version: Option<u64>,
}

/// What a command decided.
pub(crate) enum Decision<E, T> {
    /// Change the stream: append `events`, answer `T`.
    Change(Vec<E>, T),
    /// Refuse, or change nothing: answer `T`, after appending `events` (the
    /// refusal's evidence, if any). Taken only on a fresh read.
    Settle(Vec<E>, T),
}

/// A command's answer and what it wrote (`None` when it wrote nothing).
pub(crate) struct Executed<T> {
    pub outcome: T,
    pub written: Option<AppendResult>,
    /// Time spent loading the stream and appending to it, over all tries.
    pub timings: CommandTimings,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CommandTimings {
    pub read: std::time::Duration,
    pub append: std::time::Duration,
}

/// Runs a command on `stream`: load, decide, append under the version read,
/// and decide again on a fresh read after a conflict.
pub(crate) async fn run<E, T, D>(
    app: &App,
    stream: &StreamId,
    metadata: &EventMetadata,
    mut decide: D,
) -> Result<Executed<T>, AppError>
where
    E: Aggregate,
    D: FnMut(&Loaded<E::State>) -> Result<Decision<E, T>, AppError>,
{
    let mut view = StreamView::<E>::new(app, stream.clone());
    let mut timings = CommandTimings::default();
    for _ in 0..ATTEMPTS {
        let started = Instant::now();
        let loaded = view.load().await?;
        timings.read += started.elapsed();
        let (events, outcome) = match decide(&loaded) {
            Ok(Decision::Change(events, outcome)) if !events.is_empty() => (events, outcome),
            // A refusal, or nothing to do: only a fresh read may say so.
            _ if view.was_cached() => {
                view.reload();
                continue;
            }
            Ok(Decision::Change(events, outcome) | Decision::Settle(events, outcome)) => {
                (events, outcome)
            }
            Err(err) => return Err(err),
        };
        if events.is_empty() {
            return Ok(Executed {
                outcome,
                written: None,
                timings,
            });
        }
        let started = Instant::now();
        let appended = view.append_at(&loaded, &events, metadata).await?;
        timings.append += started.elapsed();
        if let Some(written) = appended {
            return Ok(Executed {
                outcome,
                written: Some(written),
                timings,
            });
        }
    }
    Err(AppError::Conflict(format!(
        "{stream} kept changing; try again"
    )))
}

/// [`run`] for a decision that is just the events to append (none: nothing
/// to change). Returns the last position written, if anything was.
pub(crate) async fn execute<E, D>(
    app: &App,
    stream: &StreamId,
    metadata: &EventMetadata,
    mut decide: D,
) -> Result<Option<u64>, AppError>
where
    E: Aggregate,
    D: FnMut(&E::State) -> Result<Vec<E>, AppError>,
{
    let executed = run(app, stream, metadata, |loaded: &Loaded<E::State>| {
        Ok(Decision::Change(decide(&loaded.state)?, ()))
    })
    .await?;
    Ok(executed.written.map(|written| written.last_position))
}

/// One command's view of one stream: loads from the aggregate's cache until
/// told a fresh read is needed, and keeps the cache in step with its own
/// appends. [`run`] is built on it; the dispatcher, whose carrier call sits
/// between two appends, uses it directly.
pub(crate) struct StreamView<'a, E: Aggregate> {
    app: &'a App,
    stream: StreamId,
    fresh: bool,
    cached: bool,
    _events: std::marker::PhantomData<E>,
}

impl<'a, E: Aggregate> StreamView<'a, E> {
    pub fn new(app: &'a App, stream: StreamId) -> Self {
        Self {
            app,
            stream,
            fresh: false,
            cached: false,
            _events: std::marker::PhantomData,
        }
    }

    /// The folded stream: cached if this command has not asked for a fresh
    /// read, else read from the store (and cached).
    pub async fn load(&mut self) -> Result<Loaded<E::State>, AppError> {
        let cache = E::cache(self.app);
        if !self.fresh
            && let Some(loaded) = cache.and_then(|cache| cache.get(&self.stream))
        {
            self.cached = true;
            return Ok(loaded);
        }
        let loaded = load::<E>(self.app.events(), &self.stream).await?;
        self.cached = false;
        if let (Some(cache), Some(version)) = (cache, loaded.version) {
            cache.put(&self.stream, version, loaded.state.clone());
        }
        Ok(loaded)
    }

    /// Whether the last load came from the cache: a decision that appends
    /// nothing must then be taken again after [`StreamView::reload`].
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
        loaded: &Loaded<E::State>,
        events: &[E],
        metadata: &EventMetadata,
    ) -> Result<Option<AppendResult>, AppError> {
        self.append_at_fenced(loaded, events, metadata, None).await
    }

    /// Like [`StreamView::append_at`]; with a `fence`, written only while
    /// the fence's leader term is current
    /// ([`textbank_store::StoreError::Fenced`] otherwise).
    pub async fn append_at_fenced(
        &mut self,
        loaded: &Loaded<E::State>,
        events: &[E],
        metadata: &EventMetadata,
        fence: Option<&Fence>,
    ) -> Result<Option<AppendResult>, AppError> {
        let expected = ExpectedVersion::after(loaded.version);
        match self.append(loaded, events, metadata, expected, fence).await {
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
        loaded: &Loaded<E::State>,
        events: &[E],
        metadata: &EventMetadata,
    ) -> Result<AppendResult, AppError> {
        self.append(loaded, events, metadata, ExpectedVersion::Any, None)
            .await
    }

    async fn append(
        &mut self,
        loaded: &Loaded<E::State>,
        events: &[E],
        metadata: &EventMetadata,
        expected: ExpectedVersion,
        fence: Option<&Fence>,
    ) -> Result<AppendResult, AppError> {
        let new_events = to_new_events(events, metadata)?;
        let cache = E::cache(self.app);
        let store = self.app.events();
        let mut backoff = RETRY_FIRST_WAIT;
        let appended = loop {
            // The same event ids each time: an append that committed before
            // its answer was lost replays its original result.
            let appended = match fence {
                Some(fence) => {
                    store
                        .append_fenced(&self.stream, expected, new_events.clone(), fence)
                        .await
                }
                None => {
                    store
                        .append(&self.stream, expected, new_events.clone())
                        .await
                }
            };
            match appended {
                // Not when this process is shutting down.
                Err(err) if backoff <= RETRY_LAST_WAIT && err.is_transient() => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => break other,
            }
        };
        match appended {
            Ok(result) => {
                if let Some(cache) = cache {
                    if result.first_version == loaded.version.map_or(0, |v| v + 1) {
                        let state = events.iter().fold(loaded.state.clone(), E::evolve);
                        cache.put(&self.stream, result.last_version, state);
                    } else {
                        cache.forget(&self.stream);
                    }
                }
                Ok(result)
            }
            Err(err) => {
                if err.is_conflict() {
                    if let Some(cache) = cache {
                        cache.forget(&self.stream);
                    }
                    self.fresh = true;
                }
                Err(err.into())
            }
        }
    }
}

/// Reads and folds a whole stream from the store.
pub(crate) async fn load<E: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
) -> Result<Loaded<E::State>, AppError> {
    let mut state = E::State::default();
    let mut version = None;
    loop {
        let from = version.map_or(0, |v: u64| v + 1);
        let page = store.read_stream(stream, from, PAGE).await?;
        for recorded in &page {
            version = Some(recorded.version);
            let event = E::from_parts(&recorded.event_type, &recorded.data).map_err(|err| {
                AppError::Inconsistent(format!("{stream} v{}: {err}", recorded.version))
            })?;
            if let Some(event) = event {
                state = E::evolve(state, &event);
            }
        }
        if page.len() < PAGE {
            return Ok(Loaded { state, version });
        }
    }
}

/// Domain events as events to append, each with `metadata`.
pub(crate) fn to_new_events<E: DomainEvent>(
    events: &[E],
    metadata: &EventMetadata,
) -> Result<Vec<NewEvent>, AppError> {
    events
        .iter()
        .map(|event| {
            let (event_type, data) = event
                .to_parts()
                .map_err(|err| AppError::Inconsistent(format!("an event to append: {err}")))?;
            Ok(NewEvent {
                schema_version: E::SCHEMA_VERSION,
                ..NewEvent::new(event_type, data, metadata.clone())
            })
        })
        .collect()
}
