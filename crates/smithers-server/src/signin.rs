//! Signing in and out from a browser. `GET /sign-in/local?token=…` takes a
//! one-time link `smithers serve` printed, opens a session and sets its
//! cookie; `POST /sign-out` ends it. With an OpenID Connect provider
//! configured, `GET /sign-in/oidc` sends the browser to it and
//! `GET /sign-in/oidc/callback` opens the session it comes back with (the
//! flow itself is the service layer's, `smithers_app::OidcSignIn`); with a
//! GitHub App configured, `GET /sign-in/github` and
//! `GET /sign-in/github/callback` do the same with GitHub
//! (`smithers_app::GithubSignIn`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use smithers_app::{
    Client, GITHUB_SIGN_IN_TTL, GithubCallback, OIDC_SIGN_IN_TTL, OidcCallback, OpenedSession,
    SESSION_TTL,
};

use crate::auth::{SESSION_COOKIE, Session, cookie_value};
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
            let max_age = seconds(SESSION_TTL);
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

/// The cookie that binds an OpenID Connect sign-in to the browser that
/// began it: the `state`, for as long as the sign-in lasts.
pub const OIDC_STATE_COOKIE: &str = "__Host-smithers-oidc-state";

/// `GET /sign-in/oidc`: begins an OpenID Connect sign-in. A `303` to the
/// provider's authorization endpoint, setting the state cookie; a page
/// saying why when no provider is configured (404) or it cannot be
/// reached (503).
pub async fn oidc_begin(State(state): State<ServerState>) -> Response {
    let Some(oidc) = state.settings.oidc.clone() else {
        return page::message(
            StatusCode::NOT_FOUND,
            "No OpenID Connect sign-in",
            "This server signs people in with one-time links only (`smithers serve --oidc-issuer` adds a provider).",
        );
    };
    match oidc.begin(&state.app).await {
        Ok(started) => {
            let max_age = seconds(OIDC_SIGN_IN_TTL);
            redirect(
                &[state_cookie(OIDC_STATE_COOKIE, &started.state, max_age)],
                &started.url,
            )
        }
        Err(e) => refused_page(&e, &oidc.issuer_host()),
    }
}

/// `?code=…&state=…[&iss=…]`, or `?error=…[&error_description=…]&state=…`
/// (RFC 6749 §4.1.2, RFC 9207).
#[derive(Debug, Deserialize)]
pub struct OidcCallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// `GET /sign-in/oidc/callback`: where the provider sends the browser
/// back. Opens a session, sets its cookie and sends the browser to `/`; a
/// refusal (the provider's, a state used before, forged or from another
/// browser, a token that does not verify, a person who is no user) is a
/// page saying why (401; 503 when the provider cannot be reached). The
/// state cookie is cleared either way.
pub async fn oidc_callback(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<OidcCallbackQuery>,
) -> Response {
    let Some(oidc) = state.settings.oidc.clone() else {
        return page::message(
            StatusCode::NOT_FOUND,
            "No OpenID Connect sign-in",
            "This server signs people in with one-time links only.",
        );
    };
    let callback = OidcCallback {
        code: query.code,
        state: query.state,
        error: query.error,
        error_description: query.error_description,
        iss: query.iss,
        browser_state: cookie_value(&headers, OIDC_STATE_COOKIE),
    };
    let client = client(peer, &headers);
    let finished = oidc.finish(&state.app, &callback, &client).await;
    signed_in_or_refused(finished, OIDC_STATE_COOKIE, &oidc.issuer_host())
}

/// The cookie that binds a GitHub sign-in to the browser that began it:
/// the `state`, for as long as the sign-in lasts. Not the OpenID Connect
/// one, so that the two flows begun in one browser do not undo each
/// other.
pub const GITHUB_STATE_COOKIE: &str = "__Host-smithers-github-state";

/// `GET /sign-in/github`: begins a GitHub sign-in. A `303` to GitHub's
/// authorization page, setting the state cookie; a page saying why when
/// no GitHub App is configured (404).
pub async fn github_begin(State(state): State<ServerState>) -> Response {
    let Some(github) = state.settings.github.clone() else {
        return page::message(
            StatusCode::NOT_FOUND,
            "No GitHub sign-in",
            "This server does not sign people in with GitHub (`smithers serve --github-client-id` adds it).",
        );
    };
    match github.begin(&state.app).await {
        Ok(started) => {
            let max_age = seconds(GITHUB_SIGN_IN_TTL);
            redirect(
                &[state_cookie(GITHUB_STATE_COOKIE, &started.state, max_age)],
                &started.url,
            )
        }
        Err(e) => refused_page(&e, &github.provider_name()),
    }
}

/// `?code=…&state=…`, or `?error=…[&error_description=…]&state=…` (RFC
/// 6749 §4.1.2; GitHub adds `error_uri`, which is not read).
#[derive(Debug, Deserialize)]
pub struct GithubCallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /sign-in/github/callback`: where GitHub sends the browser back.
/// Opens a session, sets its cookie and sends the browser to `/`; a
/// refusal (GitHub's, a state used before, forged or from another
/// browser, a code GitHub does not redeem, a GitHub user who is no user
/// here) is a page saying why (401; 503 when GitHub cannot be reached).
/// The state cookie is cleared either way.
pub async fn github_callback(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<GithubCallbackQuery>,
) -> Response {
    let Some(github) = state.settings.github.clone() else {
        return page::message(
            StatusCode::NOT_FOUND,
            "No GitHub sign-in",
            "This server does not sign people in with GitHub.",
        );
    };
    let callback = GithubCallback {
        code: query.code,
        state: query.state,
        error: query.error,
        error_description: query.error_description,
        browser_state: cookie_value(&headers, GITHUB_STATE_COOKIE),
    };
    let client = client(peer, &headers);
    let finished = github.finish(&state.app, &callback, &client).await;
    signed_in_or_refused(finished, GITHUB_STATE_COOKIE, &github.provider_name())
}

/// How a provider's callback ends: the session's cookie and `/`, or the
/// page saying why; the state cookie `state_name` cleared either way.
fn signed_in_or_refused(
    finished: Result<OpenedSession, smithers_api::Error>,
    state_name: &'static str,
    provider: &str,
) -> Response {
    match finished {
        Ok(opened) => redirect(
            &[
                session_cookie(&opened.secret, seconds(SESSION_TTL)),
                state_cookie(state_name, "", 0),
            ],
            "/",
        ),
        Err(e) => {
            let mut response = refused_page(&e, provider);
            clear_state_cookie(&mut response, state_name);
            response
        }
    }
}

/// A cookie's `Max-Age` for `ttl`, in whole seconds.
fn seconds(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)
}

/// Adds the removal of state cookie `name` to `response`.
fn clear_state_cookie(response: &mut Response, name: &'static str) {
    if let Ok(value) = HeaderValue::from_str(&state_cookie(name, "", 0).to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The page for a refused OpenID Connect or GitHub sign-in.
fn refused_page(e: &smithers_api::Error, provider: &str) -> Response {
    let status = StatusCode::from_u16(e.kind.http_status())
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::UNAUTHORIZED);
    page::message(
        status,
        "Sign-in refused",
        &format!(
            "{}. Start again from the sign-in page to sign in with {provider}.",
            e.message.trim_end_matches('.')
        ),
    )
}

/// A state cookie `name`: like the session's (`__Host-`, `Secure`,
/// `HttpOnly`, `Path=/`), `SameSite=Lax` so that the provider's redirect
/// back (a top-level navigation from another site) carries it.
fn state_cookie(name: &'static str, state: &str, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, state.to_string()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
}

/// `303 See Other` to `to`, setting `cookies`.
fn redirect(cookies: &[Cookie<'static>], to: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(to) else {
        return page::message(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            "The provider's authorization URL cannot be sent to a browser.",
        );
    };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
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
