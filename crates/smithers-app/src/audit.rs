//! The audit log: events, verification, proofs, export and delivery,
//! behind the authorization table.
//!
//! Reading an organization's log, its proofs and its verification is an
//! admin's ([`Operation::AuditRead`]); delivering it to NATS too
//! ([`Operation::AuditPublish`]). The public key that verifies checkpoints
//! is public. Inclusion proofs are RFC 6962's audit paths (RFC 9162
//! section 2.1.3) in the Merkle tree of the organization's leaves.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use smithers_api::{
    AuditActorType, AuditCheckpoint, AuditDelivery, AuditEvent, AuditExportLine, AuditProof,
    AuditPublicKey, AuditVerification, Error, InclusionProof, LogVerification, Page, Timestamp,
};
use smithers_audit::merkle::{MerkleTree, verify_inclusion};
use smithers_audit::{ActorType, Checkpoint, Hash, SealedEvent};
use smithers_store::AuditQuery;
use tokio::sync::watch;

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// Events read from the store per round when a whole log is walked.
const PAGE: u64 = 10_000;

/// The most events one page of [`AuditService::log_page`] holds.
pub const AUDIT_PAGE_LIMIT: u64 = 1000;

/// How long [`AuditService::publish`] waits for NATS.
const PUBLISH_WAIT: Duration = Duration::from_secs(30);

/// How often [`AuditService::follow`] looks for new events when there is
/// nothing to send.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

impl App {
    /// The audit log.
    pub fn audit(&self) -> AuditService<'_> {
        AuditService { app: self }
    }
}

/// Reads, verifies, proves, exports and delivers the audit log. Obtained
/// from [`App::audit`].
pub struct AuditService<'a> {
    app: &'a App,
}

/// Which events [`AuditService::log`] returns; every condition given must
/// hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this action (e.g. `capability_check`).
    pub action: Option<String>,
    /// Only this actor id.
    pub actor: Option<String>,
    /// Only events at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many events (the oldest that match).
    pub limit: Option<u64>,
}

/// An inclusion proof of one event, and whether it holds: the checkpoint's
/// signature verifies with the application's key and the audit path
/// reaches the root it signed. `problem` says what does not hold; the
/// proof is returned either way, for a front end to show.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedProof {
    /// The event, its leaf and its audit path to the checkpoint's root.
    pub proof: AuditProof,
    /// `None` when the proof holds.
    pub problem: Option<String>,
}

impl<'a> AuditService<'a> {
    /// The key that verifies this installation's checkpoints (the signing
    /// key's public half). Public: it needs no principal.
    pub fn public_key(&self) -> AuditPublicKey {
        let signer = self.app.signer();
        AuditPublicKey {
            key_id: signer.key_id().to_string(),
            algorithm: "ed25519".to_string(),
            public_key: hex::encode(signer.verifying_key().as_bytes()),
        }
    }

    /// The principal's organization's events matching `filter`, oldest
    /// first.
    ///
    /// Errors: `forbidden` unless the principal is an admin; the store's
    /// (`unavailable`, `internal` for a row that cannot be read).
    pub async fn log(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let events = self
            .app
            .store()
            .audit()
            .query(&AuditQuery {
                organization_id: org.clone(),
                action: filter.action.clone(),
                actor_id: filter.actor.clone(),
                since: filter.since.map(|t| t.0),
                after_seq: None,
                limit: filter.limit,
            })
            .await
            .map_err(store_error)?;
        Ok(events.iter().map(audit_event_dto).collect())
    }

    /// One page of the principal's organization's events matching
    /// `filter`, oldest first, after `cursor` (the `next` of the page
    /// before), and the cursor of the next page. `filter.limit` is the
    /// page's size (50 unless given, at most [`AUDIT_PAGE_LIMIT`]). The
    /// cursor is the last event's sequence number, so events appended
    /// meanwhile never shift the pages: each event is on exactly one.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `invalid` for
    /// a cursor this list did not give; the store's.
    pub async fn log_page(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let after = cursor.map(decode_seq_cursor).transpose()?;
        let limit = filter.limit.unwrap_or(50).clamp(1, AUDIT_PAGE_LIMIT);
        let mut events = self
            .app
            .store()
            .audit()
            .query(&AuditQuery {
                organization_id: org.clone(),
                action: filter.action.clone(),
                actor_id: filter.actor.clone(),
                since: filter.since.map(|t| t.0),
                after_seq: after,
                // One more than asked tells whether there is a next page.
                limit: Some(limit + 1),
            })
            .await
            .map_err(store_error)?;
        let next = if events.len() as u64 > limit {
            events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            events.last().map(|e| encode_seq_cursor(e.seq))
        } else {
            None
        };
        Ok(Page {
            items: events.iter().map(audit_event_dto).collect(),
            next,
        })
    }

    /// Verifies the principal's organization's log: its hash chain, the
    /// Merkle root at every checkpoint and every checkpoint's signature,
    /// read a page at a time. Checkpoints are trusted when signed by the
    /// application's key or one of `trusted_keys` (64 hex digits each, an
    /// Ed25519 public key: an older key, from before a rotation).
    ///
    /// A tampered log is a finding, not an error: the report says
    /// `intact: false` and names the first bad sequence number.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `invalid` for
    /// a trusted key that is not an Ed25519 public key in hex; the
    /// store's.
    pub async fn verify(
        &self,
        principal: &Principal,
        trusted_keys: &[String],
    ) -> Result<AuditVerification, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let keys = self.trusted_keys(trusted_keys)?;
        self.verify_organizations(std::slice::from_ref(org), &keys)
            .await
    }

    /// Verifies every organization that has an audit log, as
    /// [`AuditService::verify`] does one, in the order of their names.
    ///
    /// The principal must be an admin of every one of them: all are
    /// authorized before any is verified, so a refusal reports nothing.
    /// A principal belongs to one organization, so on an installation
    /// where another organization has a log this is refused: verify each
    /// organization as one of its admins instead.
    ///
    /// Errors: `forbidden` when the principal is not an admin of its own
    /// organization, or of another organization with a log (naming it);
    /// `invalid` for a bad trusted key; the store's.
    pub async fn verify_all(
        &self,
        principal: &Principal,
        trusted_keys: &[String],
    ) -> Result<AuditVerification, Error> {
        authorize(principal, &principal.organization, Operation::AuditRead)?;
        let keys = self.trusted_keys(trusted_keys)?;
        let orgs = self
            .app
            .store()
            .audit()
            .organizations()
            .await
            .map_err(store_error)?;
        for org in &orgs {
            authorize(principal, org, Operation::AuditRead)?;
        }
        self.verify_organizations(&orgs, &keys).await
    }

    /// The inclusion proof of event `seq` of the principal's organization
    /// in the tree of the first checkpoint that covers it, checked against
    /// the application's key ([`CheckedProof`]).
    ///
    /// Errors: `forbidden` unless the principal is an admin; `not_found`
    /// when the log has no event `seq`, or no checkpoint covers it yet;
    /// `internal` when the log has a gap (`verify` tells more); the
    /// store's.
    pub async fn prove(&self, principal: &Principal, seq: u64) -> Result<CheckedProof, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        let checkpoints = self.checkpoints(org).await?;
        let (leaves, event) = self.leaves(org, Some(seq)).await?;
        let Some(event) = event else {
            return Err(Error::not_found(if seq <= leaves.pruned {
                format!(
                    "event {seq} of {org} was dropped by retention (the log keeps {} on)",
                    leaves.pruned + 1
                )
            } else {
                format!(
                    "the log of {org} has no event {seq} (it holds {})",
                    leaves.end()
                )
            }));
        };
        let tree = merkle_tree(leaves).await?;
        let Some((checkpoint, path)) = covering_proof(&tree, &checkpoints, seq) else {
            let config = smithers_store::AuditLogConfig::default();
            return Err(Error::not_found(format!(
                "no checkpoint covers event {seq} yet; one is signed every {} events or {} seconds while the log is written",
                config.checkpoint_every,
                config.checkpoint_interval.as_secs()
            )));
        };
        let leaf = event.leaf();
        let signed = checkpoint.signature_is_valid(&self.app.signer().verifying_key());
        let included = verify_inclusion(
            &leaf,
            seq - 1,
            checkpoint.tree_size,
            &path,
            &checkpoint.root,
        );
        let problem = if !signed {
            Some("the checkpoint's signature is not valid".to_string())
        } else if !included {
            Some("the inclusion proof does not reach the signed root".to_string())
        } else {
            None
        };
        Ok(CheckedProof {
            proof: AuditProof {
                proof: proof_dto(checkpoint, seq, &path),
                seq,
                leaf: hex::encode(leaf),
                event: audit_event_dto(&event),
            },
            problem,
        })
    }

    /// The principal's organization's log from sequence number `since` on,
    /// each event with its leaf and its inclusion proof in the first
    /// checkpoint covering it, as pages of lines ([`AuditExport`]). The
    /// leaves of the whole log are held (32 bytes an event), the events a
    /// page at a time. Events appended after the export began are left
    /// out.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `internal`
    /// when the log has a gap; the store's.
    pub async fn export(
        &self,
        principal: &Principal,
        since: u64,
    ) -> Result<AuditExport<'a>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::AuditRead)?;
        // Checkpoints first: every one then covers events the leaves read
        // next include.
        let checkpoints = self.checkpoints(org).await?;
        let (leaves, _) = self.leaves(org, None).await?;
        let end = leaves.end();
        let first = leaves.pruned + 1;
        let tree = merkle_tree(leaves).await?;
        Ok(AuditExport {
            app: self.app,
            organization: org.clone(),
            tree,
            checkpoints,
            after: since.max(first).saturating_sub(1),
            end,
        })
    }

    /// Delivers the committed events NATS JetStream has not acknowledged
    /// yet to the stream `AUDIT` at `nats_url`, waiting at most 30
    /// seconds. The delivery queue is the installation's, so every
    /// organization's pending events go.
    ///
    /// Errors: `forbidden` unless the principal is an admin;
    /// `unavailable` when NATS cannot be reached or does not answer in
    /// time (the events stay queued).
    pub async fn publish(
        &self,
        principal: &Principal,
        nats_url: &str,
    ) -> Result<AuditDelivery, Error> {
        authorize(principal, &principal.organization, Operation::AuditPublish)?;
        let delivery = async {
            let publisher =
                smithers_store::AuditPublisher::connect(self.app.store().clone(), nats_url).await?;
            publisher.ensure_stream().await?;
            publisher.publish_pending().await
        };
        let delivered = tokio::time::timeout(PUBLISH_WAIT, delivery)
            .await
            .map_err(|_| {
                Error::unavailable(format!(
                    "NATS did not answer within {} seconds; the events stay queued",
                    PUBLISH_WAIT.as_secs()
                ))
            })?
            .map_err(store_error)?;
        Ok(AuditDelivery {
            delivered,
            stream: smithers_store::AUDIT_STREAM.to_string(),
        })
    }

    /// Keeps delivering events to NATS as [`AuditService::publish`] does,
    /// as they are committed, until `stop` turns true; while NATS is
    /// unreachable it retries, backing off (logged, not returned).
    ///
    /// Errors: `forbidden` unless the principal is an admin; `invalid` or
    /// `unavailable` when the client cannot be made for `nats_url`.
    pub async fn follow(
        &self,
        principal: &Principal,
        nats_url: &str,
        stop: watch::Receiver<bool>,
    ) -> Result<(), Error> {
        authorize(principal, &principal.organization, Operation::AuditPublish)?;
        let publisher = smithers_store::AuditPublisher::connect(self.app.store().clone(), nats_url)
            .await
            .map_err(store_error)?;
        publisher.run(FOLLOW_POLL, stop).await;
        Ok(())
    }

    /// The application's key and `extra`, parsed.
    fn trusted_keys(&self, extra: &[String]) -> Result<Vec<VerifyingKey>, Error> {
        let mut keys = vec![self.app.signer().verifying_key()];
        for text in extra {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
                Error::invalid(format!(
                    "the trusted key {text:?} is not 64 hex digits (an Ed25519 public key)"
                ))
            })?;
            keys.push(VerifyingKey::from_bytes(&bytes).map_err(|_| {
                Error::invalid(format!("the trusted key {text:?} is not an Ed25519 key"))
            })?);
        }
        Ok(keys)
    }

    async fn verify_organizations(
        &self,
        orgs: &[String],
        keys: &[VerifyingKey],
    ) -> Result<AuditVerification, Error> {
        let mut organizations = Vec::with_capacity(orgs.len());
        for org in orgs {
            let outcome = self
                .app
                .store()
                .audit()
                .verify(org, keys)
                .await
                .map_err(store_error)?;
            organizations.push(match outcome {
                Ok(report) => LogVerification {
                    organization: org.clone(),
                    intact: true,
                    events: Some(report.events),
                    pruned: (report.pruned > 0).then_some(report.pruned),
                    checkpoints: Some(report.checkpoints),
                    root: Some(hex::encode(report.root)),
                    seq: None,
                    problem: None,
                },
                Err(failure) => LogVerification {
                    organization: org.clone(),
                    intact: false,
                    events: None,
                    pruned: None,
                    checkpoints: None,
                    root: None,
                    seq: Some(failure.seq),
                    problem: Some(failure.problem.to_string()),
                },
            });
        }
        Ok(AuditVerification {
            intact: organizations.iter().all(|o| o.intact),
            organizations,
        })
    }

    async fn checkpoints(&self, org: &str) -> Result<Vec<Checkpoint>, Error> {
        self.app
            .store()
            .audit()
            .checkpoints(org)
            .await
            .map_err(store_error)
    }

    /// The leaf of every event of `org`'s log, read a page at a time, and
    /// the event numbered `wanted` when there is one.
    ///
    /// Errors: `internal` when the numbering has a gap.
    async fn leaves(
        &self,
        org: &str,
        wanted: Option<u64>,
    ) -> Result<(Leaves, Option<SealedEvent>), Error> {
        // After a prune the log starts past its base, whose compact Merkle
        // range stands for the events it dropped.
        let base = self
            .app
            .store()
            .audit()
            .prune_base(org)
            .await
            .map_err(store_error)?;
        let pruned = base.as_ref().map_or(0, |b| b.checkpoint.tree_size);
        let mut leaves = Vec::new();
        let mut found = None;
        let mut scratch = Vec::with_capacity(512);
        loop {
            let page = self.page(org, pruned + leaves.len() as u64).await?;
            if page.is_empty() {
                break;
            }
            for event in page {
                let expected = pruned + leaves.len() as u64 + 1;
                if event.seq != expected {
                    return Err(gap(org, expected));
                }
                leaves.push(event.leaf_with(&mut scratch));
                if wanted == Some(event.seq) {
                    found = Some(event);
                }
            }
        }
        Ok((
            Leaves {
                pruned,
                frontier: base.map(|b| b.frontier).unwrap_or_default(),
                leaves,
            },
            found,
        ))
    }

    /// Up to [`PAGE`] events of `org` after sequence number `after`.
    async fn page(&self, org: &str, after: u64) -> Result<Vec<SealedEvent>, Error> {
        self.app
            .store()
            .audit()
            .query(&AuditQuery {
                organization_id: org.to_string(),
                after_seq: Some(after),
                limit: Some(PAGE),
                ..AuditQuery::default()
            })
            .await
            .map_err(store_error)
    }
}

/// An export under way: [`AuditExport::next_page`] returns its lines a
/// page at a time. Obtained from [`AuditService::export`].
pub struct AuditExport<'a> {
    app: &'a App,
    organization: String,
    tree: MerkleTree,
    checkpoints: Vec<Checkpoint>,
    /// The last sequence number returned.
    after: u64,
    /// The last sequence number the tree holds.
    end: u64,
}

impl AuditExport<'_> {
    /// The next lines, oldest first, or `None` when every event has been
    /// returned.
    ///
    /// Errors: `internal` when the log has a gap; the store's.
    pub async fn next_page(&mut self) -> Result<Option<Vec<AuditExportLine>>, Error> {
        if self.after >= self.end {
            return Ok(None);
        }
        let service = AuditService { app: self.app };
        let page = service.page(&self.organization, self.after).await?;
        let mut lines = Vec::with_capacity(page.len());
        for event in page.iter().take_while(|e| e.seq <= self.end) {
            let expected = self.after + 1;
            if event.seq != expected {
                return Err(gap(&self.organization, expected));
            }
            self.after = event.seq;
            let leaf = usize::try_from(event.seq - 1)
                .ok()
                .and_then(|i| self.tree.leaf(i));
            let proof = covering_proof(&self.tree, &self.checkpoints, event.seq)
                .map(|(checkpoint, path)| proof_dto(checkpoint, event.seq, &path));
            lines.push(AuditExportLine {
                event: audit_event_dto(event),
                leaf: leaf.map(hex::encode),
                proof,
            });
        }
        if lines.is_empty() {
            // The log ended before the tree did: rows went away meanwhile.
            return Err(gap(&self.organization, self.after + 1));
        }
        Ok(Some(lines))
    }
}

/// An event list's cursor: the last event's sequence number, base64url,
/// so that a client treats it as opaque.
fn encode_seq_cursor(seq: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq.{seq}"))
}

fn decode_seq_cursor(cursor: &str) -> Result<u64, Error> {
    use base64::Engine as _;
    let bad = || Error::invalid(format!("cursor {cursor:?} is not one this list gave"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("seq.")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

fn gap(org: &str, seq: u64) -> Error {
    Error::internal(format!(
        "the log of {org} has a gap at sequence {seq}: run `smithers audit verify`"
    ))
}

/// An organization's leaves as the store holds them: those of the events
/// kept, after the `pruned` ones known only by their compact range.
struct Leaves {
    pruned: u64,
    frontier: Vec<Hash>,
    leaves: Vec<Hash>,
}

impl Leaves {
    /// The log's last sequence number.
    fn end(&self) -> u64 {
        self.pruned + self.leaves.len() as u64
    }
}

/// The Merkle tree of `leaves`, built off the async workers (it hashes
/// the whole log).
async fn merkle_tree(leaves: Leaves) -> Result<MerkleTree, Error> {
    tokio::task::spawn_blocking(move || {
        MerkleTree::after_prefix(leaves.pruned, &leaves.frontier, leaves.leaves)
    })
    .await
    .map_err(|e| Error::internal(format!("building the Merkle tree stopped: {e}")))?
    .ok_or_else(|| {
        Error::internal(
            "the prune base's Merkle range does not fit its size: run `smithers audit verify`",
        )
    })
}

/// The first checkpoint covering event `seq`, and the inclusion proof of
/// the event in the tree that checkpoint signed (RFC 9162 section
/// 2.1.3.1's PATH). `None` when no checkpoint covers it, or the tree does
/// not hold the leaves the checkpoint covers.
fn covering_proof<'c>(
    tree: &MerkleTree,
    checkpoints: &'c [Checkpoint],
    seq: u64,
) -> Option<(&'c Checkpoint, Vec<Hash>)> {
    let checkpoint = checkpoints.iter().find(|c| c.tree_size >= seq)?;
    let size = usize::try_from(checkpoint.tree_size).ok()?;
    let proof = tree.proof(usize::try_from(seq.checked_sub(1)?).ok()?, size)?;
    Some((checkpoint, proof))
}

fn proof_dto(checkpoint: &Checkpoint, seq: u64, path: &[Hash]) -> InclusionProof {
    InclusionProof {
        tree_size: checkpoint.tree_size,
        leaf_index: seq.saturating_sub(1),
        inclusion: path.iter().map(hex::encode).collect(),
        checkpoint: checkpoint_dto(checkpoint),
    }
}

fn checkpoint_dto(c: &Checkpoint) -> AuditCheckpoint {
    AuditCheckpoint {
        organization_id: c.organization_id.clone(),
        tree_size: c.tree_size,
        root: hex::encode(c.root),
        chain_head: hex::encode(c.chain_head),
        timestamp: c.timestamp,
        key_id: c.key_id.clone(),
        signature: hex::encode(c.signature),
    }
}

/// A sealed event of the store as the wire shows it.
pub fn audit_event_dto(e: &SealedEvent) -> AuditEvent {
    AuditEvent {
        seq: e.seq,
        id: e.event.id.to_string(),
        organization_id: e.event.organization_id.clone(),
        actor_type: match e.event.actor_type {
            ActorType::User => AuditActorType::User,
            ActorType::Agent => AuditActorType::Agent,
            ActorType::System => AuditActorType::System,
            ActorType::Webhook => AuditActorType::Webhook,
        },
        actor_id: e.event.actor_id.clone(),
        action: e.event.action.clone(),
        resource_type: e.event.resource_type.clone(),
        resource_id: e.event.resource_id.clone(),
        details: e.event.details.clone(),
        ip_address: e.event.ip_address.map(|ip| ip.to_string()),
        timestamp: e.event.timestamp,
        time: Timestamp(e.event.timestamp),
        prev_hash: hex::encode(e.prev_hash),
        hash: hex::encode(e.hash),
    }
}
