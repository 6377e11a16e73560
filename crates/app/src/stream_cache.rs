//! Recently used streams, folded, so the send path's commands on recipient
//! streams (a click, its dispatch, its delivery reports, the voter's
//! replies) decide without reading the stream back from the database each
//! time.
//!
//! The store stays the judge (ADR 0017): a decision taken on a cached state
//! is appended only if the stream is still at the cached version (so a
//! change made by another process, or by a path that skips the cache, is a
//! conflict, and the command decides again on a fresh read), and a decision
//! that appends nothing — a refusal, a duplicate — is taken again on a fresh
//! read before it is answered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use textbank_domain::StreamId;

use crate::command::Loaded;

/// Streams kept. A recipient's state is a few hundred bytes for a voter
/// with one conversation; the send path's commands on one message come
/// within seconds of each other, so this covers minutes of sending at full
/// speed in well under 100 MB.
const CAPACITY: usize = 32_768;

pub(crate) struct StreamCache<S> {
    inner: Mutex<Entries<S>>,
}

impl<S> Default for StreamCache<S> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Entries {
                states: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }
}

struct Entries<S> {
    states: HashMap<StreamId, (u64, S)>,
    /// Insertion order, for eviction. A forgotten stream keeps its place
    /// (finding it would scan the queue); if it comes back it is queued
    /// again, and its first place only evicts it early.
    order: VecDeque<StreamId>,
}

impl<S: Clone> StreamCache<S> {
    pub(crate) fn get(&self, stream: &StreamId) -> Option<Loaded<S>> {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.get(stream).map(|(version, state)| Loaded {
            state: state.clone(),
            version: Some(*version),
        })
    }

    pub(crate) fn put(&self, stream: &StreamId, version: u64, state: S) {
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

    pub(crate) fn forget(&self, stream: &StreamId) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.remove(stream);
    }
}
