//! Signing in and out from a browser. `GET /sign-in/local?token=…` takes a
//! one-time link `smithers serve` printed, opens a session and sets its
//! cookie; `POST /sign-out` ends it. (OpenID Connect and GitHub sign-in
//! open sessions the same way.)

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use smithers_app::{Client, SESSION_TTL};

use crate::auth::{SESSION_COOKIE, Session};
use crate::page;
use crate::{Problem, ServerState};

/// `?token=smi_…`.
#[derive(Debug, Deserialize)]
pub struct LocalQuery {
    #[serde(default)]
    token: String,
}

/// `GET /sign-in/local?token=…`: a one-time link's sign-in. Opens a
/// session, sets its cookie and sends the browser to `/`; a link used
/// before, expired or unknown is a page saying so (401).
pub async fn local(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LocalQuery>,
) -> Response {
    let client = client(peer, &headers);
    match state.app.sign_in_with_token(&query.token, &client).await {
        Ok(opened) => {
            let max_age = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX);
            signed_in_redirect(session_cookie(&opened.secret, max_age), "/")
        }
        Err(e) => page::message(
            StatusCode::UNAUTHORIZED,
            "Sign-in refused",
            &format!(
                "{}. `smithers serve` prints a new link each time it starts; `smithers serve --new-sign-in-link` prints one for a server that runs.",
                e.message
            ),
        ),
    }
}

/// `POST /sign-out`: ends the session (same-origin only, like every
/// change), clears the cookie, and sends the browser to the sign-in page.
pub async fn sign_out(
    State(state): State<ServerState>,
    session: Session,
) -> Result<Response, Problem> {
    state.app.sign_out(&session.principal, &session.id).await?;
    Ok(signed_in_redirect(session_cookie("", 0), "/sign-in"))
}

/// Who is signing in, for the audit log: the peer and its user agent.
pub(crate) fn client(peer: SocketAddr, headers: &HeaderMap) -> Client {
    Client {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// The session cookie: `Secure`, `HttpOnly` (no script reads it),
/// `SameSite=Lax` (a link from elsewhere lands signed in; a form from
/// elsewhere is refused by the same-origin check anyway), `Path=/`, for
/// `max_age` seconds (0: removed).
pub(crate) fn session_cookie(secret: &str, max_age: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, secret.to_string()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
}

/// `303 See Other` to `to`, setting `cookie`.
fn signed_in_redirect(cookie: Cookie<'static>, to: &'static str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
