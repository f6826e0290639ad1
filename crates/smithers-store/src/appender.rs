//! The audit writer: one task per process that takes events from any
//! number of callers and commits them in batches (group commit), so
//! concurrent writers share one durable commit instead of paying one each.

use std::sync::Arc;
use std::time::Duration;

use smithers_audit::{AuditEvent, CheckpointSigner, SealedEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit::CheckpointPolicy;
use crate::{Error, Store, now_micros};

/// How the audit log batches and checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct AuditLogConfig {
    /// Sign a checkpoint after this many events…
    pub checkpoint_every: u64,
    /// …or after this long, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Most events committed in one transaction.
    pub max_batch: usize,
}

impl Default for AuditLogConfig {
    fn default() -> Self {
        let policy = CheckpointPolicy::default();
        AuditLogConfig {
            checkpoint_every: policy.every,
            checkpoint_interval: policy.interval,
            max_batch: 1024,
        }
    }
}

/// How many times the writer yields to let more events in before committing.
const GATHER_ROUNDS: usize = 4;

struct Pending {
    event: AuditEvent,
    reply: oneshot::Sender<Result<SealedEvent, Error>>,
}

/// The audit log of one process. Cheap to clone; every clone feeds the same writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
}

/// The running writer task; dropping every [`AuditLog`] stops it after it
/// has committed what it holds.
pub struct AuditWriter {
    task: JoinHandle<()>,
}

impl AuditWriter {
    /// Waits until everything sent before has been committed.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

impl AuditLog {
    /// Starts the writer on the current tokio runtime. The signer is
    /// taken owned or shared (`Arc`), as the caller holds it.
    pub fn start(
        store: Store,
        signer: impl Into<Arc<CheckpointSigner>>,
        config: AuditLogConfig,
    ) -> (AuditLog, AuditWriter) {
        let (sender, receiver) = mpsc::channel(config.max_batch.max(1) * 4);
        let task = tokio::spawn(write_loop(store, signer.into(), config, receiver));
        (AuditLog { sender }, AuditWriter { task })
    }

    /// Records `event`; returns once it is durable, with its place in the chain.
    pub async fn append(&self, event: AuditEvent) -> Result<SealedEvent, Error> {
        event.validate()?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { event, reply })
            .await
            .map_err(|_| Error::AuditClosed)?;
        answer.await.map_err(|_| Error::AuditClosed)?
    }
}

async fn write_loop(
    store: Store,
    signer: Arc<CheckpointSigner>,
    config: AuditLogConfig,
    mut receiver: mpsc::Receiver<Pending>,
) {
    let policy = CheckpointPolicy {
        every: config.checkpoint_every.max(1),
        interval: config.checkpoint_interval,
    };
    loop {
        let first = match tokio::time::timeout(policy.interval, receiver.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => {
                // Every sender is gone: checkpoint the tail before stopping,
                // so a clean shutdown leaves nothing unsigned.
                let now = CheckpointPolicy {
                    interval: Duration::ZERO,
                    ..policy
                };
                if let Err(e) = store
                    .audit()
                    .checkpoint_stale(&signer, now, now_micros())
                    .await
                {
                    tracing::error!(error = %e, "final audit checkpoint failed");
                }
                break;
            }
            Err(_) => {
                // Quiet for a whole interval: checkpoint what is pending.
                if let Err(e) = store
                    .audit()
                    .checkpoint_stale(&signer, policy, now_micros())
                    .await
                {
                    tracing::error!(error = %e, "audit checkpoint failed");
                }
                continue;
            }
        };
        let mut batch = vec![first];
        // Take what is queued; then let writers that were just woken (by
        // the previous commit) enqueue too, so they share this commit
        // rather than each waiting for the next.
        for _ in 0..GATHER_ROUNDS {
            while batch.len() < config.max_batch {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if batch.len() >= config.max_batch {
                break;
            }
            tokio::task::yield_now().await;
        }
        let (events, replies): (Vec<AuditEvent>, Vec<_>) =
            batch.into_iter().map(|p| (p.event, p.reply)).unzip();
        match store
            .audit()
            .append_batch(events, &signer, policy, now_micros())
            .await
        {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit batch not committed");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Invalid(format!(
                        "the audit event was not committed: {message}"
                    ))));
                }
            }
        }
    }
}
