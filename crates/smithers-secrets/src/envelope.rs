//! Envelope encryption: a data key per secret version, wrapped by the keyring.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::keyring::KeyringKey;
use crate::{Error, Keyring, SecretValue};

/// The layout of [`SealedSecret`] this version writes.
pub const FORMAT_VERSION: u8 = 1;

/// Where a secret version belongs: the associated data of both seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub organization_id: &'a str,
    pub environment: &'a str,
    pub name: &'a str,
    pub version: u32,
}

impl Scope<'_> {
    /// Length-prefixed fields, so that no two scopes share associated data
    /// (`a|b` + `c` is not `a` + `b|c`).
    fn associated_data(&self, purpose: &str, key_id: Option<&str>) -> Vec<u8> {
        let version = self.version.to_string();
        length_prefixed(&[
            purpose,
            self.organization_id,
            self.environment,
            self.name,
            version.as_str(),
            key_id.unwrap_or(""),
        ])
    }
}

/// Each field behind its length (u32, big-endian): associated data in
/// which no two lists of fields meet.
pub(crate) fn length_prefixed(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for field in fields {
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// A secret version at rest. Nonces are stored in front of each ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub format: u8,
    /// The keyring key that wraps the data key.
    pub key_id: String,
    /// nonce ‖ AES-256-GCM(keyring key, data key) ‖ tag
    pub wrapped_key: Vec<u8>,
    /// nonce ‖ AES-256-GCM(data key, value) ‖ tag
    pub ciphertext: Vec<u8>,
}

pub(crate) fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Decrypt)
}

pub(crate) fn seal(
    key: &LessSafeKey,
    rng: &SystemRandom,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| Error::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::Decrypt)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens `nonce ‖ ciphertext ‖ tag`; the plaintext is wiped on drop.
pub(crate) fn open(
    key: &LessSafeKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(Error::Decrypt);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Decrypt)?;
    let mut buffer = Zeroizing::new(body.to_vec());
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| Error::Decrypt)?
        .len();
    buffer.truncate(plain_len);
    Ok(buffer)
}

impl Keyring {
    fn wrap(
        &self,
        key: &KeyringKey,
        scope: &Scope<'_>,
        data_key: &[u8],
        rng: &SystemRandom,
    ) -> Result<Vec<u8>, Error> {
        let aad = scope.associated_data("smithers-secret-data-key/v1", Some(&key.id));
        seal(&aead_key(&key.bytes[..])?, rng, &aad, data_key)
    }

    fn unwrap_data_key(
        &self,
        scope: &Scope<'_>,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.format != FORMAT_VERSION {
            return Err(Error::Format(sealed.format));
        }
        let key = self.get(&sealed.key_id)?;
        let aad = scope.associated_data("smithers-secret-data-key/v1", Some(&key.id));
        let data_key = open(&aead_key(&key.bytes[..])?, &aad, &sealed.wrapped_key)?;
        if data_key.len() != 32 {
            return Err(Error::Decrypt);
        }
        Ok(data_key)
    }

    /// Seals `value` for `scope` under a fresh data key wrapped by the primary key.
    pub fn seal(&self, scope: &Scope<'_>, value: &SecretValue) -> Result<SealedSecret, Error> {
        let rng = SystemRandom::new();
        let mut data_key = Zeroizing::new([0u8; 32]);
        rng.fill(&mut data_key[..]).map_err(|_| Error::Random)?;
        let ciphertext = seal(
            &aead_key(&data_key[..])?,
            &rng,
            &scope.associated_data("smithers-secret-value/v1", None),
            value.expose(),
        )?;
        let primary = self.primary()?;
        Ok(SealedSecret {
            format: FORMAT_VERSION,
            key_id: primary.id.clone(),
            wrapped_key: self.wrap(primary, scope, &data_key[..], &rng)?,
            ciphertext,
        })
    }

    /// Opens a sealed secret of `scope`.
    pub fn open(&self, scope: &Scope<'_>, sealed: &SealedSecret) -> Result<SecretValue, Error> {
        let data_key = self.unwrap_data_key(scope, sealed)?;
        let plain = open(
            &aead_key(&data_key)?,
            &scope.associated_data("smithers-secret-value/v1", None),
            &sealed.ciphertext,
        )?;
        Ok(SecretValue::new(plain.to_vec()))
    }

    /// Re-wraps the data key under the primary key if another key wraps it;
    /// `None` when it is already on the primary. The value is never
    /// decrypted: only the data key passes through memory (and is wiped).
    pub fn rewrap(
        &self,
        scope: &Scope<'_>,
        sealed: &SealedSecret,
    ) -> Result<Option<SealedSecret>, Error> {
        let primary = self.primary()?;
        if sealed.key_id == primary.id {
            return Ok(None);
        }
        let data_key = self.unwrap_data_key(scope, sealed)?;
        Ok(Some(SealedSecret {
            format: FORMAT_VERSION,
            key_id: primary.id.clone(),
            wrapped_key: self.wrap(primary, scope, &data_key, &SystemRandom::new())?,
            ciphertext: sealed.ciphertext.clone(),
        }))
    }
}
