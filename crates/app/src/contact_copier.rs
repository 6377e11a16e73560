//! The background copier of large lists' contacts into their campaigns
//! (`textbank_projections::contact_copies`): one range of list lines per
//! transaction until no copy is pending, then it waits for a new campaign.

use std::time::Duration;

use textbank_projections::contact_copies::{self, CopyStep};
use tokio::sync::watch;

use crate::App;

/// How often an idle copier looks for copies it was not woken for (a
/// campaign created by another server, or a rebuild's).
const IDLE_SCAN: Duration = Duration::from_secs(2);

/// The pause after a failed step before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub(crate) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let wake = app.copier_wake();
    while !*stop.borrow() {
        let pause = match contact_copies::copy_next(app.events(), app.database()).await {
            Ok(CopyStep::Copied { campaign, lines }) => {
                tracing::debug!(%campaign, lines, "copied contacts into the campaign");
                // Between ranges the write lock is free: let waiting work in.
                tokio::task::yield_now().await;
                continue;
            }
            Ok(CopyStep::Raced) => continue,
            Ok(CopyStep::Idle) => IDLE_SCAN,
            Err(err) => {
                tracing::error!(error = %err, "copying contacts into a campaign failed");
                RETRY
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}
