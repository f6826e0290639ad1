//! The test App's key pair (made with `openssl genrsa -traditional 2048`
//! for these tests only: PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`, the form
//! GitHub hands an App's private key out in) and App JWTs signed with it,
//! as GitHub Docs' "Generating a JSON Web Token (JWT) for a GitHub App"
//! describes them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::state::epoch;

/// The test App's id.
pub const APP_ID: u64 = 1_000_001;

/// The test App's slug (its bot is `smithers-test[bot]`).
pub const APP_SLUG: &str = "smithers-test";

/// The test App's private key, PKCS#1 PEM.
pub const APP_PRIVATE_KEY_PEM: &str = include_str!("../../github/test-app-key.pem");

/// Its public key, SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
pub const APP_PUBLIC_KEY_PEM: &str = include_str!("../../github/test-app-key.pub.pem");

/// The file holding [`APP_PRIVATE_KEY_PEM`] (for a test that configures
/// Smithers with a key file).
pub fn app_private_key_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("github/test-app-key.pem")
}

/// The file holding [`APP_PUBLIC_KEY_PEM`].
pub fn app_public_key_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("github/test-app-key.pub.pem")
}

/// A JWT for App `app_id` as GitHub asks for one: RS256, `iss` the App
/// id, `iat` 60 s in the past (for clock drift), `exp` 9 minutes ahead.
pub fn app_jwt(app_id: u64) -> String {
    let now = SystemTime::now();
    sign_app_jwt(
        serde_json::json!({
            "iat": epoch(now - Duration::from_secs(60)),
            "exp": epoch(now + Duration::from_secs(540)),
            "iss": app_id.to_string(),
        }),
        APP_PRIVATE_KEY_PEM,
    )
}

/// Any claims signed RS256 with `private_key_pem` (to make the wrong
/// JWTs the stand-in must refuse).
#[allow(clippy::expect_used)] // the key and claims are the test's own
pub fn sign_app_jwt(claims: serde_json::Value, private_key_pem: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
        .expect("the test's RSA private key is PEM");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("RS256 signs any JSON claims")
}
