//! The hash chain: each event's place in its organization's log.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::leaf_hash;
use crate::{AuditEvent, Error, Hash};

/// The chain hash before the first event.
pub const GENESIS: Hash = [0; 32];

/// An event with its place in the log: gap-free `seq` from 1, the previous
/// event's chain hash, and its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedEvent {
    pub seq: u64,
    pub event: AuditEvent,
    #[serde(with = "hex::serde")]
    pub prev_hash: Hash,
    #[serde(with = "hex::serde")]
    pub hash: Hash,
}

impl SealedEvent {
    /// The RFC 6962 leaf hash of this event at this position.
    pub fn leaf(&self) -> Hash {
        self.leaf_with(&mut Vec::with_capacity(320))
    }

    /// [`SealedEvent::leaf`] with a buffer the caller reuses.
    pub fn leaf_with(&self, scratch: &mut Vec<u8>) -> Hash {
        self.event.write_canonical(self.seq, scratch);
        leaf_hash(scratch)
    }
}

/// SHA-256(prev ‖ leaf).
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(leaf);
    h.finalize().into()
}

/// The head of one organization's chain, from which the next event is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChain {
    organization_id: String,
    /// Sequence number of the last sealed event (0: none yet).
    last_seq: u64,
    head: Hash,
}

impl AuditChain {
    /// A chain with no events yet.
    pub fn new(organization_id: &str) -> AuditChain {
        AuditChain::resume(organization_id, 0, GENESIS)
    }

    /// A chain whose last event is `last_seq` with chain hash `head`.
    pub fn resume(organization_id: &str, last_seq: u64, head: Hash) -> AuditChain {
        AuditChain {
            organization_id: organization_id.to_string(),
            last_seq,
            head,
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn head(&self) -> Hash {
        self.head
    }

    /// Gives `event` the next place in the chain. Nothing changes on error.
    pub fn seal(&mut self, event: AuditEvent) -> Result<SealedEvent, Error> {
        self.seal_with_leaf(event).map(|(sealed, _)| sealed)
    }

    /// [`AuditChain::seal`], also returning the event's leaf hash.
    pub fn seal_with_leaf(&mut self, event: AuditEvent) -> Result<(SealedEvent, Hash), Error> {
        if event.organization_id != self.organization_id {
            return Err(Error::InvalidEvent(format!(
                "the event belongs to organization {:?}, this chain to {:?}",
                event.organization_id, self.organization_id
            )));
        }
        event.validate()?;
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or_else(|| Error::InvalidEvent("the chain is full".into()))?;
        let leaf = leaf_hash(&event.canonical_bytes(seq));
        let hash = chain_hash(&self.head, &leaf);
        let sealed = SealedEvent {
            seq,
            event,
            prev_hash: self.head,
            hash,
        };
        self.last_seq = seq;
        self.head = hash;
        Ok((sealed, leaf))
    }
}
