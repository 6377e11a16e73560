//! A batch of events handed to projectors, with each recipient event's
//! payload decoded at most once however many read models look at it (the
//! send path's read models all read the same clicks and reports).

use std::sync::OnceLock;

use textbank_domain::DomainEvent;
use textbank_domain::recipient::RecipientEvent;
use textbank_store::RecordedEvent;

use crate::runner::ProjectionError;

type Decoded = Result<Option<RecipientEvent>, String>;

/// Events read once, shared by every projector of a round.
pub struct OwnedBatch {
    events: Vec<RecordedEvent>,
    recipient: Vec<OnceLock<Decoded>>,
}

impl OwnedBatch {
    pub fn new(events: Vec<RecordedEvent>) -> Self {
        let recipient = events.iter().map(|_| OnceLock::new()).collect();
        Self { events, recipient }
    }

    pub fn last_position(&self) -> Option<u64> {
        self.events.last().map(|event| event.position)
    }

    /// The events after `position`.
    pub fn after(&self, position: u64) -> Batch<'_> {
        let start = self
            .events
            .partition_point(|event| event.position <= position);
        Batch {
            events: &self.events[start..],
            recipient: &self.recipient[start..],
        }
    }

    pub fn all(&self) -> Batch<'_> {
        self.after(0)
    }
}

/// A view of events in position order.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    events: &'a [RecordedEvent],
    recipient: &'a [OnceLock<Decoded>],
}

impl<'a> Batch<'a> {
    pub fn events(&self) -> &'a [RecordedEvent] {
        self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events of recipient streams (`recipient-{org}-{e164}`) whose type
    /// this code knows, decoded, in order.
    pub fn recipient_events(
        &self,
        projector: &'static str,
    ) -> impl Iterator<Item = Result<(&'a RecordedEvent, &'a RecipientEvent), ProjectionError>> + 'a
    {
        self.events
            .iter()
            .zip(self.recipient)
            .filter(|(event, _)| event.stream_id.as_str().starts_with("recipient-"))
            .filter_map(move |(event, cell)| {
                let decoded = cell.get_or_init(|| {
                    RecipientEvent::from_parts(&event.event_type, &event.data)
                        .map_err(|err| err.to_string())
                });
                match decoded {
                    Ok(Some(parsed)) => Some(Ok((event, parsed))),
                    Ok(None) => None,
                    Err(reason) => Some(Err(ProjectionError::Apply {
                        projector,
                        position: event.position,
                        reason: reason.clone(),
                    })),
                }
            })
    }
}

/// Which copy of a read model's tables a projector writes: the live ones
/// queries read, or the `_next` copies a rebuild fills before they are
/// swapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    Live,
    Next,
}

impl Tables {
    /// The name of `table` in this copy. Table names are constants of the
    /// code, never input, so formatting them into SQL is safe.
    pub fn name(self, table: &str) -> String {
        match self {
            Self::Live => table.to_owned(),
            Self::Next => format!("{table}_next"),
        }
    }
}
