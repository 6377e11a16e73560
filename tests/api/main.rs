//! End-to-end tests over HTTP against a server on 127.0.0.1:0, and of the
//! `textbank` binary itself. One test binary, so the build links once.

mod assignments;
mod audit;
mod batches;
mod browser;
mod campaign_metrics;
mod campaigns;
mod carrier;
mod cli;
mod conversations;
mod crash;
mod dispatch_leader;
mod events;
mod helpers;
mod inbox;
mod lists;
mod members;
mod no_carrier;
mod openapi;
mod ops;
mod opt_out_lists;
mod opt_outs;
mod results_export;
mod send;
mod sign_in;
mod tenancy;
mod webhooks;
