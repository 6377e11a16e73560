//! Read models built from the event log, and the runner that keeps each one
//! up to date: a projector applies a batch of events and saves its rows and
//! its checkpoint in one transaction, so every event takes effect exactly
//! once, across crashes.
#![forbid(unsafe_code)]

mod runner;

pub use runner::{ProjectionError, Projector, catch_up, follow};
