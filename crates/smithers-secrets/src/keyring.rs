//! The keyring: the keys that wrap data keys, from `SECRET_ENCRYPTION_KEYS`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::Error;

/// The environment variable holding the keyring: `id:base64-32-bytes,…`.
pub const KEYRING_ENV: &str = "SECRET_ENCRYPTION_KEYS";

pub(crate) struct KeyringKey {
    pub id: String,
    pub bytes: Zeroizing<[u8; 32]>,
}

/// Keys by id. The first wraps new data keys; the others only unwrap
/// (until `rewrap` has moved everything off them).
pub struct Keyring {
    pub(crate) keys: Vec<KeyringKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Keyring {
    /// Parses `id:base64-32-bytes,…`. Any bad entry refuses the whole
    /// keyring, naming the entry by position and id but never its value.
    pub fn parse(spec: &str) -> Result<Keyring, Error> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(Error::Keyring(
                "no keys: set it to `id:base64-32-byte-key` (comma-separated, the first one encrypts)".into(),
            ));
        }
        let mut keys: Vec<KeyringKey> = Vec::new();
        for (index, entry) in spec.split(',').enumerate() {
            let n = index + 1;
            let entry = entry.trim();
            let Some((id, encoded)) = entry.split_once(':') else {
                return Err(Error::Keyring(format!("entry {n} is not `id:base64-key`")));
            };
            let id = id.trim();
            if !valid_id(id) {
                return Err(Error::Keyring(format!(
                    "entry {n} has an invalid key id (1-64 letters, digits, `-`, `_`, `.`)"
                )));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(Error::Keyring(format!(
                    "entry {n}: key id {id:?} appears twice"
                )));
            }
            let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| {
                Error::Keyring(format!("entry {n} (key {id:?}) is not valid base64"))
            })?);
            let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
                Error::Keyring(format!(
                    "entry {n} (key {id:?}) is {} bytes; AES-256 keys are 32 bytes",
                    decoded.len()
                ))
            })?;
            keys.push(KeyringKey {
                id: id.to_string(),
                bytes: Zeroizing::new(bytes),
            });
        }
        Ok(Keyring { keys })
    }

    /// The id of the key that wraps new data keys.
    pub fn primary_id(&self) -> &str {
        // `parse` never builds an empty keyring.
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Every key id, the primary first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    pub(crate) fn primary(&self) -> Result<&KeyringKey, Error> {
        self.keys
            .first()
            .ok_or_else(|| Error::Keyring("no keys".into()))
    }

    pub(crate) fn get(&self, id: &str) -> Result<&KeyringKey, Error> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::UnknownKey(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn err(spec: &str) -> String {
        Keyring::parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_keyring_primary_first() {
        let k = Keyring::parse(&format!("new:{K2}, old:{K1}")).unwrap();
        assert_eq!(k.ids(), ["new", "old"]);
        assert_eq!(k.primary_id(), "new");
        assert!(!format!("{k:?}").contains(K1));
    }

    #[test]
    fn bad_entries_are_named_never_shown() {
        assert!(err("").contains("no keys"));
        assert!(err("  ").contains("no keys"));
        assert!(err(&format!("a:{K1},nocolon")).contains("entry 2 is not"));
        assert!(err(&format!(":{K1}")).contains("entry 1 has an invalid key id"));
        assert!(err(&format!("a b:{K1}")).contains("invalid key id"));
        let dup = err(&format!("a:{K1},a:{K2}"));
        assert!(dup.contains("entry 2: key id \"a\" appears twice"), "{dup}");
        let short = "c2hvcnQta2V5";
        let e = err(&format!("a:{K1},b:{short}"));
        assert!(e.contains("entry 2 (key \"b\") is 9 bytes"), "{e}");
        assert!(!e.contains(short));
        let garbage = "not*base64*secret";
        let e = err(&format!("a:{garbage}"));
        assert!(
            e.contains("not valid base64") && !e.contains(garbage),
            "{e}"
        );
        assert!(e.starts_with("SECRET_ENCRYPTION_KEYS: "), "{e}");
    }
}
