//! A run's history key: one random AES-256-GCM data key per run, wrapped by
//! the keyring like a secret version's, that seals what a model generated
//! for the run (its answers). The run replays them while it lives; when it
//! ends, the wrapped key is deleted and every answer sealed under it is
//! ciphertext no key opens any more (crypto-shredding).

use std::fmt;

use ring::aead::LessSafeKey;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::envelope::{aead_key, length_prefixed, open, seal};
use crate::{Error, Keyring};

/// The layout of [`WrappedHistoryKey`] and of the seals this version writes.
pub const HISTORY_FORMAT: u8 = 1;

const KEY_PURPOSE: &str = "smithers-run-history-key/v1";
const ITEM_PURPOSE: &str = "smithers-run-history-item/v1";

/// A run's history key at rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedHistoryKey {
    pub format: u8,
    /// The keyring key that wraps it.
    pub key_id: String,
    /// nonce ‖ AES-256-GCM(keyring key, data key) ‖ tag, with the
    /// organization and run as associated data.
    pub wrapped: Vec<u8>,
}

/// A run's history key, unwrapped; the key bytes are wiped on drop (ring
/// holds them inside [`LessSafeKey`]) and never printed.
pub struct HistoryKey {
    key: LessSafeKey,
    organization_id: String,
    run_id: String,
}

impl fmt::Debug for HistoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryKey")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

fn key_aad(organization_id: &str, run_id: &str, key_id: &str) -> Vec<u8> {
    length_prefixed(&[KEY_PURPOSE, organization_id, run_id, key_id])
}

impl Keyring {
    /// A fresh history key for run `run_id` of `organization_id`, and the
    /// same key wrapped by the primary keyring key (to store).
    ///
    /// Errors: [`Error::Random`] when the system has no randomness.
    pub fn new_history_key(
        &self,
        organization_id: &str,
        run_id: &str,
    ) -> Result<(HistoryKey, WrappedHistoryKey), Error> {
        let rng = SystemRandom::new();
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(&mut bytes[..]).map_err(|_| Error::Random)?;
        let primary = self.primary()?;
        let wrapped = seal(
            &aead_key(&primary.bytes[..])?,
            &rng,
            &key_aad(organization_id, run_id, &primary.id),
            &bytes[..],
        )?;
        Ok((
            HistoryKey {
                key: aead_key(&bytes[..])?,
                organization_id: organization_id.to_string(),
                run_id: run_id.to_string(),
            },
            WrappedHistoryKey {
                format: HISTORY_FORMAT,
                key_id: primary.id.clone(),
                wrapped,
            },
        ))
    }

    /// Unwraps run `run_id`'s history key.
    ///
    /// Errors: [`Error::UnknownKey`] when its keyring key is gone,
    /// [`Error::Decrypt`] when it was wrapped for another run or
    /// organization or is damaged, [`Error::Format`] for a later layout.
    pub fn open_history_key(
        &self,
        organization_id: &str,
        run_id: &str,
        wrapped: &WrappedHistoryKey,
    ) -> Result<HistoryKey, Error> {
        if wrapped.format != HISTORY_FORMAT {
            return Err(Error::Format(wrapped.format));
        }
        let wrapping = self.get(&wrapped.key_id)?;
        let bytes = open(
            &aead_key(&wrapping.bytes[..])?,
            &key_aad(organization_id, run_id, &wrapping.id),
            &wrapped.wrapped,
        )?;
        if bytes.len() != 32 {
            return Err(Error::Decrypt);
        }
        Ok(HistoryKey {
            key: aead_key(&bytes)?,
            organization_id: organization_id.to_string(),
            run_id: run_id.to_string(),
        })
    }

    /// The same history key wrapped by the primary keyring key; `None` when
    /// the primary wraps it already. The key passes through memory only.
    ///
    /// Errors: as [`Keyring::open_history_key`].
    pub fn rewrap_history_key(
        &self,
        organization_id: &str,
        run_id: &str,
        wrapped: &WrappedHistoryKey,
    ) -> Result<Option<WrappedHistoryKey>, Error> {
        let primary = self.primary()?;
        if wrapped.key_id == primary.id {
            return Ok(None);
        }
        if wrapped.format != HISTORY_FORMAT {
            return Err(Error::Format(wrapped.format));
        }
        let wrapping = self.get(&wrapped.key_id)?;
        let bytes = open(
            &aead_key(&wrapping.bytes[..])?,
            &key_aad(organization_id, run_id, &wrapping.id),
            &wrapped.wrapped,
        )?;
        Ok(Some(WrappedHistoryKey {
            format: HISTORY_FORMAT,
            key_id: primary.id.clone(),
            wrapped: seal(
                &aead_key(&primary.bytes[..])?,
                &SystemRandom::new(),
                &key_aad(organization_id, run_id, &primary.id),
                &bytes,
            )?,
        }))
    }
}

impl HistoryKey {
    /// The run the key belongs to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Seals `plaintext` as the item named by `item` (e.g. a model answer's
    /// step, attempt and turn): nonce ‖ ciphertext ‖ tag, which opens only
    /// under this key as the same item.
    ///
    /// Errors: [`Error::Random`].
    pub fn seal(&self, item: &[&str], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        seal(
            &self.key,
            &SystemRandom::new(),
            &self.item_aad(item),
            plaintext,
        )
    }

    /// Opens what [`HistoryKey::seal`] sealed as `item`; wiped on drop.
    ///
    /// Errors: [`Error::Decrypt`] for another key, run or item, or damage.
    pub fn open(&self, item: &[&str], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        open(&self.key, &self.item_aad(item), sealed)
    }

    fn item_aad(&self, item: &[&str]) -> Vec<u8> {
        let mut fields = vec![
            ITEM_PURPOSE,
            self.organization_id.as_str(),
            self.run_id.as_str(),
        ];
        fields.extend_from_slice(item);
        length_prefixed(&fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn keyring(spec: &str) -> Keyring {
        Keyring::parse(spec).unwrap()
    }

    #[test]
    fn an_answer_opens_only_as_itself_under_its_runs_key() {
        let k = keyring(&format!("k1:{K1}"));
        let (key, wrapped) = k.new_history_key("acme", "run_1").unwrap();
        let sealed = key.seal(&["0", "1", "2"], b"the answer").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"the answer"));
        let again = k.open_history_key("acme", "run_1", &wrapped).unwrap();
        assert_eq!(
            &again.open(&["0", "1", "2"], &sealed).unwrap()[..],
            b"the answer"
        );
        // Another item, run or organization does not open it.
        assert_eq!(again.open(&["0", "1", "3"], &sealed), Err(Error::Decrypt));
        assert_eq!(again.open(&["0", "12"], &sealed), Err(Error::Decrypt));
        assert_eq!(
            k.open_history_key("acme", "run_2", &wrapped).unwrap_err(),
            Error::Decrypt
        );
        assert_eq!(
            k.open_history_key("other", "run_1", &wrapped).unwrap_err(),
            Error::Decrypt
        );
        // Another run's key does not open it either.
        let (other, _) = k.new_history_key("acme", "run_1").unwrap();
        assert_eq!(other.open(&["0", "1", "2"], &sealed), Err(Error::Decrypt));
        assert!(!format!("{key:?}").contains("key:"));
    }

    #[test]
    fn a_history_key_moves_to_the_new_primary() {
        let old = keyring(&format!("k1:{K1}"));
        let (key, wrapped) = old.new_history_key("acme", "run_1").unwrap();
        let sealed = key.seal(&["a"], b"x").unwrap();
        let both = keyring(&format!("k2:{K2},k1:{K1}"));
        let moved = both
            .rewrap_history_key("acme", "run_1", &wrapped)
            .unwrap()
            .unwrap();
        assert_eq!(moved.key_id, "k2");
        assert_eq!(
            both.rewrap_history_key("acme", "run_1", &moved).unwrap(),
            None
        );
        let only_new = keyring(&format!("k2:{K2}"));
        let opened = only_new.open_history_key("acme", "run_1", &moved).unwrap();
        assert_eq!(&opened.open(&["a"], &sealed).unwrap()[..], b"x");
        assert_eq!(
            only_new
                .open_history_key("acme", "run_1", &wrapped)
                .unwrap_err(),
            Error::UnknownKey("k1".into())
        );
    }
}
