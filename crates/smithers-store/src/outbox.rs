//! Delivery of the audit log to NATS JetStream.
//!
//! The events table is the outbox: an event is committed with everything
//! else in its transaction, and `audit_publish_cursor` records how far each
//! organization's log has been acknowledged by the stream. The publisher
//! sends events in sequence order, one acknowledged publish at a time, each
//! with `Nats-Msg-Id` = the event id, and moves the cursor after the acks.
//! A crash between an ack and the cursor update republishes, and the
//! stream's duplicate window suppresses the copy: at-least-once delivery,
//! exactly-once effect. While NATS is down events keep committing locally
//! and wait in the table.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, header::NATS_MESSAGE_ID};
use smithers_audit::SealedEvent;
use tokio::sync::watch;

use crate::{AuditQuery, Error, Store};

/// The stream every organization's audit events go to.
pub const AUDIT_STREAM: &str = "AUDIT";
/// Events of organization `O` are published on `audit.O`.
pub const AUDIT_SUBJECTS: &str = "audit.>";
/// How long the stream remembers message ids to drop republished copies.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Events read from the store per round.
const PAGE: u64 = 256;

/// The `AUDIT` stream's settings: keep everything, forever, on disk; nobody
/// deletes or purges.
pub fn audit_stream_config() -> stream::Config {
    stream::Config {
        name: AUDIT_STREAM.to_string(),
        subjects: vec![AUDIT_SUBJECTS.to_string()],
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::ZERO,
        storage: stream::StorageType::File,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

fn nats_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Nats(format!("{what}: {e}"))
}

/// Publishes the audit log to JetStream.
#[derive(Clone)]
pub struct AuditPublisher {
    store: Store,
    jetstream: jetstream::Context,
}

impl AuditPublisher {
    /// Connects to `url`. The server need not be up yet: the client keeps
    /// trying, and publishing waits in the table meanwhile.
    pub async fn connect(store: Store, url: &str) -> Result<AuditPublisher, Error> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .request_timeout(Some(Duration::from_secs(3)))
            .connect(url)
            .await
            .map_err(|e| nats_error("cannot connect to NATS", e))?;
        Ok(AuditPublisher {
            store,
            jetstream: jetstream::new(client),
        })
    }

    /// Creates the `AUDIT` stream if it does not exist.
    pub async fn ensure_stream(&self) -> Result<(), Error> {
        self.jetstream
            .get_or_create_stream(audit_stream_config())
            .await
            .map_err(|e| nats_error("cannot create the AUDIT stream", e))?;
        Ok(())
    }

    /// Publishes one event and waits for the stream's acknowledgement.
    /// Returns whether the stream already had it.
    pub async fn publish(&self, sealed: &SealedEvent) -> Result<bool, Error> {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, sealed.event.id.to_string().as_str());
        let payload =
            serde_json::to_vec(sealed).map_err(|e| nats_error("cannot encode the event", e))?;
        let ack = self
            .jetstream
            .publish_with_headers(
                format!("audit.{}", sealed.event.organization_id),
                headers,
                payload.into(),
            )
            .await
            .map_err(|e| nats_error("cannot publish", e))?
            .await
            .map_err(|e| nats_error("the stream did not acknowledge", e))?;
        Ok(ack.duplicate)
    }

    async fn cursor(&self, organization_id: &str) -> Result<u64, Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT published_seq FROM audit_publish_cursor WHERE organization_id = $1",
        )
        .bind(organization_id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.map_or(0, |(s,)| u64::try_from(s).unwrap_or(0)))
    }

    async fn advance(&self, organization_id: &str, seq: u64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO audit_publish_cursor (organization_id, published_seq) VALUES ($1, $2) \
             ON CONFLICT (organization_id) DO UPDATE SET published_seq = excluded.published_seq",
        )
        .bind(organization_id)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Delivers everything not yet acknowledged, in order; returns how many
    /// events were published. Stops at the first failure, leaving the rest
    /// for the next call.
    pub async fn publish_pending(&self) -> Result<u64, Error> {
        let mut published = 0;
        for org in self.store.audit().organizations().await? {
            let mut cursor = self.cursor(&org).await?;
            loop {
                let events = self
                    .store
                    .audit()
                    .query(&AuditQuery {
                        organization_id: org.clone(),
                        after_seq: Some(cursor),
                        limit: Some(PAGE),
                        ..AuditQuery::default()
                    })
                    .await?;
                if events.is_empty() {
                    break;
                }
                let mut acked = cursor;
                let mut failure = None;
                for e in &events {
                    if e.seq != acked + 1 {
                        failure = Some(Error::Invalid(format!(
                            "the audit log of {org} has a gap at {}: not publishing past it",
                            acked + 1
                        )));
                        break;
                    }
                    match self.publish(e).await {
                        Ok(_) => {
                            acked = e.seq;
                            published += 1;
                        }
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
                if acked > cursor {
                    self.advance(&org, acked).await?;
                    cursor = acked;
                }
                if let Some(err) = failure {
                    return Err(err);
                }
            }
        }
        Ok(published)
    }

    /// Keeps delivering until `stop` turns true, backing off while NATS is
    /// unreachable and polling every `poll` when there is nothing to send.
    pub async fn run(self, poll: Duration, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        let mut stream_ready = false;
        while !*stop.borrow() {
            let round = async {
                if !stream_ready {
                    self.ensure_stream().await?;
                    stream_ready = true;
                }
                self.publish_pending().await
            };
            let wait = match round.await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    poll
                }
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit events not delivered to NATS yet; retrying");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
