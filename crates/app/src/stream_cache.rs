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

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::mem::size_of;
use std::sync::{Mutex, PoisonError};

use textbank_domain::StreamId;
use textbank_domain::recipient::RecipientState;

use crate::command::Loaded;

/// The cache's memory budget, in estimated heap bytes of the states and
/// their stream names. A clicked voter's state weighs about 1.5 KiB, so
/// this keeps the last ~10,000 recipients: the send path's commands on one
/// message come within seconds of each other, which this covers at the
/// benchmark's 2,000 clicks/s; a state evicted earlier is read back from
/// the log. Bounded by bytes, not by count, so that voters with long
/// conversations cannot grow it (docs/benchmarks.md, memory).
const BUDGET_BYTES: usize = 16 * 1024 * 1024;

pub(crate) struct StreamCache<S> {
    inner: Mutex<Entries<S>>,
    budget: usize,
    /// What a state costs in memory, roughly: its own size and what it owns
    /// on the heap.
    weigh: fn(&S) -> usize,
}

impl Default for StreamCache<RecipientState> {
    fn default() -> Self {
        Self::with_budget(BUDGET_BYTES, recipient_weight)
    }
}

struct Entries<S> {
    states: HashMap<StreamId, Entry<S>>,
    /// Insertion order, for eviction. A forgotten stream keeps its place
    /// (finding it would scan the queue); if it comes back it is queued
    /// again, and its first place only evicts it early.
    order: VecDeque<StreamId>,
    /// The sum of the entries' weights.
    weight: usize,
}

struct Entry<S> {
    version: u64,
    state: S,
    weight: usize,
}

impl<S: Clone> StreamCache<S> {
    fn with_budget(budget: usize, weigh: fn(&S) -> usize) -> Self {
        Self {
            inner: Mutex::new(Entries {
                states: HashMap::new(),
                order: VecDeque::new(),
                weight: 0,
            }),
            budget,
            weigh,
        }
    }

    pub(crate) fn get(&self, stream: &StreamId) -> Option<Loaded<S>> {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.states.get(stream).map(|entry| Loaded {
            state: entry.state.clone(),
            version: Some(entry.version),
        })
    }

    pub(crate) fn put(&self, stream: &StreamId, version: u64, state: S) {
        // The stream's name is kept twice: as the key and in the order.
        let weight = (self.weigh)(&state) + 2 * (size_of::<StreamId>() + stream.as_str().len());
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        entries.weight += weight;
        let entry = Entry {
            version,
            state,
            weight,
        };
        match entries.states.insert(stream.clone(), entry) {
            Some(replaced) => entries.weight -= replaced.weight,
            None => entries.order.push_back(stream.clone()),
        }
        while entries.weight > self.budget {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(evicted) = entries.states.remove(&oldest) {
                entries.weight -= evicted.weight;
            }
        }
    }

    pub(crate) fn forget(&self, stream: &StreamId) {
        let mut entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(forgotten) = entries.states.remove(stream) {
            entries.weight -= forgotten.weight;
        }
    }
}

/// A hash table's allocation: its buckets and their control bytes.
fn table<T>(capacity: usize) -> usize {
    capacity * (size_of::<T>() + 1)
}

fn map<K, V>(map: &HashMap<K, V>) -> usize {
    table::<(K, V)>(map.capacity())
}

fn set<T: Eq + Hash>(set: &HashSet<T>) -> usize {
    table::<T>(set.capacity())
}

fn recipient_weight(state: &RecipientState) -> usize {
    let strings = state
        .idempotency_keys
        .keys()
        .map(String::len)
        .sum::<usize>()
        + state
            .outbound
            .values()
            .map(|outbound| {
                outbound.body.len() + outbound.carrier_message_id.as_ref().map_or(0, String::len)
            })
            .sum::<usize>()
        + state.by_carrier_id.keys().map(String::len).sum::<usize>()
        + state.reports.iter().map(|(id, _)| id.len()).sum::<usize>()
        + state.inbound.iter().map(String::len).sum::<usize>()
        + state
            .unmatched_reports
            .keys()
            .map(String::len)
            .sum::<usize>()
        + state.sender.as_ref().map_or(0, String::len)
        + state
            .handling
            .values()
            .map(|handling| {
                handling.escalation.as_ref().map_or(0, String::len)
                    + handling
                        .tags
                        .values()
                        .map(|name| name.len() + 64)
                        .sum::<usize>()
                    + handling.former_texters.len() * 48
            })
            .sum::<usize>();
    size_of::<RecipientState>()
        + map(&state.tokens)
        + map(&state.idempotency_keys)
        + map(&state.held)
        + map(&state.conversations)
        + map(&state.handling)
        + map(&state.outbound)
        + map(&state.by_carrier_id)
        + set(&state.reports)
        + set(&state.inbound)
        + map(&state.unmatched_reports)
        + strings
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state that weighs what it says.
    #[derive(Clone)]
    struct Heavy(usize);

    fn heavy(budget: usize) -> StreamCache<Heavy> {
        StreamCache::with_budget(budget, |state: &Heavy| state.0)
    }

    fn stream(n: usize) -> StreamId {
        StreamId::parse(format!("recipient-{n}")).expect("a stream name")
    }

    #[test]
    fn evicts_the_oldest_streams_once_over_its_budget() {
        let name = 2 * (size_of::<StreamId>() + stream(0).as_str().len());
        let cache = heavy(3 * (1000 + name));
        for n in 0..3 {
            cache.put(&stream(n), 1, Heavy(1000));
        }
        assert!(cache.get(&stream(0)).is_some());
        cache.put(&stream(3), 1, Heavy(1000));
        assert!(cache.get(&stream(0)).is_none(), "the oldest went");
        assert!(cache.get(&stream(1)).is_some());
        assert!(cache.get(&stream(3)).is_some());
    }

    #[test]
    fn a_heavy_state_evicts_as_many_light_ones_as_it_needs() {
        let cache = heavy(10_000);
        for n in 0..5 {
            cache.put(&stream(n), 1, Heavy(1000));
        }
        cache.put(&stream(9), 1, Heavy(8000));
        let kept: Vec<usize> = (0..5)
            .filter(|n| cache.get(&stream(*n)).is_some())
            .collect();
        assert_eq!(kept, vec![4], "the four oldest made room, no more");
        assert!(cache.get(&stream(9)).is_some());
    }

    #[test]
    fn replacing_or_forgetting_a_state_gives_its_weight_back() {
        let cache = heavy(100_000);
        cache.put(&stream(0), 1, Heavy(50_000));
        cache.put(&stream(0), 2, Heavy(10));
        cache.put(&stream(1), 1, Heavy(60_000));
        assert_eq!(
            cache.get(&stream(0)).map(|loaded| loaded.version),
            Some(Some(2))
        );
        cache.forget(&stream(1));
        cache.put(&stream(2), 1, Heavy(90_000));
        assert!(
            cache.get(&stream(0)).is_some(),
            "within budget once forgotten"
        );
    }

    #[test]
    fn a_state_weighs_the_messages_it_holds() {
        let empty = RecipientState::default();
        let mut state = empty.clone();
        let message_id = textbank_domain::MessageId::new();
        state.outbound.insert(
            message_id,
            textbank_domain::recipient::Outbound {
                message_id,
                body: "x".repeat(1000),
                automated: false,
                conversation: None,
                dispatch: textbank_domain::recipient::Dispatch::Pending,
                carrier_message_id: None,
                delivery: None,
            },
        );
        assert_eq!(recipient_weight(&empty), size_of::<RecipientState>());
        assert!(
            recipient_weight(&state) >= recipient_weight(&empty) + 1000,
            "{}",
            recipient_weight(&state)
        );
    }
}
