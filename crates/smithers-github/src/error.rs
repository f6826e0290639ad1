//! What can go wrong talking to GitHub or taking its webhooks. No variant
//! ever carries a token, a key, a webhook secret or a JWT.

use smithers_api::ErrorKind;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A webhook whose `X-Hub-Signature-256` is missing or does not match
    /// its body.
    #[error("the webhook's signature is missing or does not match its body")]
    BadSignature,
    /// A webhook or an answer from GitHub that is not what GitHub sends.
    #[error("{0}")]
    Malformed(String),
    /// The App's settings or credentials cannot be used.
    #[error("{0}")]
    Settings(String),
    /// GitHub answered with an error.
    #[error("GitHub answered {status} to {method} {route}: {message}")]
    Api {
        status: u16,
        method: String,
        /// The route template (`/repos/{owner}/{repo}/pulls`).
        route: String,
        message: String,
        /// `X-GitHub-Request-Id`, to quote to GitHub's support.
        request_id: Option<String>,
    },
    /// GitHub could not be reached, or did not answer in time.
    #[error("GitHub could not be reached for {method} {route}: {reason}")]
    Unreachable {
        method: String,
        route: String,
        reason: String,
    },
    /// A request that changes something failed in a way that leaves open
    /// whether GitHub carried it out (a 5xx, a dropped connection): it is
    /// not retried blindly; the caller looks first.
    #[error(
        "GitHub's answer to {method} {route} was {reason}: it may or may not have been carried out"
    )]
    Uncertain {
        method: String,
        route: String,
        reason: String,
    },
    /// GitHub's rate limit is spent for longer than a request may wait.
    #[error("GitHub's rate limit for {route} is spent for {wait_secs} s more")]
    RateLimited { route: String, wait_secs: u64 },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] smithers_store::Error),
    /// A service of the application refused or failed.
    #[error(transparent)]
    App(#[from] smithers_api::Error),
    /// A GitHub call could not be recorded in the audit log: it is not
    /// made (or its answer not used).
    #[error("a GitHub request could not be recorded in the audit log: {0}")]
    Audit(String),
}

impl From<Error> for smithers_api::Error {
    fn from(e: Error) -> smithers_api::Error {
        let e = match e {
            Error::App(inner) => return inner,
            Error::Store(inner) => return smithers_app::store_error(inner),
            other => other,
        };
        let kind = match &e {
            Error::BadSignature => ErrorKind::Unauthenticated,
            Error::Malformed(_) | Error::Settings(_) => ErrorKind::Invalid,
            Error::Api { status: 404, .. } => ErrorKind::NotFound,
            Error::Api { status: 401, .. } | Error::Api { status: 403, .. } => ErrorKind::Forbidden,
            Error::Api { status: 409, .. } | Error::Api { status: 422, .. } => ErrorKind::Conflict,
            Error::Api { .. }
            | Error::Unreachable { .. }
            | Error::Uncertain { .. }
            | Error::RateLimited { .. } => ErrorKind::Unavailable,
            Error::Store(_) | Error::App(_) | Error::Audit(_) => ErrorKind::Internal,
        };
        smithers_api::Error::new(kind, e.to_string())
    }
}
