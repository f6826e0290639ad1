//! Signed checkpoints: an Ed25519 signature over the Merkle root and chain
//! head of an organization's log at a given size.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Hash};

/// What a checkpoint vouches for, and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub organization_id: String,
    /// Number of events covered: sequence numbers 1..=tree_size.
    pub tree_size: u64,
    #[serde(with = "hex::serde")]
    pub root: Hash,
    /// The chain hash of event `tree_size`.
    #[serde(with = "hex::serde")]
    pub chain_head: Hash,
    /// Microseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// Which key signed: see [`key_id`].
    pub key_id: String,
    #[serde(with = "hex::serde")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        format!(
            "smithers-audit-checkpoint/v1\n{}\n{}\n{}\n{}\n{}\n",
            self.organization_id,
            self.tree_size,
            hex::encode(self.root),
            hex::encode(self.chain_head),
            self.timestamp
        )
        .into_bytes()
    }

    /// Whether `key` signed exactly this checkpoint.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        key_id(key) == self.key_id
            && key
                .verify(
                    &self.signed_message(),
                    &Signature::from_bytes(&self.signature),
                )
                .is_ok()
    }
}

/// A short, stable name for a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Signs checkpoints. The key never appears in `Debug` output.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8]) -> Result<CheckpointSigner, Error> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::InvalidKey(format!("expected 32 bytes, got {}", seed.len())))?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        Ok(CheckpointSigner { key, key_id })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key itself, for the other things it signs (prune bases).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn sign(
        &self,
        organization_id: &str,
        tree_size: u64,
        root: Hash,
        chain_head: Hash,
        timestamp: i64,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            organization_id: organization_id.to_string(),
            tree_size,
            root,
            chain_head,
            timestamp,
            key_id: self.key_id.clone(),
            signature: [0; 64],
        };
        checkpoint.signature = self.key.sign(&checkpoint.signed_message()).to_bytes();
        checkpoint
    }
}
