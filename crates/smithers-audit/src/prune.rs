//! Prune bases: where a log whose oldest events were dropped (retention)
//! continues from. A prune base is a checkpoint over the pruned prefix —
//! tree size, Merkle root, chain head — signed under its own message
//! domain, so that an ordinary checkpoint can never be passed off as one
//! (that would let whoever can write the database drop a prefix without
//! saying so), plus the compact Merkle range of the prefix (the roots of
//! its perfect subtrees, largest first: RFC 9162's tree is carried on from
//! them) so that roots and inclusion proofs over the kept events still
//! compute.

use ed25519_dalek::{Signature, Signer as _, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::merkle::Accumulator;
use crate::{Checkpoint, CheckpointSigner, Hash, key_id};

/// The action of the event that records a prune, in the log it pruned.
pub const PRUNED_ACTION: &str = "audit.pruned";

/// A signed prune base: events `1..=checkpoint.tree_size` were dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneBase {
    /// The prefix's size, root and chain head, signed as a prune base
    /// ([`PruneBase::signed_message`]), not as a checkpoint.
    pub checkpoint: Checkpoint,
    /// The prefix's compact Merkle range, largest subtree first.
    #[serde(with = "hex_hashes")]
    pub frontier: Vec<Hash>,
}

impl PruneBase {
    /// The bytes signed: like a checkpoint's, under the domain
    /// `smithers-audit-prune-base/v1`.
    pub fn signed_message(checkpoint: &Checkpoint) -> Vec<u8> {
        format!(
            "smithers-audit-prune-base/v1\n{}\n{}\n{}\n{}\n{}\n",
            checkpoint.organization_id,
            checkpoint.tree_size,
            hex::encode(checkpoint.root),
            hex::encode(checkpoint.chain_head),
            checkpoint.timestamp
        )
        .into_bytes()
    }

    /// Signs the prefix `accumulator` holds (whose last chain hash is
    /// `chain_head`) as a prune base of `organization_id` at `timestamp`.
    pub fn sign(
        signer: &CheckpointSigner,
        organization_id: &str,
        accumulator: &Accumulator,
        chain_head: Hash,
        timestamp: i64,
    ) -> PruneBase {
        let mut checkpoint = Checkpoint {
            organization_id: organization_id.to_string(),
            tree_size: accumulator.size(),
            root: accumulator.root(),
            chain_head,
            timestamp,
            key_id: signer.key_id().to_string(),
            signature: [0; 64],
        };
        checkpoint.signature = signer
            .signing_key()
            .sign(&PruneBase::signed_message(&checkpoint))
            .to_bytes();
        PruneBase {
            checkpoint,
            frontier: accumulator.frontier(),
        }
    }

    /// Whether `key` signed it as a prune base.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        key_id(key) == self.checkpoint.key_id
            && key
                .verify(
                    &PruneBase::signed_message(&self.checkpoint),
                    &Signature::from_bytes(&self.checkpoint.signature),
                )
                .is_ok()
    }

    /// The prefix's accumulator, to carry the tree on; `None` when the
    /// frontier does not give the signed root at the signed size.
    pub fn accumulator(&self) -> Option<Accumulator> {
        Accumulator::from_frontier(self.checkpoint.tree_size, &self.frontier)
            .filter(|a| a.root() == self.checkpoint.root)
    }
}

mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Hash;

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hashes.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                let bytes = hex::decode(t).map_err(serde::de::Error::custom)?;
                Hash::try_from(bytes.as_slice())
                    .map_err(|_| serde::de::Error::custom("a hash is 32 bytes"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_not_a_prune_base_and_the_frontier_must_give_the_root() {
        let signer = CheckpointSigner::from_seed(&[3u8; 32]).unwrap();
        let mut acc = Accumulator::new();
        for i in 0..5u8 {
            acc.push([i; 32]);
        }
        let base = PruneBase::sign(&signer, "acme", &acc, [9; 32], 1);
        assert!(base.signature_is_valid(&signer.verifying_key()));
        assert_eq!(base.accumulator().unwrap().root(), acc.root());
        // The same fields signed as an ordinary checkpoint do not pass.
        let checkpoint = signer.sign("acme", 5, acc.root(), [9; 32], 1);
        let passed_off = PruneBase {
            checkpoint,
            frontier: acc.frontier(),
        };
        assert!(!passed_off.signature_is_valid(&signer.verifying_key()));
        // A frontier that does not give the signed root.
        let mut wrong = base.clone();
        wrong.frontier[0] = [0; 32];
        assert!(wrong.accumulator().is_none());
        // Round trip through JSON.
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(serde_json::from_str::<PruneBase>(&json).unwrap(), base);
    }
}
