//! Verification of a whole log: chain, sequence, Merkle roots and
//! checkpoint signatures, stopping at the first bad sequence number.

use std::fmt;

use ed25519_dalek::VerifyingKey;

use crate::chain::{GENESIS, chain_hash};
use crate::merkle::Accumulator;
use crate::{Checkpoint, Hash, PRUNED_ACTION, PruneBase, SealedEvent};

/// What is wrong at the first bad sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Events are missing: the next one present has this number.
    Gap { found: u64 },
    /// This number was already seen, or comes after a later one.
    OutOfOrder,
    /// The event names another organization.
    WrongOrganization { found: String },
    /// `prev_hash` is not the previous event's hash: an event was removed,
    /// inserted or moved before this one.
    ChainBroken,
    /// The event's content does not give its stored hash: it was changed.
    HashMismatch,
    /// A checkpoint's signature does not verify with any trusted key.
    BadSignature { tree_size: u64 },
    /// The log up to here does not give the root a checkpoint signed.
    RootMismatch { tree_size: u64 },
    /// The chain head here is not the one a checkpoint signed.
    HeadMismatch { tree_size: u64 },
    /// A checkpoint covers more events than the log holds: its tail is gone.
    Truncated { tree_size: u64, events: u64 },
    /// A checkpoint belongs to another organization.
    CheckpointOrganization { found: String },
    /// The stored row cannot even be read back as an event.
    Unreadable { detail: String },
    /// The prune base the log starts from is not one Smithers signed, or
    /// its Merkle range does not give its signed root.
    BadPruneBase { tree_size: u64, detail: String },
    /// The log starts from a prune base that no `audit.pruned` event after
    /// it records: a prefix was dropped without saying so.
    PruneUnrecorded { tree_size: u64 },
    /// An event numbered at or below the prune base is in the log: the
    /// prune deleted them all, so it was put there afterwards.
    BelowPruneBase { tree_size: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Gap { found } => write!(f, "gap: the event is missing (next present is {found})"),
            Problem::OutOfOrder => f.write_str("reordering: sequence number repeated or out of order"),
            Problem::WrongOrganization { found } => write!(f, "the event belongs to organization {found:?}"),
            Problem::ChainBroken => f.write_str(
                "chain broken: prev_hash is not the previous event's hash (an event was removed, inserted or reordered)",
            ),
            Problem::HashMismatch => f.write_str("hash mismatch: the event's content was changed"),
            Problem::BadSignature { tree_size } => {
                write!(f, "bad signature on the checkpoint at size {tree_size}")
            }
            Problem::RootMismatch { tree_size } => {
                write!(f, "the Merkle root differs from the checkpoint signed at size {tree_size}")
            }
            Problem::HeadMismatch { tree_size } => {
                write!(f, "the chain head differs from the checkpoint signed at size {tree_size}")
            }
            Problem::Truncated { tree_size, events } => write!(
                f,
                "truncated: a checkpoint covers {tree_size} events but the log holds {events}"
            ),
            Problem::CheckpointOrganization { found } => {
                write!(f, "a checkpoint belongs to organization {found:?}")
            }
            Problem::Unreadable { detail } => write!(f, "the stored row is unreadable: {detail}"),
            Problem::BadPruneBase { tree_size, detail } => {
                write!(f, "the prune base at size {tree_size} is not valid: {detail}")
            }
            Problem::BelowPruneBase { tree_size } => write!(
                f,
                "an event numbered at or below the prune base ({tree_size}) is in the log: it was added after the prune"
            ),
            Problem::PruneUnrecorded { tree_size } => write!(
                f,
                "events up to {tree_size} are gone behind a prune base that no audit.pruned event records"
            ),
        }
    }
}

/// The first thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seq: u64,
    pub problem: Problem,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sequence {}: {}", self.seq, self.problem)
    }
}

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The log's size: its last sequence number.
    pub events: u64,
    /// Events dropped by retention behind the prune base the check started
    /// from (0: none); `events - pruned` were checked one by one.
    pub pruned: u64,
    pub checkpoints: u64,
    pub head: Hash,
    pub root: Hash,
}

/// Verifies one organization's log event by event, in the order the store
/// returns them (by sequence number), so a log of any length is checked in
/// constant memory.
pub struct LogVerifier<'c> {
    organization_id: String,
    pending: std::iter::Peekable<std::vec::IntoIter<&'c Checkpoint>>,
    checkpoints: u64,
    accumulator: Accumulator,
    head: Hash,
    expected: u64,
    scratch: Vec<u8>,
    /// The prune base started from, until an `audit.pruned` event records it.
    unrecorded_base: Option<Checkpoint>,
    pruned: u64,
}

impl<'c> LogVerifier<'c> {
    /// Checks every checkpoint's organization and signature up front: each
    /// must be signed by one of `trusted_keys`.
    pub fn new(
        organization_id: &str,
        checkpoints: &'c [Checkpoint],
        trusted_keys: &[VerifyingKey],
    ) -> Result<LogVerifier<'c>, Failure> {
        let mut pending: Vec<&Checkpoint> =
            checkpoints.iter().filter(|c| c.tree_size > 0).collect();
        pending.sort_by_key(|c| c.tree_size);
        for c in &pending {
            if c.organization_id != organization_id {
                return Err(Failure {
                    seq: c.tree_size,
                    problem: Problem::CheckpointOrganization {
                        found: c.organization_id.clone(),
                    },
                });
            }
            if !trusted_keys.iter().any(|k| c.signature_is_valid(k)) {
                return Err(Failure {
                    seq: c.tree_size,
                    problem: Problem::BadSignature {
                        tree_size: c.tree_size,
                    },
                });
            }
        }
        Ok(LogVerifier {
            organization_id: organization_id.to_string(),
            checkpoints: pending.len() as u64,
            pending: pending.into_iter().peekable(),
            accumulator: Accumulator::new(),
            head: GENESIS,
            expected: 1,
            scratch: Vec::with_capacity(512),
            unrecorded_base: None,
            pruned: 0,
        })
    }

    /// A verifier of a log pruned behind `base`: the base must be signed as
    /// a prune base by one of `trusted_keys` and its Merkle range must give
    /// its signed root; the log then continues from its size and chain
    /// head, checkpoints it covers are passed over (their events are gone),
    /// and an `audit.pruned` event after it must record it.
    pub fn from_base(
        organization_id: &str,
        base: &PruneBase,
        checkpoints: &'c [Checkpoint],
        trusted_keys: &[VerifyingKey],
    ) -> Result<LogVerifier<'c>, Failure> {
        let size = base.checkpoint.tree_size;
        let bad = |detail: &str| Failure {
            seq: size,
            problem: Problem::BadPruneBase {
                tree_size: size,
                detail: detail.to_string(),
            },
        };
        if base.checkpoint.organization_id != organization_id {
            return Err(Failure {
                seq: size,
                problem: Problem::CheckpointOrganization {
                    found: base.checkpoint.organization_id.clone(),
                },
            });
        }
        if !trusted_keys.iter().any(|k| base.signature_is_valid(k)) {
            return Err(bad("its signature does not verify with any trusted key"));
        }
        let Some(accumulator) = base.accumulator() else {
            return Err(bad("its Merkle range does not give the root it signed"));
        };
        let mut verifier = LogVerifier::new(organization_id, checkpoints, trusted_keys)?;
        while verifier.pending.next_if(|c| c.tree_size <= size).is_some() {
            verifier.checkpoints -= 1;
        }
        verifier.accumulator = accumulator;
        verifier.head = base.checkpoint.chain_head;
        verifier.expected = size + 1;
        verifier.unrecorded_base = Some(base.checkpoint.clone());
        verifier.pruned = size;
        Ok(verifier)
    }

    /// Where the log checked so far stands: its size and Merkle
    /// accumulator, and its chain head.
    pub fn position(&self) -> (&Accumulator, Hash) {
        (&self.accumulator, self.head)
    }

    /// Checks the next event.
    pub fn push(&mut self, sealed: &SealedEvent) -> Result<(), Failure> {
        let expected = self.expected;
        let fail = |problem| Failure {
            seq: expected,
            problem,
        };
        if sealed.seq > expected {
            return Err(fail(Problem::Gap { found: sealed.seq }));
        }
        if sealed.seq < expected {
            return Err(Failure {
                seq: sealed.seq,
                problem: Problem::OutOfOrder,
            });
        }
        if sealed.event.organization_id != self.organization_id {
            return Err(fail(Problem::WrongOrganization {
                found: sealed.event.organization_id.clone(),
            }));
        }
        if sealed.prev_hash != self.head {
            return Err(fail(Problem::ChainBroken));
        }
        let leaf = sealed.leaf_with(&mut self.scratch);
        if chain_hash(&self.head, &leaf) != sealed.hash {
            return Err(fail(Problem::HashMismatch));
        }
        self.head = sealed.hash;
        self.accumulator.push(leaf);
        if let Some(base) = &self.unrecorded_base
            && sealed.event.action == PRUNED_ACTION
            && sealed.event.details["through"] == base.tree_size
            && sealed.event.details["root"] == hex::encode(base.root)
        {
            self.unrecorded_base = None;
        }
        while let Some(c) = self.pending.next_if(|c| c.tree_size == expected) {
            if self.accumulator.root() != c.root {
                return Err(fail(Problem::RootMismatch {
                    tree_size: c.tree_size,
                }));
            }
            if self.head != c.chain_head {
                return Err(fail(Problem::HeadMismatch {
                    tree_size: c.tree_size,
                }));
            }
        }
        self.expected += 1;
        Ok(())
    }

    /// Ends the log: a checkpoint beyond its last event means its tail is gone.
    pub fn finish(mut self) -> Result<Report, Failure> {
        let events = self.expected - 1;
        if let Some(c) = self.pending.next() {
            return Err(Failure {
                seq: events + 1,
                problem: Problem::Truncated {
                    tree_size: c.tree_size,
                    events,
                },
            });
        }
        if let Some(base) = self.unrecorded_base {
            return Err(Failure {
                seq: base.tree_size,
                problem: Problem::PruneUnrecorded {
                    tree_size: base.tree_size,
                },
            });
        }
        Ok(Report {
            events,
            pruned: self.pruned,
            checkpoints: self.checkpoints,
            head: self.head,
            root: self.accumulator.root(),
        })
    }
}

/// Verifies a whole log held in memory; see [`LogVerifier`].
pub fn verify_log(
    organization_id: &str,
    events: impl IntoIterator<Item = SealedEvent>,
    checkpoints: &[Checkpoint],
    trusted_keys: &[VerifyingKey],
) -> Result<Report, Failure> {
    let mut verifier = LogVerifier::new(organization_id, checkpoints, trusted_keys)?;
    for sealed in events {
        verifier.push(&sealed)?;
    }
    verifier.finish()
}
