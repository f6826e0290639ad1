//! Audit destinations: an organization's log streamed to Datadog (and S3)
//! besides NATS (`smithers audit destinations add|list|remove|test`), and
//! the workers that deliver it. Each destination has its own cursor over
//! the audit table — the events table is the outbox — so delivery is at
//! least once and in order per organization, a down destination only
//! grows its lag, and an append never waits for any of them.

pub mod datadog;
pub mod s3;
mod verify_s3;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use smithers_api::{AuditDestination, DestinationTest, Error, S3Verification, Timestamp};
use smithers_audit::merkle::MerkleTree;
use smithers_audit::{ActorType, AuditEvent, SealedEvent};
use smithers_store::{AuditQuery, Destination, DestinationKind, NewDestination, SecretRef};
use zeroize::Zeroizing;

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

use datadog::Datadog;
use s3::{S3, S3Settings};

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// It may work later (a timeout, 429, 5xx, the network): tried again
    /// with back-off.
    Retry(String),
    /// It will not work until someone acts (a refused key, a bucket
    /// without Object Lock): the destination stops until a test passes.
    Stop(String),
}

/// How the workers deliver.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// How often a destination with nothing to send looks again.
    pub poll: Duration,
    /// The longest wait between attempts after failures (doubling from
    /// `poll`).
    pub max_backoff: Duration,
    /// Events read from the log per delivery, at most.
    pub batch: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            batch: 5000,
        }
    }
}

/// A new Datadog destination: the site (or an intake URL, for a proxy)
/// and the secret holding the API key.
#[derive(Debug, Clone)]
pub struct NewDatadog {
    pub name: String,
    /// One of [`datadog::SITES`].
    pub site: String,
    /// Send here instead of the site's intake (a proxy, a test server).
    pub endpoint: Option<String>,
    /// In environment [`CREDENTIALS_ENVIRONMENT`].
    pub api_key_secret: String,
}

/// A new S3 destination: the bucket (which must have Object Lock in
/// compliance mode) and the secret holding the credentials, written
/// `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
#[derive(Debug, Clone)]
pub struct NewS3 {
    pub name: String,
    pub bucket: String,
    /// Prepended to every key; `None`: none.
    pub prefix: Option<String>,
    pub region: String,
    /// An S3-compatible server instead of AWS.
    pub endpoint: Option<String>,
    /// In environment [`CREDENTIALS_ENVIRONMENT`].
    pub credentials_secret: String,
}

/// The audit destinations service.
pub struct AuditDestinationsService<'a> {
    pub(crate) app: &'a App,
}

/// The purpose a destination's credential is read for, in `secret.read`.
const PURPOSE: &str = "audit-destination";

/// The environment a destination's credentials must be in. Reading them
/// takes no grant (the system reads them to deliver), so they are kept
/// apart: a destination can never be pointed at a workflow's secret to
/// send its value somewhere.
pub const CREDENTIALS_ENVIRONMENT: &str = "audit-destinations";

impl AuditDestinationsService<'_> {
    /// Adds a Datadog destination to the principal's organization. It
    /// delivers the events appended from now on (the intake drops entries
    /// older than 18 hours, so the past is read with `audit export`). The
    /// API key is read once to check it exists (an audited read); nothing
    /// is sent until `test` or the workers do.
    ///
    /// Errors: `forbidden` unless an admin; `invalid` for an unknown site,
    /// an endpoint that is not http(s), a missing secret or no keyring;
    /// `conflict` for a name in use.
    pub async fn add_datadog(
        &self,
        principal: &Principal,
        new: NewDatadog,
    ) -> Result<AuditDestination, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditPublish)?;
        if !datadog::SITES.contains(&new.site.as_str()) {
            return Err(Error::invalid(format!(
                "Datadog site {:?}: one of {}",
                new.site,
                datadog::SITES.join(", ")
            )));
        }
        if let Some(endpoint) = &new.endpoint {
            check_endpoint(endpoint)?;
        }
        let config = serde_json::json!({
            "site": new.site,
            "endpoint": new.endpoint,
            "api_key_secret": new.api_key_secret,
            "environment": CREDENTIALS_ENVIRONMENT,
        });
        self.credential(org, CREDENTIALS_ENVIRONMENT, &new.api_key_secret)
            .await
            .map_err(|e| match e {
                DeliveryError::Stop(why) | DeliveryError::Retry(why) => Error::invalid(why),
            })?;
        let start_after = self
            .app
            .store()
            .audit()
            .last_seq(org)
            .await
            .map_err(store_error)?;
        self.record(
            principal,
            DestinationKind::Datadog,
            &new.name,
            config,
            start_after,
        )
        .await
    }

    /// Adds an S3 destination to the principal's organization after
    /// checking, with its credentials, that the bucket has Object Lock in
    /// compliance mode. It delivers the whole log kept (from the prune
    /// base, if the log was pruned).
    ///
    /// Errors: `forbidden` unless an admin; `invalid` for a bad bucket
    /// name, prefix or endpoint, a missing secret or one not written
    /// `ID:SECRET`, a bucket without compliance-mode Object Lock (saying
    /// what is missing) or one that cannot be reached; `conflict` for a
    /// name in use.
    pub async fn add_s3(
        &self,
        principal: &Principal,
        new: NewS3,
    ) -> Result<AuditDestination, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditPublish)?;
        let bucket = new.bucket.trim();
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        {
            return Err(Error::invalid(format!(
                "bucket {bucket:?}: 3 to 63 lowercase letters, digits, '-' or '.'"
            )));
        }
        let prefix = normalize_prefix(new.prefix.as_deref())?;
        if let Some(endpoint) = &new.endpoint {
            check_endpoint(endpoint)?;
        }
        let config = serde_json::json!({
            "bucket": bucket,
            "prefix": prefix,
            "region": new.region,
            "endpoint": new.endpoint,
            "credentials_secret": new.credentials_secret,
            "environment": CREDENTIALS_ENVIRONMENT,
        });
        let invalid = |e: DeliveryError| match e {
            DeliveryError::Stop(why) | DeliveryError::Retry(why) => Error::invalid(why),
        };
        let client = self.s3_client(org, &config).await.map_err(invalid)?;
        client.check_object_lock().await.map_err(invalid)?;
        let start_after = self
            .app
            .store()
            .audit()
            .prune_base(org)
            .await
            .map_err(store_error)?
            .map_or(0, |b| b.checkpoint.tree_size);
        self.record(
            principal,
            DestinationKind::S3,
            &new.name,
            config,
            start_after,
        )
        .await
    }

    /// Stores a destination checked by `add_datadog` or `add_s3`, audited.
    async fn record(
        &self,
        principal: &Principal,
        kind: DestinationKind,
        name: &str,
        config: serde_json::Value,
        start_after: u64,
    ) -> Result<AuditDestination, Error> {
        let added = self
            .app
            .store()
            .destinations()
            .add_recorded(
                self.app.signer(),
                (ActorType::User, &principal.user),
                NewDestination {
                    organization_id: &principal.organization,
                    kind,
                    name,
                    config,
                    start_after,
                },
            )
            .await
            .map_err(store_error)?;
        self.dto(added).await
    }

    /// Verifies the log as S3 destination `id`'s bucket holds it, from the
    /// bucket alone (see [`S3Verification`]).
    ///
    /// Errors: `forbidden` unless an admin; `not_found`; `invalid` for a
    /// destination that is not S3; `unavailable` when the bucket cannot be
    /// read.
    pub async fn verify_s3(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<S3Verification, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let destination = self
            .app
            .store()
            .destinations()
            .get(org, id)
            .await
            .map_err(store_error)?;
        if destination.kind != DestinationKind::S3 {
            return Err(Error::invalid(format!(
                "destination {id} is not an S3 bucket"
            )));
        }
        let client = self
            .s3_client(org, &destination.config)
            .await
            .map_err(|e| match e {
                DeliveryError::Stop(why) | DeliveryError::Retry(why) => Error::unavailable(why),
            })?;
        verify_s3::verify(
            &client,
            org,
            id,
            destination.delivered_seq,
            &[self.app.signer().verifying_key()],
        )
        .await
    }

    /// The organization's destinations with their lag, last success and
    /// last error.
    ///
    /// Errors: `forbidden` unless an admin.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<AuditDestination>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let list = self
            .app
            .store()
            .destinations()
            .list(org)
            .await
            .map_err(store_error)?;
        let log_seq = self.log_seq(org).await?;
        Ok(list.into_iter().map(|d| dto(d, log_seq)).collect())
    }

    /// Removes destination `id`: delivery to it stops.
    ///
    /// Errors: `forbidden` unless an admin; `not_found`.
    pub async fn remove(&self, principal: &Principal, id: &str) -> Result<AuditDestination, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditPublish)?;
        let removed = self
            .app
            .store()
            .destinations()
            .remove_recorded(
                self.app.signer(),
                (ActorType::User, &principal.user),
                org,
                id,
            )
            .await
            .map_err(store_error)?;
        self.dto(removed).await
    }

    /// Sends destination `id` one marked test event (`"test": true`, action
    /// `audit.destination_test`, sequence number 0: not an event of the
    /// log), recorded as `audit.destination_tested`. A pass starts a
    /// stopped destination again.
    ///
    /// Errors: `forbidden` unless an admin; `not_found`.
    pub async fn test(&self, principal: &Principal, id: &str) -> Result<DestinationTest, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditPublish)?;
        let destinations = self.app.store().destinations();
        let destination = destinations.get(org, id).await.map_err(store_error)?;
        if destination.removed_at.is_some() {
            return Err(Error::not_found(format!("no destination {id}")));
        }
        let event = SealedEvent {
            seq: 0,
            event: AuditEvent {
                id: uuid::Uuid::now_v7(),
                organization_id: org.clone(),
                actor_type: ActorType::User,
                actor_id: principal.user.clone(),
                action: "audit.destination_test".into(),
                resource_type: "audit_destination".into(),
                resource_id: id.to_string(),
                details: serde_json::json!({ "test": true }),
                ip_address: None,
                timestamp: smithers_store::now_micros(),
            },
            prev_hash: [0; 32],
            hash: [0; 32],
        };
        let outcome = match self.connect(&destination).await {
            Ok(Sink::S3(state)) => {
                let key = state
                    .client
                    .key(org, &format!("tests/{}.json", event.event.id));
                match s3::json_object(&event) {
                    Ok(body) => state.client.put(&key, body, None).await,
                    Err(e) => Err(e),
                }
            }
            Ok(mut sink) => sink.deliver(self.app, &[event]).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let error = outcome.err().map(|e| match e {
            DeliveryError::Retry(why) | DeliveryError::Stop(why) => why,
        });
        destinations
            .record_test(
                self.app.signer(),
                (ActorType::User, &principal.user),
                org,
                id,
                error.as_deref(),
            )
            .await
            .map_err(store_error)?;
        let destination = destinations.get(org, id).await.map_err(store_error)?;
        Ok(DestinationTest {
            destination: self.dto(destination).await?,
            delivered: error.is_none(),
            error,
        })
    }

    async fn dto(&self, d: Destination) -> Result<AuditDestination, Error> {
        let log_seq = self.log_seq(&d.organization_id).await?;
        Ok(dto(d, log_seq))
    }

    async fn log_seq(&self, organization: &str) -> Result<u64, Error> {
        self.app
            .store()
            .audit()
            .last_seq(organization)
            .await
            .map_err(store_error)
    }

    /// Reads a credential the destination names (an audited read by the
    /// system, for [`PURPOSE`]).
    async fn credential(
        &self,
        organization: &str,
        environment: &str,
        name: &str,
    ) -> Result<Zeroizing<String>, DeliveryError> {
        if environment != CREDENTIALS_ENVIRONMENT {
            return Err(DeliveryError::Stop(format!(
                "a destination's credentials are secrets of environment {CREDENTIALS_ENVIRONMENT}, not {environment}"
            )));
        }
        let secrets = self.app.engine().secrets.as_ref().ok_or_else(|| {
            DeliveryError::Stop(
                "a destination's credentials are Smithers secrets, and no keyring is configured (SECRET_ENCRYPTION_KEYS)"
                    .into(),
            )
        })?;
        let read = secrets
            .read_for_service(organization, SecretRef { environment, name }, PURPOSE)
            .await
            .map_err(|e| match e {
                smithers_store::Error::Database(_) | smithers_store::Error::AuditClosed => {
                    DeliveryError::Retry(format!("the secret {name} ({environment}): {e}"))
                }
                other => DeliveryError::Stop(format!("the secret {name} ({environment}): {other}")),
            })?;
        let text = String::from_utf8(read.value.expose().to_vec()).map_err(|_| {
            DeliveryError::Stop(format!("the secret {name} ({environment}) is not text"))
        })?;
        Ok(Zeroizing::new(text.trim().to_string()))
    }

    /// A client of an S3 destination's bucket, its credentials read.
    async fn s3_client(
        &self,
        organization: &str,
        config: &serde_json::Value,
    ) -> Result<S3, DeliveryError> {
        let setting = |key: &str| config[key].as_str().map(str::to_string);
        let (Some(bucket), Some(secret), Some(environment)) = (
            setting("bucket"),
            setting("credentials_secret"),
            setting("environment"),
        ) else {
            return Err(DeliveryError::Stop(
                "the destination's settings lack a bucket or its credentials".into(),
            ));
        };
        let credentials = self.credential(organization, &environment, &secret).await?;
        let Some((id, key)) = credentials.split_once(':') else {
            return Err(DeliveryError::Stop(format!(
                "the secret {secret} ({environment}) is not written ACCESS_KEY_ID:SECRET_ACCESS_KEY"
            )));
        };
        Ok(S3::new(
            S3Settings {
                bucket,
                prefix: setting("prefix").unwrap_or_default(),
                region: setting("region").unwrap_or_else(|| "us-east-1".into()),
                endpoint: setting("endpoint"),
            },
            id,
            key,
        ))
    }

    /// A client of the destination, with its credentials read.
    async fn connect(&self, d: &Destination) -> Result<Sink, DeliveryError> {
        let setting = |key: &str| d.config[key].as_str().map(str::to_string);
        match d.kind {
            DestinationKind::Datadog => {
                let (Some(secret), Some(environment)) =
                    (setting("api_key_secret"), setting("environment"))
                else {
                    return Err(DeliveryError::Stop(format!(
                        "destination {} has no API key secret in its settings",
                        d.id
                    )));
                };
                let key = self
                    .credential(&d.organization_id, &environment, &secret)
                    .await?;
                let url = setting("endpoint")
                    .unwrap_or_else(|| datadog::intake_url(&setting("site").unwrap_or_default()));
                Ok(Sink::Datadog(Datadog::new(&url, key)))
            }
            DestinationKind::S3 => {
                let client = self.s3_client(&d.organization_id, &d.config).await?;
                client.check_object_lock().await?;
                let org = &d.organization_id;
                let retry = |e: smithers_store::Error| DeliveryError::Retry(e.to_string());
                let audit = self.app.store().audit();
                let base = audit.prune_base(org).await.map_err(retry)?;
                let (pruned, frontier) = base.as_ref().map_or((0, Vec::new()), |b| {
                    (b.checkpoint.tree_size, b.frontier.clone())
                });
                if let Some(base) = &base {
                    client
                        .put(
                            &client.key(org, &format!("prune-bases/{pruned}.json")),
                            s3::json_object(base)?,
                            None,
                        )
                        .await?;
                }
                let mut tree =
                    MerkleTree::after_prefix(pruned, &frontier, Vec::new()).ok_or_else(|| {
                        DeliveryError::Stop(
                            "the prune base's Merkle range does not fit its size".into(),
                        )
                    })?;
                // The leaves of what was delivered before: proofs of what
                // comes next reach back into them.
                let mut after = pruned;
                while after < d.delivered_seq {
                    let page = audit
                        .query(&AuditQuery {
                            organization_id: org.clone(),
                            after_seq: Some(after),
                            limit: Some((d.delivered_seq - after).min(5000)),
                            ..AuditQuery::default()
                        })
                        .await
                        .map_err(retry)?;
                    let Some(last) = page.last() else { break };
                    after = last.seq;
                    for e in &page {
                        tree.push(e.leaf());
                    }
                }
                let uploaded = client
                    .list(&format!("org/{org}/checkpoints/"))
                    .await?
                    .iter()
                    .filter_map(|k| {
                        k.rsplit('/')
                            .next()?
                            .strip_suffix(".json")?
                            .parse::<u64>()
                            .ok()
                    })
                    .max()
                    .unwrap_or(0);
                Ok(Sink::S3(S3State {
                    client,
                    organization: org.clone(),
                    tree,
                    checkpoints_uploaded: uploaded,
                }))
            }
        }
    }
}

/// An S3 destination's client and what delivery keeps between batches:
/// the Merkle tree of the log so far (for the lines' proofs) and the
/// largest checkpoint written.
struct S3State {
    client: S3,
    organization: String,
    tree: MerkleTree,
    checkpoints_uploaded: u64,
}

/// Prefixes are written `a/b/` (no leading slash, no `..`).
fn normalize_prefix(prefix: Option<&str>) -> Result<String, Error> {
    let Some(prefix) = prefix.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(String::new());
    };
    let trimmed = prefix.trim_matches('/');
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return Err(Error::invalid(format!(
            "prefix {prefix:?}: path segments of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// A destination's client.
enum Sink {
    Datadog(Datadog),
    S3(S3State),
}

/// What a delivery did: accepted through the last event, and events it
/// will never take (too old for Datadog) as (first, last, count).
struct Delivered {
    skipped: Option<(u64, u64, u64)>,
}

impl Sink {
    /// The last sequence number the next delivery after `cursor` may
    /// reach; `None`: nothing to deliver yet. S3 writes only events a
    /// checkpoint covers, each batch ending on one.
    async fn through(
        &self,
        app: &App,
        organization: &str,
        cursor: u64,
        batch: u64,
    ) -> Result<Option<u64>, DeliveryError> {
        match self {
            Sink::Datadog(_) => Ok(Some(cursor + batch)),
            Sink::S3(_) => {
                let checkpoints = app
                    .store()
                    .audit()
                    .checkpoints(organization)
                    .await
                    .map_err(|e| DeliveryError::Retry(e.to_string()))?;
                let sizes = checkpoints
                    .iter()
                    .map(|c| c.tree_size)
                    .filter(|s| *s > cursor);
                let within = sizes.clone().filter(|s| *s <= cursor + batch).max();
                Ok(within.or_else(|| sizes.min()))
            }
        }
    }

    async fn deliver(
        &mut self,
        app: &App,
        events: &[SealedEvent],
    ) -> Result<Delivered, DeliveryError> {
        match self {
            Sink::S3(state) => {
                let (Some(first), Some(last)) = (events.first(), events.last()) else {
                    return Ok(Delivered { skipped: None });
                };
                let org = state.organization.clone();
                let retry = |e: smithers_store::Error| DeliveryError::Retry(e.to_string());
                for e in events {
                    if e.seq as usize > state.tree.len() {
                        state.tree.push(e.leaf());
                    }
                }
                let retention = app
                    .store()
                    .organizations()
                    .log_retention(&org)
                    .await
                    .map_err(retry)?;
                // Locked until the newest event in the object is as old as
                // the organization keeps its logs; with no retention, as
                // the bucket's default retention says.
                let until = |micros: i64| {
                    retention.map(|secs| {
                        micros.saturating_add(
                            i64::try_from(secs)
                                .unwrap_or(i64::MAX)
                                .saturating_mul(1_000_000),
                        )
                    })
                };
                let retain_until = until(last.event.timestamp);
                let checkpoints = app.store().audit().checkpoints(&org).await.map_err(retry)?;
                let uploaded = state.checkpoints_uploaded;
                for c in checkpoints
                    .iter()
                    .filter(|c| c.tree_size > uploaded && c.tree_size <= last.seq)
                {
                    state
                        .client
                        .put(
                            &state
                                .client
                                .key(&org, &format!("checkpoints/{}.json", c.tree_size)),
                            s3::json_object(c)?,
                            until(c.timestamp.max(last.event.timestamp)),
                        )
                        .await?;
                    state.checkpoints_uploaded = c.tree_size;
                }
                let body = s3::events_object(events, &checkpoints, &state.tree)?;
                state
                    .client
                    .put(
                        &state.client.events_key(&org, first, last.seq),
                        body,
                        retain_until,
                    )
                    .await?;
                Ok(Delivered { skipped: None })
            }
            Sink::Datadog(client) => {
                let oldest = smithers_store::now_micros().saturating_sub(
                    i64::try_from(datadog::MAX_AGE.as_micros()).unwrap_or(i64::MAX),
                );
                // A margin of ten minutes: what arrives late is dropped
                // by the intake without a word.
                let cutoff = oldest.saturating_add(600_000_000);
                let (old, fresh): (Vec<&SealedEvent>, Vec<&SealedEvent>) =
                    events.iter().partition(|e| e.event.timestamp < cutoff);
                let entries: Vec<String> = fresh.iter().map(|e| client.entry(e)).collect();
                client.send(&entries).await?;
                Ok(Delivered {
                    skipped: match (old.first(), old.last()) {
                        (Some(first), Some(last)) => Some((first.seq, last.seq, old.len() as u64)),
                        _ => None,
                    },
                })
            }
        }
    }
}

/// A destination as the wire shows it, with the log's last sequence number.
fn dto(d: Destination, log_seq: u64) -> AuditDestination {
    AuditDestination {
        lag: log_seq.saturating_sub(d.delivered_seq),
        log_seq,
        id: d.id,
        kind: d.kind.as_str().to_string(),
        name: d.name,
        settings: d.config,
        delivered_seq: d.delivered_seq,
        last_success_at: d.last_success_at.map(Timestamp),
        last_error: d.last_error,
        last_error_at: d.last_error_at.map(Timestamp),
        last_gap: d.last_gap,
        stopped: d.stopped,
        created_by: d.created_by,
        created_at: Timestamp(d.created_at),
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), Error> {
    let url = url::Url::parse(endpoint)
        .map_err(|e| Error::invalid(format!("endpoint {endpoint:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        // A local proxy (or a test server) may speak plain HTTP; nothing
        // that leaves the machine may.
        "http" if loopback => {}
        _ => {
            return Err(Error::invalid(format!(
                "endpoint {endpoint:?}: an https URL (http only to this machine's loopback)"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(format!(
            "endpoint {endpoint:?}: credentials belong in the secret, not the URL"
        )));
    }
    Ok(())
}

/// Delivers every organization's log to its destinations until `stop`
/// resolves: one task per destination still delivering, started and
/// ended as destinations are added, stopped, tested and removed (looked
/// at every five seconds).
pub async fn deliver_destinations(
    app: Arc<App>,
    settings: DeliverySettings,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    tokio::pin!(stop);
    loop {
        match app.store().destinations().all().await {
            Ok(all) => {
                tasks.retain(|id, task| {
                    let wanted = all.iter().any(|d| &d.id == id && d.stopped.is_none());
                    if !wanted {
                        task.abort();
                    }
                    wanted && !task.is_finished()
                });
                for d in all {
                    if d.stopped.is_none() && !tasks.contains_key(&d.id) {
                        let app = app.clone();
                        let id = d.id.clone();
                        tasks.insert(
                            d.id.clone(),
                            tokio::spawn(async move { deliver_one(&app, d, settings).await }),
                        );
                        tracing::debug!(destination = %id, "delivering to an audit destination");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit destinations cannot be read"),
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    for task in tasks.into_values() {
        task.abort();
    }
}

/// Delivers to one destination until it is removed or stops.
async fn deliver_one(app: &App, destination: Destination, settings: DeliverySettings) {
    let service = AuditDestinationsService { app };
    let destinations = app.store().destinations();
    let org = destination.organization_id.clone();
    let id = destination.id.clone();
    let failed = |e: DeliveryError| async {
        let (why, stop) = match e {
            DeliveryError::Retry(why) => (why, false),
            DeliveryError::Stop(why) => (why, true),
        };
        tracing::warn!(destination = %id, error = %why, stop, "audit delivery failed");
        if let Err(e) = destinations.failed(&id, &why, stop).await {
            tracing::warn!(destination = %id, error = %e, "the failure cannot be recorded");
        }
        stop
    };
    let mut sink = match service.connect(&destination).await {
        Ok(sink) => sink,
        Err(e) => {
            if !failed(e).await {
                // Connecting again is the supervisor's, after a wait.
                tokio::time::sleep(settings.max_backoff.min(Duration::from_secs(30))).await;
            }
            return;
        }
    };
    // A gap is recorded before the cursor passes it, or not passed.
    let (org_ref, id_ref, destinations_ref) = (&org, &id, &destinations);
    let gap = move |from: u64, through: u64, count: u64, reason: &'static str| async move {
        destinations_ref
            .record_gap(app.signer(), org_ref, id_ref, from, through, count, reason)
            .await
            .map_err(|e| DeliveryError::Retry(format!("the gap cannot be recorded: {e}")))
    };
    let mut backoff = settings.poll;
    // A batch that failed to go is sent again as it is (only this task
    // moves the cursor): an outage costs a request per attempt, not a
    // read of the log.
    let mut unsent: Option<Vec<SealedEvent>> = None;
    loop {
        let current = match destinations.get(&org, &id).await {
            Ok(d) if d.removed_at.is_none() && d.stopped.is_none() => d,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(destination = %id, error = %e, "cannot read the destination");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let retry = unsent
            .take()
            .filter(|batch| batch.first().map(|e| e.seq) == Some(current.delivered_seq + 1));
        let through = match &retry {
            Some(batch) => batch.last().map_or(current.delivered_seq, |e| e.seq),
            None => match sink
                .through(app, &org, current.delivered_seq, settings.batch)
                .await
            {
                Ok(Some(through)) => through,
                Ok(None) => {
                    tokio::time::sleep(settings.poll).await;
                    continue;
                }
                Err(e) => {
                    failed(e).await;
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
        };
        let events = match retry {
            Some(batch) => Ok(batch),
            None => {
                app.store()
                    .audit()
                    .query(&AuditQuery {
                        organization_id: org.clone(),
                        after_seq: Some(current.delivered_seq),
                        limit: Some(through.saturating_sub(current.delivered_seq)),
                        ..AuditQuery::default()
                    })
                    .await
            }
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(destination = %id, error = %e, "cannot read the audit log");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            tokio::time::sleep(settings.poll).await;
            continue;
        };
        let (first, last) = (first.seq, last.seq);
        if first > current.delivered_seq + 1 {
            // Pruned by retention before it was delivered (possible only
            // while the destination was stopped): said once, then on.
            let (from, through) = (current.delivered_seq + 1, first - 1);
            let reason = "dropped by retention while the destination was stopped";
            if let Err(e) = gap(from, through, through - from + 1, reason).await {
                failed(e).await;
                tokio::time::sleep(backoff).await;
                continue;
            }
        }
        match sink.deliver(app, &events).await {
            Ok(delivered) => {
                backoff = settings.poll;
                if let Some((from, through, count)) = delivered.skipped {
                    let reason = "older than Datadog's intake takes (18 hours): recoverable from S3 or `smithers audit export`";
                    if let Err(e) = gap(from, through, count, reason).await {
                        failed(e).await;
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                }
                if let Err(e) = destinations.advance(&id, last).await {
                    tracing::warn!(destination = %id, error = %e, "the cursor cannot move");
                }
            }
            Err(e) => {
                if failed(e).await {
                    return;
                }
                unsent = Some(events);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(settings.max_backoff);
            }
        }
    }
}
