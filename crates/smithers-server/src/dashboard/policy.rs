//! The organization's policy: the version in force with its text (or any
//! version), its history, a line diff between two versions, and for an
//! admin the forms to publish a new version and to unpublish. A text that
//! does not parse or whose inline tests fail is not published: the page
//! shows the diagnostics beside the text, to correct it.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};
use smithers_api::{Error, ErrorKind, PolicyState, PolicyVersion, Role};

use super::{Viewer, frame, refusal};
use crate::ServerState;

/// The name diagnostics give a text published here.
const FILE: &str = "policy";

/// The links between the policy's pages.
fn subnav(here: &str) -> Markup {
    let links = [("/policy", "In force"), ("/policy/history", "History")];
    html! {
        nav.sub {
            @for (href, name) in links {
                a href=(href) class=[(href == here).then_some("here")] { (name) }
            }
        }
    }
}

/// `?version=&done=`: a version other than the one in force; what was
/// just done.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    version: Option<u32>,
    done: Option<String>,
}

/// `GET /policy`: the policy in force (or `version`) with its text; an
/// admin's forms.
pub async fn show(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(_) => return refusal(&Error::invalid("a version is a whole number")),
    };
    let shown = match state
        .app
        .policies()
        .show(&viewer.principal, q.version)
        .await
    {
        Ok(v) => Some(v),
        // None in force is a state of the organization, not a failure:
        // the page says so and offers to publish one.
        Err(e) if e.kind == ErrorKind::NotFound && q.version.is_none() => None,
        Err(e) => return refusal(&e),
    };
    let admin = viewer.principal.role == Role::Admin;
    let notice = match q.done.as_deref() {
        Some("published") => Some("Published: runs from now on are bounded by this version."),
        Some("unpublished") => {
            Some("Unpublished: runs are bounded by their repositories' policies alone.")
        }
        _ => None,
    };
    let in_force = q.version.is_none();
    let body = html! {
        h1 { @if let Some(v) = q.version { "Policy version " (v) } @else { "Policy in force" } }
        (subnav(if in_force { "/policy" } else { "" }))
        @if let Some(notice) = notice { p.notice.ok { (notice) } }
        p.muted { "The organization's policy bounds every repository's policy: a tool call is decided by both, and the more restrictive decision wins." }
        @match &shown {
            Some(v) => {
                (facts(v))
                @if let Some(text) = &v.text { pre.policy { (text) } }
                @else { p.muted { "This version unpublished the policy: it has no text." } }
            },
            None => p.muted { "No policy is in force: each run is decided by its repository's policy alone." },
        }
        @if admin && in_force {
            (publish_form(shown.as_ref().and_then(|v| v.text.as_deref()).unwrap_or_default()))
            @if shown.is_some() {
                h2 { "Unpublish" }
                form.inline method="post" action="/policy/unpublish" {
                    button.danger type="submit" { "Unpublish the policy" }
                }
            }
        }
    };
    frame(&viewer, "/policy", "Policy", body).into_response()
}

fn facts(v: &PolicyVersion) -> Markup {
    html! {
        dl.facts {
            dt { "Version" } dd { (v.version) " " span class=(format!("state {}", state_name(v.state))) { (state_name(v.state)) } }
            dt { "By" } dd { (v.created_by) }
            dt { "At" } dd { (v.created_at) }
            @if let Some(sha) = &v.sha256 { dt { "SHA-256" } dd { code { (sha) } } }
        }
    }
}

fn state_name(s: PolicyState) -> &'static str {
    match s {
        PolicyState::Published => "published",
        _ => "unpublished",
    }
}

/// The publish form, holding `text`.
fn publish_form(text: &str) -> Markup {
    html! {
        h2 { "Publish a new version" }
        form.stack method="post" action="/policy" {
            textarea.policy name="text" required spellcheck="false" { (text) }
            div { button type="submit" { "Publish" } }
        }
        p.muted { "It is checked as " code { "smithers policy check" } " checks a file — it must parse and its inline tests must pass — and recorded in the audit log." }
    }
}

/// The publish form's field.
#[derive(Debug, Default, Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    text: String,
}

/// `POST /policy`: publishes the text as the next version.
pub async fn publish(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<PublishForm>, FormRejection>,
) -> Response {
    let text = match form {
        Ok(Form(f)) => f.text,
        Err(e) => return refusal(&Error::invalid(format!("the form: {}", e.body_text()))),
    };
    // Browsers send a textarea's line breaks as CR LF.
    let text = text.replace("\r\n", "\n");
    match state
        .app
        .policies()
        .publish(&viewer.principal, FILE, &text)
        .await
    {
        Ok(_) => Redirect::to("/policy?done=published").into_response(),
        // The diagnostics point at lines of the text: show them beside it,
        // kept, to correct.
        Err(e) if e.kind == ErrorKind::Invalid => {
            let body = html! {
                h1 { "Not published" }
                (subnav(""))
                p.notice.error { "The text is not a valid policy, or one of its inline tests fails; nothing was published." }
                pre { (e.message) }
                (publish_form(&text))
            };
            (
                StatusCode::BAD_REQUEST,
                frame(&viewer, "/policy", "Not published", body),
            )
                .into_response()
        }
        Err(e) => refusal(&e),
    }
}

/// `POST /policy/unpublish`.
pub async fn unpublish(State(state): State<ServerState>, viewer: Viewer) -> Response {
    match state.app.policies().unpublish(&viewer.principal).await {
        Ok(_) => Redirect::to("/policy?done=unpublished").into_response(),
        Err(e) => refusal(&e),
    }
}

/// `GET /policy/history`: every version, newest first, and the form that
/// compares two.
pub async fn history(State(state): State<ServerState>, viewer: Viewer) -> Response {
    let mut versions = match state.app.policies().history(&viewer.principal).await {
        Ok(versions) => versions,
        Err(e) => return refusal(&e),
    };
    versions.reverse();
    let newest = versions.first().map(|v| v.version);
    let before = versions.get(1).map(|v| v.version);
    let body = html! {
        h1 { "Policy history" }
        (subnav("/policy/history"))
        @if versions.is_empty() {
            p.muted { "No version has been published." }
        } @else {
            form.filters method="get" action="/policy/diff" {
                label { "Compare version " (choose("from", &versions, before.or(newest))) }
                label { " with " (choose("to", &versions, newest)) }
                button type="submit" { "Show the changes" }
            }
            table {
                thead { tr { th { "Version" } th { "State" } th { "By" } th { "At" } th { "SHA-256" } } }
                tbody {
                    @for v in &versions {
                        tr {
                            td { a href=(format!("/policy?version={}", v.version)) { (v.version) } }
                            td { span class=(format!("state {}", state_name(v.state))) { (state_name(v.state)) } }
                            td { (v.created_by) }
                            td { (v.created_at) }
                            td { @if let Some(sha) = &v.sha256 { code { (sha.get(..16).unwrap_or(sha)) "…" } } }
                        }
                    }
                }
            }
        }
    };
    frame(&viewer, "/policy", "Policy history", body).into_response()
}

fn choose(name: &str, versions: &[PolicyVersion], selected: Option<u32>) -> Markup {
    html! {
        select name=(name) {
            @for v in versions {
                option value=(v.version) selected[Some(v.version) == selected] {
                    "v" (v.version) @if v.state == PolicyState::Unpublished { " (unpublished)" }
                }
            }
        }
    }
}

/// `?from=&to=` of a diff.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: u32,
    to: u32,
}

/// `GET /policy/diff?from=&to=`: the lines `to` removed from and added
/// to `from`'s text, with three lines of context (an unpublishing
/// version counts as no text).
pub async fn diff(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return refusal(&Error::invalid(
            "a diff needs two versions: ?from=N&to=M, whole numbers",
        ));
    };
    let policies = state.app.policies();
    let mut texts = Vec::with_capacity(2);
    for version in [q.from, q.to] {
        match policies.show(&viewer.principal, Some(version)).await {
            Ok(v) => texts.push(v.text.unwrap_or_default()),
            Err(e) => return refusal(&e),
        }
    }
    let (old, new) = (&texts[0], &texts[1]);
    let diff = TextDiff::from_lines(old.as_str(), new.as_str());
    let groups = diff.grouped_ops(3);
    let body = html! {
        h1 { "Policy: version " (q.from) " → version " (q.to) }
        (subnav(""))
        @if groups.is_empty() {
            p.muted { "The two versions' texts are the same." }
        } @else {
            pre.diff {
                @for (i, group) in groups.iter().enumerate() {
                    @if i > 0 { span.hunk { "…" } "\n" }
                    @for op in group {
                        @for change in diff.iter_changes(op) {
                            @let (class, sign) = match change.tag() {
                                ChangeTag::Insert => ("add", "+"),
                                ChangeTag::Delete => ("del", "-"),
                                ChangeTag::Equal => ("", " "),
                            };
                            span class=(class) { (sign) (change.value().trim_end_matches('\n')) } "\n"
                        }
                    }
                }
            }
        }
        p { a href="/policy/history" { "Back to the history" } }
    };
    frame(&viewer, "/policy", "Policy diff", body).into_response()
}
