//! textbank's HTTP API: the axum router, its one error shape, operational
//! endpoints (`/health`, `/ready`, `/metrics`), and the composition root
//! that builds, starts and stops a running server.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod connection;
mod error;
mod extract;
mod metrics;
mod openapi;
mod ops;
mod responses;
mod route_table;
mod running;
mod server;
mod v1;
mod web;
mod webhooks;

pub use error::ApiError;
pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use route_table::{Endpoint, Route, endpoints, routes};
pub use running::{Running, StartError, start};
pub use server::router;
