//! Who a request is, as GitHub decides it for an App (GitHub Docs:
//! "Authenticating as a GitHub App", "Authenticating as a GitHub App
//! installation", "Rate limits for the REST API"): an App JWT (RS256,
//! `iss` the App id, at most ten minutes long, 60 s of clock drift taken
//! in `iat`), or an installation access token (`ghs_…`) that is known,
//! unexpired and of an installation that is not suspended.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use serde_json::Value;

use super::state::{AuthKind, State, Window, epoch};

/// What installation access tokens start with.
pub const TOKEN_PREFIX: &str = "ghs_";

/// The requests an installation may make per hour (GitHub's floor for
/// one) and the App itself.
pub const RATE_LIMIT: u64 = 5000;

/// A request's authenticated principal.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    App,
    Installation { token: String, installation: u64 },
    Anonymous,
}

/// A refusal: status and GitHub's message.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The credentials of an `Authorization` header: its kind, and the
/// secret (`Bearer X`, `token X`, or basic `x-access-token:X` for git).
pub(crate) fn credentials(headers: &HeaderMap) -> (AuthKind, Option<String>) {
    let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return (AuthKind::None, None);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let secret = match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => rest.trim().to_string(),
        "basic" => {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            // GitHub takes the token as the password whatever the user
            // name; Apps are told to use `x-access-token`.
            decoded
                .split_once(':')
                .map(|(_, p)| p.to_string())
                .unwrap_or_default()
        }
        _ => return (AuthKind::None, None),
    };
    let kind = if secret.starts_with(TOKEN_PREFIX) {
        AuthKind::Token
    } else if secret.split('.').count() == 3 {
        AuthKind::Jwt
    } else {
        AuthKind::None
    };
    (kind, Some(secret))
}

/// The principal of a request, or GitHub's refusal of its credentials.
pub(crate) fn authenticate(state: &State, headers: &HeaderMap) -> Result<Principal, Refusal> {
    match credentials(headers) {
        (_, None) => Ok(Principal::Anonymous),
        (AuthKind::Token, Some(token)) => installation_token(state, &token),
        (AuthKind::Jwt, Some(jwt)) => verify_jwt(state, &jwt).map(|()| Principal::App),
        (AuthKind::None, Some(_)) => Err(Refusal::new(401, "Bad credentials")),
    }
}

fn installation_token(state: &State, token: &str) -> Result<Principal, Refusal> {
    let Some(t) = state.tokens.get(token) else {
        return Err(Refusal::new(401, "Bad credentials"));
    };
    if t.expires_at <= SystemTime::now() {
        return Err(Refusal::new(401, "Bad credentials"));
    }
    if state
        .installations
        .get(&t.installation)
        .is_none_or(|i| i.suspended)
    {
        return Err(Refusal::new(403, "This installation has been suspended"));
    }
    Ok(Principal::Installation {
        token: token.to_string(),
        installation: t.installation,
    })
}

/// An App JWT checked as GitHub checks one; the refusal carries
/// GitHub's message for what is wrong.
fn verify_jwt(state: &State, jwt: &str) -> Result<(), Refusal> {
    let undecodable = || Refusal::new(401, "A JSON web token could not be decoded");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(state.public_key_pem.as_bytes())
        .map_err(|_| undecodable())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // The times and the issuer are checked below, with GitHub's messages.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|_| undecodable())?
        .claims;
    let now = epoch(SystemTime::now());
    let Some(iat) = claims.get("iat").and_then(Value::as_u64) else {
        return Err(Refusal::new(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        ));
    };
    let Some(exp) = claims.get("exp").and_then(Value::as_u64) else {
        return Err(Refusal::new(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        ));
    };
    if iat > now + 60 {
        return Err(Refusal::new(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        ));
    }
    if exp <= now {
        return Err(Refusal::new(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        ));
    }
    if exp.saturating_sub(iat) > 600 {
        return Err(Refusal::new(
            401,
            "'Expiration time' claim ('exp') is too far in the future.",
        ));
    }
    let iss = match claims.get("iss") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    if iss != Some(state.app_id) {
        return Err(Refusal::new(
            401,
            "'Issuer' claim ('iss') must be an Integer",
        ));
    }
    Ok(())
}

/// The rank of a permission level (`read` < `write` < `admin`).
pub(crate) fn level(l: &str) -> u8 {
    match l {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// Whether `granted` holds `permission` at `wanted` or above.
pub(crate) fn allows(granted: &BTreeMap<String, String>, permission: &str, wanted: &str) -> bool {
    granted
        .get(permission)
        .is_some_and(|g| level(g) >= level(wanted))
}

/// The rate-limit window of `key` (an installation, the App, an address),
/// opened when first used and renewed each hour; `count` spends one
/// request of it (a 304 does not).
pub(crate) fn spend(state: &mut State, key: &str, limit: u64, count: bool) -> RateHeaders {
    let now = SystemTime::now();
    let window = state.windows.entry(key.to_string()).or_insert(Window {
        limit,
        used: 0,
        reset: now + Duration::from_secs(3600),
    });
    if window.reset <= now {
        window.used = 0;
        window.reset = now + Duration::from_secs(3600);
    }
    if count && window.used < window.limit {
        window.used += 1;
    }
    RateHeaders {
        limit: window.limit,
        used: window.used,
        remaining: window.limit - window.used,
        reset: epoch(window.reset),
    }
}

/// The `x-ratelimit-*` values of an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateHeaders {
    pub limit: u64,
    pub used: u64,
    pub remaining: u64,
    pub reset: u64,
}

/// A fresh installation access token: `ghs_` and 36 random letters and
/// digits, as GitHub's look.
pub(crate) fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 36];
    random_bytes(&mut bytes);
    let text: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{TOKEN_PREFIX}{text}")
}

/// Bytes from the operating system's generator.
#[allow(clippy::expect_used)] // a machine without one cannot run the tests
pub(crate) fn random_bytes(into: &mut [u8]) {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new()
        .fill(into)
        .expect("the operating system's random generator works");
}
