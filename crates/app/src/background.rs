//! The server's background work: the read models' follower, the
//! dispatcher, the outbound webhook worker and the copier of large lists'
//! contacts into campaigns. The composition root (`textbank_api::start`)
//! starts and stops them; the dispatcher stops on its own first, so nothing is handed to a
//! carrier while the server winds down.

use std::sync::Arc;

use textbank_projections::{Followed, follow_together};
use textbank_store::EventStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, contact_copier, dispatch, webhook_worker};

pub struct Background {
    dispatcher: Option<Task>,
    webhooks: Option<Task>,
    copier: Option<Task>,
    follower: Task,
}

/// A task and the switch that asks it to stop after its current batch.
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F>(run: impl FnOnce(watch::Receiver<bool>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        Self {
            stop,
            handle: tokio::spawn(run(stopped)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

impl Background {
    /// Starts the read models' follower and the dispatcher.
    pub fn start(app: &App) -> Self {
        let store: Arc<dyn EventStore> = app.store().clone();
        let followed = textbank_projections::all()
            .into_iter()
            .map(|projector| {
                let (reached, progress) = watch::channel(0);
                app.register_progress(projector.name(), progress);
                Followed { projector, reached }
            })
            .collect();
        let follower = Task::spawn(|stopped| follow_together(store, followed, stopped));
        let dispatcher = Task::spawn(|stopped| dispatch::run(app.clone(), stopped));
        let webhooks = Task::spawn(|stopped| webhook_worker::run(app.clone(), stopped));
        let copier = Task::spawn(|stopped| contact_copier::run(app.clone(), stopped));
        Self {
            dispatcher: Some(dispatcher),
            webhooks: Some(webhooks),
            copier: Some(copier),
            follower,
        }
    }

    /// Stops handing clicked messages to carriers, once the dispatcher's
    /// current batch is done; clicks still recorded are dispatched by the
    /// next start.
    pub async fn stop_dispatching(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop().await;
        }
    }

    /// Stops every task and waits for them to finish their current batch
    /// (a webhook attempt in flight is abandoned, and made again later).
    pub async fn stop(mut self) {
        self.stop_dispatching().await;
        if let Some(webhooks) = self.webhooks.take() {
            webhooks.stop().await;
        }
        if let Some(copier) = self.copier.take() {
            copier.stop().await;
        }
        self.follower.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use textbank_testkit::ScratchDb;

    use super::*;
    use crate::{Config, SecretKeySource};

    #[tokio::test]
    async fn stopping_dispatching_leaves_the_read_models_following() {
        let db = ScratchDb::sqlite().await;
        let app = App::open(&Config {
            secret_key: SecretKeySource::Generated,
            ..Config::with_open_database(db.database.clone())
        })
        .await
        .unwrap();
        let mut background = Background::start(&app);
        background.stop_dispatching().await;
        app.create_org("Still Followed").await.unwrap();
        let head = app.events().head_position().await.unwrap();
        assert!(head > 0);
        let followers: Vec<_> = app.progress.lock().unwrap().values().cloned().collect();
        assert!(!followers.is_empty());
        for mut reached in followers {
            // A stopped follower drops its sender, and this fails at once.
            tokio::time::timeout(Duration::from_secs(5), reached.wait_for(|at| *at >= head))
                .await
                .expect("the follower reaches the head")
                .expect("the follower still runs");
        }
        background.stop().await;
        app.close().await;
        db.cleanup().await;
    }
}
