//! Running a command against one stream: read it, fold it, decide, append
//! under the version that was read. A concurrent change to the stream is a
//! conflict; the command is then decided again on the new state.

use textbank_domain::{DomainEvent, EventMetadata, StreamId};
use textbank_store::{EventStore, ExpectedVersion, NewEvent, StoreError};

use crate::error::AppError;

/// Tries before a command gives up on a hot stream.
pub(crate) const ATTEMPTS: usize = 8;
/// Events read per page while loading a stream.
const PAGE: usize = 1_000;

/// The loaded state of a stream and its last version.
pub(crate) struct Loaded<S> {
    pub state: S,
    pub version: Option<u64>,
}

pub(crate) async fn load<E, S>(
    store: &dyn EventStore,
    stream: &StreamId,
    evolve: fn(S, &E) -> S,
) -> Result<Loaded<S>, AppError>
where
    E: DomainEvent,
    S: Default,
{
    let mut state = S::default();
    let mut version = None;
    loop {
        let from = version.map_or(0, |v: u64| v + 1);
        let page = store.read_stream(stream, from, PAGE).await?;
        for recorded in &page {
            version = Some(recorded.version);
            if let Some(event) =
                E::from_parts(&recorded.event_type, &recorded.data).map_err(|err| {
                    StoreError::Corrupt(format!("{stream} v{}: {err}", recorded.version))
                })?
            {
                state = evolve(state, &event);
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
) -> Result<Vec<NewEvent>, StoreError> {
    events
        .iter()
        .map(|event| {
            let (event_type, data) = event
                .to_parts()
                .map_err(|err| StoreError::InvalidInput(err.to_string()))?;
            Ok(NewEvent {
                schema_version: E::SCHEMA_VERSION,
                ..NewEvent::new(event_type, data, metadata.clone())
            })
        })
        .collect()
}

/// Decides and appends; returns the last position written, or `None` when
/// the decision was to change nothing.
pub(crate) async fn execute<E, S, D>(
    store: &dyn EventStore,
    stream: &StreamId,
    metadata: &EventMetadata,
    evolve: fn(S, &E) -> S,
    mut decide: D,
) -> Result<Option<u64>, AppError>
where
    E: DomainEvent,
    S: Default,
    D: FnMut(&S) -> Result<Vec<E>, AppError>,
{
    for _ in 0..ATTEMPTS {
        let loaded = load(store, stream, evolve).await?;
        let events = decide(&loaded.state)?;
        if events.is_empty() {
            return Ok(None);
        }
        let new_events = to_new_events(&events, metadata)?;
        match store
            .append(stream, ExpectedVersion::after(loaded.version), new_events)
            .await
        {
            Ok(result) => return Ok(Some(result.last_position)),
            Err(err) if err.is_conflict() => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(AppError::Conflict(format!(
        "{stream} kept changing; try again"
    )))
}
