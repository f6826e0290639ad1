//! Secrets and grants. The secrets' metadata — names, environments,
//! versions, the key wrapping each — and never a value: no call here can
//! read one (a value goes only into a sandbox, or to the command line's
//! own pipe). The grants to read a secret, with approve and deny (a
//! reason required) for whoever may decide: an admin other than the
//! requester, as the service layer decides; others get no buttons, and a
//! refusal if they post anyway.

use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use smithers_api::{Error, Grant, GrantState, Role};

use super::{Viewer, ago, frame, refusal, until};
use crate::ServerState;

/// The links between the secrets' pages.
fn subnav(here: &str) -> Markup {
    let links = [("/secrets", "Secrets"), ("/grants", "Grants")];
    html! {
        nav.sub {
            @for (href, name) in links {
                a href=(href) class=[(href == here).then_some("here")] { (name) }
            }
        }
    }
}

/// `?environment=` of the list (empty: every environment).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    environment: String,
}

/// `GET /secrets`: the organization's secrets, by environment then name.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let environment = Some(q.environment.trim()).filter(|e| !e.is_empty());
    let secrets = match state
        .app
        .secrets()
        .list(&viewer.principal, environment)
        .await
    {
        Ok(secrets) => secrets,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Secrets" }
        (subnav("/secrets"))
        p.muted { "Names and versions only: a value is never shown, here or anywhere else; it goes only into the sandbox of a run whose grant was approved." }
        form.filters method="get" action="/secrets" {
            input type="search" name="environment" placeholder="environment" value=(q.environment);
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "Environment" } th { "Name" } th { "Active version" } th { "Latest" } th { "Versions" } th { "Key" } th { "Updated" } } }
            tbody {
                @for s in &secrets {
                    tr {
                        td { code { (s.environment) } }
                        td { a href=(versions_href(&s.environment, &s.name)) { code { (s.name) } } }
                        td { @if let Some(v) = s.active_version { (v) } @else { span.muted { "none (every version destroyed)" } } }
                        td { (s.latest_version) }
                        td { (s.versions) }
                        td { @if let Some(key) = &s.key_id { code { (key) } } }
                        td { (s.updated_at) }
                    }
                }
            }
        }
        @if secrets.is_empty() { p.muted { "No secret matches." } }
    };
    frame(&viewer, "/secrets", "Secrets", body).into_response()
}

/// `/secrets/ENV/NAME`, each part escaped for a path.
fn versions_href(environment: &str, name: &str) -> String {
    let part = |s: &str| {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!("/secrets/{}/{}", part(environment), part(name))
}

/// `GET /secrets/{environment}/{name}`: every version of one secret,
/// oldest first.
pub async fn versions(
    State(state): State<ServerState>,
    viewer: Viewer,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((environment, name))) = path else {
        return refusal(&Error::invalid("the path names no secret"));
    };
    let versions = match state
        .app
        .secrets()
        .versions(&viewer.principal, &name, Some(&environment))
        .await
    {
        Ok(versions) => versions,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Secret " code { (name) } " in " code { (environment) } }
        (subnav(""))
        table {
            thead { tr { th { "Version" } th { "State" } th { "Key" } th { "Created" } th { "By" } th { "Deactivated" } th { "Destroyed" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.version) }
                        td { span class=(format!("state {}", v.state.as_str())) { (v.state.as_str()) } }
                        td { @if let Some(key) = &v.key_id { code { (key) } } }
                        td { (v.created_at) }
                        td { (v.created_by) }
                        td { @if let Some(at) = v.deactivated_at { (at) } }
                        td { @if let Some(at) = v.destroyed_at { (at) @if let Some(by) = &v.destroyed_by { " by " (by) } } }
                    }
                }
            }
        }
    };
    frame(&viewer, "/secrets", &format!("Secret {name}"), body).into_response()
}

/// `?all=&done=&id=` of the grants: every grant, not only open ones;
/// what was just decided.
#[derive(Debug, Default, Deserialize)]
pub struct GrantsQuery {
    #[serde(default)]
    all: bool,
    done: Option<String>,
    id: Option<String>,
}

/// `GET /grants`: the organization's grants, newest first — pending and
/// usable ones, or every one.
pub async fn grants(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<GrantsQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let grants = match state
        .app
        .secrets()
        .grants(&viewer.principal, None, None, q.all)
        .await
    {
        Ok(grants) => grants,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Grants" }
        (subnav("/grants"))
        @if let (Some(done), Some(id)) = (&q.done, &q.id) {
            p.notice.ok { "Grant " code { (id) } " " (done) "." }
        }
        p.muted {
            "A grant lets one run, or one person for a stated purpose, read one secret for a while. "
            @if q.all { a href="/grants" { "Open grants only" } }
            @else { a href="/grants?all=true" { "Every grant" } }
        }
        @if grants.is_empty() { p.muted { "No grant is open." } }
        @for grant in &grants {
            (card(&viewer, grant))
        }
    };
    frame(&viewer, "/secrets", "Grants", body).into_response()
}

/// One grant: what it opens, to whom, for how long; the decision forms
/// for whoever may decide.
fn card(viewer: &Viewer, g: &Grant) -> Markup {
    let me = &viewer.principal;
    let why_not = if me.role != Role::Admin {
        Some("Only an admin of the organization decides grants.")
    } else if g.requested_by == me.user {
        Some("You asked for this grant: another admin decides it.")
    } else {
        None
    };
    html! {
        section.card id=(format!("grant-{}", g.id)) {
            h2 {
                "Read " code { (g.name) } " in " code { (g.environment) } " "
                span class=(format!("state {}", g.state.as_str())) { (g.state.as_str()) }
            }
            dl.facts {
                dt { "Grant" } dd { code { (g.id) } }
                dt { "Asked by" } dd { (g.requested_by) " · " (ago(g.requested_at)) " ago (" (g.requested_at) ")" }
                @if let Some(run) = &g.run_id {
                    dt { "For run" } dd { a href=(format!("/runs/{run}")) { code { (run) } } }
                }
                dt { "Purpose" } dd { (g.purpose) }
                dt { "Lasts" } dd { (g.ttl_seconds) " s once approved" @if g.single_use { " · single use" } }
                @if let Some(by) = &g.decided_by {
                    dt { "Decided by" } dd { (by) @if let Some(c) = &g.comment { ": " (c) } }
                }
                @if let Some(at) = g.expires_at { dt { "Expires" } dd { (until(at)) " (" (at) ")" } }
                @if let Some(at) = g.used_at { dt { "Used" } dd { (at) } }
            }
            @if g.state == GrantState::Pending {
                @if let Some(why) = why_not {
                    p.muted { (why) }
                } @else {
                    form.decide method="post" action=(format!("/grants/{}/approve", g.id)) {
                        input type="text" name="comment" placeholder="Comment (optional)";
                        button.approve type="submit" { "Approve" }
                    }
                    form.decide method="post" action=(format!("/grants/{}/deny", g.id)) {
                        input type="text" name="reason" placeholder="Reason (required)" required;
                        button.reject type="submit" { "Deny" }
                    }
                }
            }
        }
    }
}

/// The fields of the approve and deny forms.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    reason: String,
}

/// `POST /grants/{id}/approve`.
pub async fn approve(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let comment = Some(form.comment.trim()).filter(|c| !c.is_empty());
    decide(&state, &viewer, &id, true, comment).await
}

/// `POST /grants/{id}/deny`: the service requires a reason.
pub async fn deny(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    decide(&state, &viewer, &id, false, reason).await
}

async fn decide(
    state: &ServerState,
    viewer: &Viewer,
    id: &str,
    approve: bool,
    note: Option<&str>,
) -> Response {
    match state
        .app
        .secrets()
        .decide_grant(&viewer.principal, id, approve, note)
        .await
    {
        Ok(grant) => {
            let mut url = form_urlencoded::Serializer::new(String::new());
            url.append_pair("done", grant.state.as_str())
                .append_pair("id", &grant.id);
            Redirect::to(&format!("/grants?{}", url.finish())).into_response()
        }
        Err(e) => refusal(&e),
    }
}
