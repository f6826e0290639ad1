//! Who is calling: a script with `Authorization: Bearer smt_…` (RFC 6750),
//! or a person's browser with the session cookie ([`SESSION_COOKIE`]),
//! turned into a principal by the service layer, which decides everything
//! else. A browser's unsafe request (anything but GET, HEAD, OPTIONS) must
//! come from this server's own pages: `Sec-Fetch-Site: same-origin`, or,
//! from a browser that does not send it, an `Origin` equal to this
//! server's (cross-site request forgery is refused, not merely hindered by
//! `SameSite`).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use smithers_api::Error;
use smithers_app::{App, Principal};

use crate::Settings;
use crate::problem::Problem;

/// The cookie holding a browser session's secret. The `__Host-` prefix
/// (RFC 6265bis §4.1.3.2) makes browsers accept it only `Secure`, for
/// `Path=/` and without `Domain`: no other host, not even a sibling
/// subdomain, can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-smithers-session";

/// The caller: an API token's principal, or a signed-in person's.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<App>: FromRef<S>,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Problem> {
        let app = Arc::<App>::from_ref(state);
        if let Some(header) = parts.headers.get(header::AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|v| {
                    let (scheme, token) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                })
                .ok_or_else(|| {
                    Error::unauthenticated("the Authorization header is not Bearer …")
                })?;
            return Ok(Caller(app.principal_from_token(token).await?));
        }
        let settings = Arc::<Settings>::from_ref(state);
        let session = Session::from_parts(parts, &app, &settings).await?;
        Ok(Caller(session.principal))
    }
}

/// A signed-in person's session: its principal and its id (what signing
/// out ends).
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub id: String,
}

impl Session {
    async fn from_parts(parts: &Parts, app: &App, settings: &Settings) -> Result<Session, Problem> {
        let secret = session_cookie(&parts.headers).ok_or_else(|| {
            Error::unauthenticated("sign in, or send an API token: Authorization: Bearer …")
        })?;
        let found = app.principal_from_session(&secret).await?;
        if !parts.method.is_safe() {
            same_origin(&parts.headers, settings)?;
        }
        Ok(Session {
            principal: found.principal,
            id: found.session,
        })
    }
}

impl<S> FromRequestParts<S> for Session
where
    S: Send + Sync,
    Arc<App>: FromRef<S>,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Session, Problem> {
        let app = Arc::<App>::from_ref(state);
        let settings = Arc::<Settings>::from_ref(state);
        Session::from_parts(parts, &app, &settings).await
    }
}

/// The session cookie's value, from any `Cookie` header.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// Cookie `name`'s value, from any `Cookie` header (RFC 6265 §5.4).
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether an unsafe request comes from this server's own pages: the
/// browser's `Sec-Fetch-Site` (Fetch Metadata) says `same-origin`, or,
/// where it is not sent, `Origin` is this server's — the public URL's
/// origin, or `http://` (`https://` when the server speaks TLS) and the
/// `Host` the request was sent to.
///
/// Errors: `forbidden`, saying which header refused it.
pub(crate) fn same_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), Problem> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)").to_string())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site == "same-origin" {
            return Ok(());
        }
        return Err(Error::forbidden(format!(
            "a {site} request is refused: only this server's own pages may change anything"
        ))
        .into());
    }
    let Some(origin) = text(header::ORIGIN) else {
        return Err(Error::forbidden(
            "the request says neither Sec-Fetch-Site nor Origin: a browser's change must show where it comes from",
        )
        .into());
    };
    let expected = match &settings.public_origin {
        Some(origin) => Some(origin.clone()),
        None => {
            let scheme = if settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            text(header::HOST).map(|host| format!("{scheme}://{host}"))
        }
    };
    if expected.is_some_and(|e| e.eq_ignore_ascii_case(&origin)) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "a request from {origin} is refused: only this server's own pages may change anything"
        ))
        .into())
    }
}
