//! Webhook signatures: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256
//! of the raw request body under the App's webhook secret (GitHub Docs,
//! "Validating webhook deliveries"). Checked over the exact bytes received,
//! before anything is parsed, in constant time.

use crate::Error;

/// The header's prefix.
const PREFIX: &str = "sha256=";

/// Checks `header` (the value of `X-Hub-Signature-256`, if any) against
/// `body` under `secret`.
///
/// Errors: [`Error::BadSignature`] when the header is missing, malformed
/// (not `sha256=` and 64 hex digits) or does not match; nothing else is
/// told, so a caller learns nothing about how close a guess came.
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), Error> {
    let hex_tag = header
        .and_then(|h| h.trim().strip_prefix(PREFIX))
        .ok_or(Error::BadSignature)?;
    let tag = hex::decode(hex_tag).map_err(|_| Error::BadSignature)?;
    if tag.len() != 32 {
        return Err(Error::BadSignature);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    // ring compares in constant time.
    ring::hmac::verify(&key, body, &tag).map_err(|_| Error::BadSignature)
}

/// The header value GitHub would send for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!(
        "{PREFIX}{}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// GitHub Docs' own example ("Validating webhook deliveries": secret
    /// "It's a Secret to Everybody", payload "Hello, World!").
    #[test]
    fn github_docs_example_verifies() {
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        verify(
            b"It's a Secret to Everybody",
            Some(header),
            b"Hello, World!",
        )
        .unwrap();
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            header
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        let good = sign(b"s", b"body");
        for header in [
            None,
            Some(""),
            Some("sha256="),
            Some("sha1=757107ea0eb2509fc211221cce984b8a37570b6d"),
            Some(&good[..good.len() - 2]),
            Some("sha256=zz57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"),
        ] {
            assert!(
                matches!(verify(b"s", header, b"body"), Err(Error::BadSignature)),
                "{header:?}"
            );
        }
        verify(b"s", Some(&good), b"body").unwrap();
        verify(
            b"s",
            Some(&good.to_uppercase().replace("SHA256=", "sha256=")),
            b"body",
        )
        .unwrap();
    }

    proptest! {
        /// Any change of the body, the secret or the tag is refused.
        #[test]
        fn any_change_is_refused(
            secret in proptest::collection::vec(any::<u8>(), 1..64),
            body in proptest::collection::vec(any::<u8>(), 0..256),
            flip in any::<usize>(),
        ) {
            let header = sign(&secret, &body);
            prop_assert!(verify(&secret, Some(&header), &body).is_ok());
            let mut other = body.clone();
            if other.is_empty() {
                other.push(0);
            } else {
                let i = flip % other.len();
                other[i] ^= 1;
            }
            prop_assert!(verify(&secret, Some(&header), &other).is_err());
            let mut other_secret = secret.clone();
            let i = flip % other_secret.len();
            other_secret[i] ^= 0x80;
            prop_assert!(verify(&other_secret, Some(&header), &body).is_err());
        }
    }
}
