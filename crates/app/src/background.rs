//! The server's background work: a follower per read model and the
//! dispatcher. `textbank serve` and the end-to-end tests start the same set.

use std::sync::Arc;

use textbank_projections::follow;
use textbank_store::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, dispatch};

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts every projector's follower and the dispatcher.
    pub fn start(app: &App) -> Self {
        let (stop, stopped) = watch::channel(false);
        let store: Arc<dyn EventStore> = app.store().clone();
        let mut tasks: Vec<JoinHandle<()>> = textbank_projections::all()
            .into_iter()
            .map(|projector| {
                let (reached, progress) = watch::channel(0);
                app.register_progress(projector.name(), progress);
                tokio::spawn(follow(store.clone(), projector, stopped.clone(), reached))
            })
            .collect();
        tasks.push(tokio::spawn(dispatch::run(app.clone(), stopped)));
        Self { stop, tasks }
    }

    /// Stops the tasks and waits for them to finish their current batch.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
