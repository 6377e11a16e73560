//! A given/when/then harness for domain decisions: given a history of
//! events, when a decision is taken on the folded state, then it comes to
//! what the test expects.

use std::fmt::Debug;

/// The state a history of events folds to.
pub struct Given<S> {
    state: S,
}

/// Folds `events` from the default state.
pub fn given<S: Default, E>(events: &[E], evolve: fn(S, &E) -> S) -> Given<S> {
    Given {
        state: events.iter().fold(S::default(), evolve),
    }
}

impl<S> Given<S> {
    /// Takes the decision on the folded state.
    pub fn when<D>(self, decide: impl FnOnce(&S) -> D) -> Then<D> {
        Then {
            decided: decide(&self.state),
        }
    }
}

pub struct Then<D> {
    decided: D,
}

impl<D> Then<D> {
    /// The decision itself, for a test that asserts parts of it.
    pub fn into_inner(self) -> D {
        self.decided
    }
}

impl<D: Debug + PartialEq> Then<D> {
    /// Asserts the decision.
    #[track_caller]
    pub fn then(self, expected: D) {
        assert_eq!(self.decided, expected);
    }
}
