//! The App's own credential: a JSON Web Token (RFC 7519) signed RS256
//! with the App's private key (GitHub Docs, "Generating a JSON Web Token
//! (JWT) for a GitHub App"): `iss` the App's id, `iat` 60 seconds in the
//! past against clock drift, `exp` no more than 10 minutes after `iat`.
//! It is used only to mint installation tokens and read the App's own
//! settings (its deliveries); never sent into a sandbox, logged or stored.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::Error;

/// How far back `iat` is set, against a clock that runs ahead of GitHub's.
pub const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// How long a JWT lives from its `iat` (GitHub's most: 10 minutes).
pub const JWT_LIFETIME: Duration = Duration::from_secs(10 * 60);

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// The App's id and private key.
#[derive(Clone)]
pub struct AppKey {
    app_id: u64,
    key: EncodingKey,
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppKey {
    /// The App `app_id` with its private key in PEM, as GitHub hands it
    /// out (PKCS#1, `BEGIN RSA PRIVATE KEY`) or as PKCS#8.
    ///
    /// Errors: [`Error::Settings`] for a key that is not an RSA private
    /// key in PEM (the key itself is never quoted).
    pub fn from_pem(app_id: u64, pem: &[u8]) -> Result<AppKey, Error> {
        let key = EncodingKey::from_rsa_pem(pem).map_err(|e| {
            Error::Settings(format!(
                "the GitHub App's private key is not an RSA private key in PEM: {e}"
            ))
        })?;
        Ok(AppKey { app_id, key })
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A JWT for requests made at `now`.
    ///
    /// Errors: [`Error::Settings`] when the key cannot sign.
    pub fn jwt(&self, now: SystemTime) -> Result<String, Error> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Settings("the clock is before 1970".into()))?;
        let iat = now.saturating_sub(JWT_BACKDATE).as_secs();
        let claims = Claims {
            iat,
            exp: iat + JWT_LIFETIME.as_secs(),
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| Error::Settings(format!("the GitHub App's JWT cannot be signed: {e}")))
    }
}
