//! The dashboard: server-rendered pages over the same service calls as
//! the API, for the people who approve, administer and audit. A page needs
//! a signed-in session (without one the browser is sent to `/sign-in`); a
//! form posts back here and is refused unless it comes from these pages
//! (the same-origin check every change passes). What a run printed is
//! text: the pages are built with maud, which escapes every value, and
//! the one script appends live log lines as text nodes.

mod approvals;
mod audit;
mod github;
mod policy;
mod runs;
mod secrets;
mod stacks;
mod users;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use smithers_api::{Error, Role, Timestamp};
use smithers_app::{App, Principal};

use crate::auth::{same_origin, session_cookie};
use crate::page::{layout, message};
use crate::{ServerState, Settings};

/// The dashboard's routes.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in))
        .route("/static/smithers.css", get(css))
        .route("/static/smithers.js", get(script))
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/reject", post(approvals::reject))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/resume", post(runs::resume))
        .route("/secrets", get(secrets::list))
        .route("/secrets/{environment}/{name}", get(secrets::versions))
        .route("/grants", get(secrets::grants))
        .route("/grants/{id}/approve", post(secrets::approve))
        .route("/grants/{id}/deny", post(secrets::deny))
        .route("/audit", get(audit::search))
        .route("/audit/verify", get(audit::verify))
        .route("/audit/destinations", get(audit::destinations))
        .route("/audit/events/{seq}", get(audit::event))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{name}/role", post(users::set_role))
        .route("/users/{name}/remove", post(users::remove))
        .route("/tokens", get(users::tokens).post(users::create))
        .route("/tokens/{id}/revoke", post(users::revoke))
        .route("/policy", get(policy::show).post(policy::publish))
        .route("/policy/unpublish", post(policy::unpublish))
        .route("/policy/history", get(policy::history))
        .route("/policy/diff", get(policy::diff))
        .route("/github", get(github::status))
        .route("/stacks", get(stacks::list))
        .route("/stacks/{id}", get(stacks::show))
        .route("/stacks/{id}/sync", post(stacks::sync))
}

/// A signed-in person looking at the dashboard.
pub struct Viewer {
    pub principal: Principal,
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    Arc<App>: FromRef<S>,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Viewer, Response> {
        let app = Arc::<App>::from_ref(state);
        let settings = Arc::<Settings>::from_ref(state);
        let Some(secret) = session_cookie(&parts.headers) else {
            return Err(Redirect::to("/sign-in").into_response());
        };
        let found = match app.principal_from_session(&secret).await {
            Ok(found) => found,
            Err(_) => return Err(Redirect::to("/sign-in").into_response()),
        };
        if !parts.method.is_safe()
            && let Err(problem) = same_origin(&parts.headers, &settings)
        {
            return Err(refusal(&problem.0));
        }
        Ok(Viewer {
            principal: found.principal,
        })
    }
}

/// The pages' shared frame: the navigation, who is signed in (and a way
/// out), then `body`.
pub fn frame(viewer: &Viewer, here: &str, title: &str, body: Markup) -> Markup {
    let p = &viewer.principal;
    let links = [
        ("/approvals", "Approvals"),
        ("/runs", "Runs"),
        ("/secrets", "Secrets"),
        ("/audit", "Audit"),
        ("/users", "Users"),
        ("/policy", "Policy"),
        ("/github", "GitHub"),
        ("/stacks", "Stacks"),
    ];
    layout(
        title,
        html! {
            header.top {
                span.brand { "Smithers" }
                nav {
                    @for (href, name) in links {
                        a href=(href) class=[(href == here).then_some("here")] { (name) }
                    }
                }
                span.who {
                    span { (p.user) " · " (p.organization) " · " (role_name(p.role)) }
                    form.inline method="post" action="/sign-out" {
                        button type="submit" { "Sign out" }
                    }
                }
            }
            (body)
        },
    )
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        _ => "member",
    }
}

/// A refusal of the service layer as a page, with its HTTP status.
pub fn refusal(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    message(status, "Refused", &e.message)
}

/// `/`: the approvals inbox, the page most people come for.
async fn home(_viewer: Viewer) -> Redirect {
    Redirect::to("/approvals")
}

/// `/sign-in`: how to sign in here.
async fn sign_in(State(state): State<ServerState>) -> Response {
    let provider = state.settings.oidc.as_ref().map(|oidc| oidc.issuer_host());
    let github = state
        .settings
        .github
        .as_ref()
        .map(|github| github.provider_name());
    let page = layout(
        "Sign in",
        html! {
            h1 { "Sign in to Smithers" }
            @if let Some(provider) = &provider {
                p { a.button href="/sign-in/oidc" { "Sign in with " (provider) } }
            }
            @if let Some(github) = &github {
                p { a.button href="/sign-in/github" { "Sign in with " (github) } }
            }
            p {
                "Open the one-time link " code { "smithers serve" } " printed when it started, or ask whoever runs this server for one: "
                code { "smithers serve --new-sign-in-link --as YOUR_USER" } "."
            }
        },
    );
    page.into_response()
}

/// The stylesheet, built into the binary.
async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/smithers.css"),
    )
        .into_response()
}

/// The one script, built into the binary.
async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../static/smithers.js"),
    )
        .into_response()
}

/// Microseconds since the epoch, now.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How long ago `at` was, in the largest whole unit: `3 min`, `2 h`.
pub fn ago(at: Timestamp) -> String {
    span((now_micros() - at.0).max(0))
}

/// How long until `at`: `in 5 min`, or `passed`.
pub fn until(at: Timestamp) -> String {
    let left = at.0 - now_micros();
    if left <= 0 {
        "passed".into()
    } else {
        format!("in {}", span(left))
    }
}

fn span(micros: i64) -> String {
    let secs = micros / 1_000_000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}
