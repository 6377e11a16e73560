//! The server's background work: the read models' follower and the
//! dispatcher. `textbank serve` and the end-to-end tests start the same set.

use std::sync::Arc;

use textbank_projections::{Followed, follow_together};
use textbank_store::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, dispatch};

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Starts the read models' follower and the dispatcher.
    pub fn start(app: &App) -> Self {
        let (stop, stopped) = watch::channel(false);
        let store: Arc<dyn EventStore> = app.store().clone();
        let followed = textbank_projections::all()
            .into_iter()
            .map(|projector| {
                let (reached, progress) = watch::channel(0);
                app.register_progress(projector.name(), progress);
                Followed { projector, reached }
            })
            .collect();
        let mut tasks = vec![tokio::spawn(follow_together(
            store,
            followed,
            stopped.clone(),
        ))];
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
