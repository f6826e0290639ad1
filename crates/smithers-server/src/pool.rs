//! The server's runs, carried out in its own tasks: the [`RunLauncher`]
//! `smithers serve` gives the service layer.
//!
//! At most `slots` runs are carried out at once; a launched run waits for a
//! free slot queued, held by this process ([`smithers_app::Runs::hold`]) so
//! that if the process dies first the next start finds it interrupted.
//! Stopping takes no more work and drops every run task where it stands:
//! the engine commits each step, call and decision as it goes, so a run
//! is always at its last committed point, and the next start (this
//! process's mark gone) carries it on from there. One run is paused the
//! same way ([`RunLauncher::pause`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use smithers_api::{Error, Launched, RunSummary};
use smithers_app::{App, BoxFuture, Execution, Principal, RunLauncher};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs carried out by this process's tasks, `slots` at a time.
pub struct RunPool {
    app: Arc<App>,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
    stop: CancellationToken,
    /// The runs launched and not ended, so a second launch of one is a
    /// no-op rather than a second executor; each with what pauses it.
    active: Arc<Mutex<HashMap<String, Carried>>>,
}

/// A run task's handles: `pause` stops it where it stands, `ended` is
/// cancelled once the task (and its sandbox) is gone.
#[derive(Clone)]
struct Carried {
    pause: CancellationToken,
    ended: CancellationToken,
}

impl RunPool {
    /// A pool carrying out at most `slots` runs of `app` at once (at least
    /// one), until `stop` is cancelled.
    pub fn new(app: Arc<App>, slots: usize, stop: CancellationToken) -> Arc<RunPool> {
        Arc::new(RunPool {
            app,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            tasks: TaskTracker::new(),
            stop,
            active: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// How many runs are launched and not ended (carried out or waiting
    /// for a slot).
    pub fn active(&self) -> usize {
        self.active.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Takes no more runs, drops every run task where it stands, and
    /// returns once they are all gone (their sandboxes' processes
    /// stopped).
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// The task carrying out run `id` as `principal`: waits for a slot,
    /// then executes the run to its end, unless the pool stops or the run
    /// is paused first.
    async fn carry_out(
        app: Arc<App>,
        slots: Arc<Semaphore>,
        stop: CancellationToken,
        pause: CancellationToken,
        principal: Principal,
        id: String,
    ) {
        let work = async {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            match app
                .runs()
                .execute(&principal, &id, Execution::default())
                .await
            {
                Ok(run) => tracing::info!(run = %id, state = run.state.as_str(), "run ended"),
                // The run stays where its last committed step left it;
                // `POST /api/v1/runs/{id}/resume` carries it on.
                Err(e) => tracing::warn!(run = %id, error = %e, "run stopped"),
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                tracing::info!(run = %id, "run left at its last committed point: the server stops");
            }
            () = pause.cancelled() => {
                tracing::info!(run = %id, "run left at its last committed point: paused");
            }
            () = work => {}
        }
    }
}

impl RunLauncher for RunPool {
    fn launch<'a>(
        &'a self,
        principal: &'a Principal,
        run: &'a RunSummary,
    ) -> BoxFuture<'a, Result<Launched, Error>> {
        Box::pin(async move {
            if self.stop.is_cancelled() {
                return Err(Error::unavailable(
                    "the server is stopping: it takes no more runs",
                ));
            }
            let launched = Launched {
                id: run.id.clone(),
                state: run.state,
                output: None,
            };
            let carried = Carried {
                pause: CancellationToken::new(),
                ended: CancellationToken::new(),
            };
            {
                let mut active = self
                    .active
                    .lock()
                    .map_err(|_| Error::internal("the run pool's list is poisoned"))?;
                if active.contains_key(&run.id) {
                    return Ok(launched);
                }
                active.insert(run.id.clone(), carried.clone());
            }
            if let Err(e) = self.app.runs().hold(principal, &run.id).await {
                if let Ok(mut active) = self.active.lock() {
                    active.remove(&run.id);
                }
                // A pause that found it meanwhile waits for this.
                carried.ended.cancel();
                return Err(e);
            }
            let active = self.active.clone();
            let task = Self::carry_out(
                self.app.clone(),
                self.slots.clone(),
                self.stop.clone(),
                carried.pause.clone(),
                principal.clone(),
                run.id.clone(),
            );
            let id = run.id.clone();
            self.tasks.spawn(async move {
                task.await;
                if let Ok(mut active) = active.lock() {
                    active.remove(&id);
                }
                carried.ended.cancel();
            });
            Ok(launched)
        })
    }

    fn pause<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let carried = self
                .active
                .lock()
                .map_err(|_| Error::internal("the run pool's list is poisoned"))?
                .get(id)
                .cloned();
            let Some(carried) = carried else {
                return Ok(false);
            };
            carried.pause.cancel();
            carried.ended.cancelled().await;
            Ok(true)
        })
    }
}
