//! Who waits on a run (its followers, the engine waiting for an approval
//! or a cancel) is woken when the run changes, instead of polling: every
//! write to a run's state, steps, log or approvals announces the run's id
//! once committed. Within a process the announcement is a broadcast; on
//! PostgreSQL the database's own triggers `NOTIFY smithers_runs` in the
//! writing transaction (migration 0009) to every process listening; on
//! SQLite another process's commit is seen as a change of the database's
//! files (inotify, through the `notify` crate).
//!
//! A wake-up says only "look again": waiters re-read what they follow. A
//! missed announcement (a listener reconnecting) costs at most the
//! waiter's fallback interval.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

/// The channel PostgreSQL announcements go through (named again in
/// migration 0009's trigger).
pub const CHANNEL: &str = "smithers_runs";

/// Stands for every run: another process changed the database.
const ANY_RUN: &str = "*";

/// How many announcements a slow waiter may fall behind before it is
/// simply told to look again.
const BACKLOG: usize = 1024;

/// The announcements of one store, shared by its clones.
#[derive(Debug)]
pub(crate) struct Hub {
    sender: broadcast::Sender<Arc<str>>,
    /// What tells this process of other processes' commits, started by
    /// the first waiter.
    source: Source,
    watching: Mutex<Option<Watch>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// PostgreSQL at this URL: `LISTEN smithers_runs`.
    Postgres(String),
    /// The SQLite file: its directory is watched.
    Sqlite(PathBuf),
}

#[derive(Debug)]
enum Watch {
    Listener(tokio::task::JoinHandle<()>),
    /// Watching lasts as long as the watcher is kept.
    Files {
        _watcher: notify::RecommendedWatcher,
    },
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Ok(mut watching) = self.watching.lock()
            && let Some(Watch::Listener(task)) = watching.take()
        {
            task.abort();
        }
    }
}

impl Hub {
    pub(crate) fn new(source: Source) -> Hub {
        Hub {
            sender: broadcast::channel(BACKLOG).0,
            source,
            watching: Mutex::new(None),
        }
    }

    /// Tells this process's waiters that `run_id` changed.
    pub(crate) fn announce(&self, run_id: &str) {
        // No receiver is no one waiting: nothing to tell.
        let _ = self.sender.send(Arc::from(run_id));
    }

    /// A waiter on `run_id`; the first one starts listening to other
    /// processes.
    pub(crate) fn subscribe(&self, run_id: &str, fallback: Duration) -> RunChanges {
        let receiver = self.sender.subscribe();
        self.watch_others();
        RunChanges {
            receiver,
            run_id: Arc::from(run_id),
            fallback,
        }
    }

    fn watch_others(&self) {
        let Ok(mut watching) = self.watching.lock() else {
            return;
        };
        if watching.is_some() {
            return;
        }
        *watching = match &self.source {
            Source::Postgres(url) => Some(Watch::Listener(tokio::spawn(listen(
                url.clone(),
                self.sender.clone(),
            )))),
            Source::Sqlite(file) => match watch_files(file, self.sender.clone()) {
                Ok(watcher) => Some(Watch::Files { _watcher: watcher }),
                Err(e) => {
                    tracing::warn!(error = %e, "other processes' changes to runs are seen only by the fallback interval");
                    None
                }
            },
        };
    }
}

/// Forwards PostgreSQL's announcements to this process's waiters, and
/// tells them to look again whenever the connection was lost (what was
/// announced meanwhile is gone).
async fn listen(url: String, sender: broadcast::Sender<Arc<str>>) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN for run changes");
                } else {
                    let _ = sender.send(Arc::from(ANY_RUN));
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) => {
                                let _ = sender.send(Arc::from(n.payload()));
                            }
                            // The connection was lost and is made again.
                            Ok(None) => {
                                let _ = sender.send(Arc::from(ANY_RUN));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "listening for run changes stopped");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for run changes"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long the database's files must stay unchanged before waiters are
/// woken a second time (see [`watch_files`]).
const QUIET: Duration = Duration::from_millis(25);

/// Watches the SQLite file's directory: a commit of any process writes the
/// database file or its write-ahead log.
///
/// A commit is several writes, and the first may be seen before the commit
/// is (the write-ahead log's index is updated last, through shared memory,
/// which inotify does not report); inotify also merges a change into one
/// not yet read. So waiters are woken at the first change and again once
/// the files have been quiet for [`QUIET`], when the commit is readable.
fn watch_files(
    file: &Path,
    sender: broadcast::Sender<Arc<str>>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (changes, changed) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let ours = event.is_ok_and(|e| {
            e.kind.is_modify()
                && e.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&name))
                })
        });
        if ours {
            let _ = changes.send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    // Ends when the watcher (and with it `changes`) is dropped.
    std::thread::Builder::new()
        .name("smithers-run-changes".into())
        .spawn(move || {
            while changed.recv().is_ok() {
                let _ = sender.send(Arc::from(ANY_RUN));
                loop {
                    match changed.recv_timeout(QUIET) {
                        Ok(()) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                let _ = sender.send(Arc::from(ANY_RUN));
            }
        })
        .map_err(notify::Error::io)?;
    Ok(watcher)
}

/// Wakes a waiter when its run may have changed ([`crate::Store::run_changes`]).
#[derive(Debug)]
pub struct RunChanges {
    receiver: broadcast::Receiver<Arc<str>>,
    run_id: Arc<str>,
    fallback: Duration,
}

impl RunChanges {
    /// Returns once the run may have changed since the last return: a
    /// change announced for it (or for any run, by another process), or
    /// the fallback interval passed. Announcements queued meanwhile are
    /// taken along: the caller re-reads everything anyway.
    pub async fn changed(&mut self) {
        let wait = async {
            loop {
                match self.receiver.recv().await {
                    Ok(id) if *id == *self.run_id || &*id == ANY_RUN => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    // The store is gone: nothing more will be announced.
                    Err(broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(self.fallback, wait).await;
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.receiver.try_recv()
        {
        }
    }

    /// Waits at most `limit` for [`RunChanges::changed`].
    pub async fn changed_within(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.changed()).await;
    }
}
