//! Random secrets handed out once (API tokens, session cookies, sign-in
//! links) and the digest that is kept of them.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use smithers_api::Error;

/// A new secret, `prefix` then 32 random bytes in base64url (RFC 4648
/// §5, unpadded), and its digest ([`sha256_hex`]).
///
/// Errors: `unavailable` when the system gives no randomness.
pub(crate) fn new_secret(prefix: &str) -> Result<(String, String), Error> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| Error::unavailable(format!("no randomness for a secret: {e}")))?;
    let secret = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let digest = sha256_hex(&secret);
    Ok((secret, digest))
}

/// The lowercase hex SHA-256 of `secret`: what is stored of it.
pub(crate) fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
