//! The `textbank` command: serve the API, apply migrations, run benchmarks.
//! Thin by design: it parses flags (each also an environment variable) and
//! calls the library crates.
#![forbid(unsafe_code)]
// No unwrap or expect on input, I/O or the database outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod logging;
mod projections_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: profiling the list import showed
/// glibc's malloc/free at ~38% of CPU (JSON trees of many small strings
/// allocated on one thread and freed on another).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve(args) => cli::serve(*args).await,
        Command::Migrate(args) => cli::migrate(args).await,
        Command::Bench(args) => textbank_bench::run(args).await,
        Command::Admin(command) => cli::admin(command).await,
        Command::Projections(command) => projections_cmd::run(command).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "textbank failed");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
