//! Stacks: the chains of pull requests the GitHub App opened — the list
//! (the ones kept current, or every one), a stack's page with its members
//! bottom first, and the sync that lets a paused stack go on from the
//! branches as a person left them. The same service calls as
//! `smithers stacks list|show|sync`; the service decides who may.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use smithers_api::{Stack, StackMember};

use super::{Viewer, ago, frame, refusal};
use crate::ServerState;

/// `?all=`: finished and superseded stacks too.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /stacks`: newest first, as many as the service gives at once
/// (it has no pages).
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let limit = smithers_app::MAX_STACKS;
    let stacks = match state
        .app
        .stacks()
        .list(&viewer.principal, query.all, limit)
        .await
    {
        Ok(stacks) => stacks,
        Err(e) => return refusal(&e),
    };
    let full = stacks.len() >= limit as usize;
    let body = html! {
        h1 { "Stacks" }
        // What waits for a person comes first, as on the GitHub page.
        @for s in stacks.iter().filter(|s| s.state == "paused") {
            p.notice.error {
                a href=(format!("/stacks/{}", s.id)) { "Stack on " (s.repository) } " is paused"
                @if let Some(reason) = &s.paused_reason { ": " (reason) }
            }
        }
        p.muted {
            @if query.all { a href="/stacks" { "Active and paused only" } }
            @else { a href="/stacks?all=true" { "Every stack" } }
        }
        @if stacks.is_empty() {
            p.muted {
                @if query.all { "The GitHub App has opened no stack of pull requests." }
                @else { "No stack of pull requests is kept current now." }
            }
        } @else {
            table {
                thead { tr { th { "Stack" } th { "Repository" } th { "Run" } th { "State" } th { "Pull requests, bottom first" } th { "Updated" } } }
                tbody {
                    @for s in &stacks {
                        tr id=(format!("stack-{}", s.id)) {
                            td { a href=(format!("/stacks/{}", s.id)) { code { (s.id) } } }
                            td { code { (s.repository) } }
                            td { a href=(format!("/runs/{}", s.run)) { code { (s.run) } } }
                            td {
                                span class=(format!("state {}", s.state)) { (s.state) }
                                @if let Some(reason) = &s.paused_reason { br; span.muted { (reason) } }
                            }
                            td {
                                @for m in &s.members {
                                    div { (pull(m)) " " code { (m.branch) } " (" (m.state) ")" }
                                }
                            }
                            td { (ago(s.updated_at)) }
                        }
                    }
                }
            }
        }
        @if full {
            p.muted { "Only the newest " (limit) " are shown: " code { "smithers stacks list --all --json" } " reads them too." }
        }
    };
    frame(&viewer, "/stacks", "Stacks", body).into_response()
}

/// `?synced=`: a sync was just asked for.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    synced: bool,
}

/// `GET /stacks/{id}`.
pub async fn show(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let stack = match state.app.stacks().show(&viewer.principal, &id).await {
        Ok(stack) => stack,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Stack " code { (stack.id) } " " span class=(format!("state {}", stack.state)) { (stack.state) } }
        @if query.synced {
            p.notice.ok { "Sync asked for: the GitHub App takes the branches as they are at its next pass." }
        }
        @if stack.state == "paused" {
            p.notice.error {
                strong { "Paused" }
                @if let Some(reason) = &stack.paused_reason { ": " (reason) }
            }
        }
        (facts(&stack))
        h2 { "Pull requests, bottom first" }
        table {
            thead { tr { th { "#" } th { "Pull request" } th { "Branch" } th { "Title" } th { "State" } th { "Based on" } th { "Head" } th { "Built on" } } }
            tbody {
                @for (i, m) in stack.members.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { (pull(m)) }
                        td { code { (m.branch) } }
                        td { (m.title) }
                        td { span class=(format!("state {}", m.state)) { (m.state) } }
                        td { @if let Some(base) = &m.based_on { code { (base) } } @else { span.muted { "—" } } }
                        td { code title=(m.head) { (short(&m.head)) } }
                        td { code title=(m.built_on) { (short(&m.built_on)) } }
                    }
                }
            }
        }
        @if matches!(stack.state.as_str(), "active" | "paused") {
            h2 { "Sync" }
            p {
                "Take the branches as they are on GitHub: a person's push onto one becomes that pull request's, \
                 and the pull requests above are restacked onto it."
            }
            // Just asked for, the notice above says so already.
            @if stack.sync_requested && !query.synced {
                p.muted { "A sync is already asked for: the GitHub App carries it out at its next pass." }
            }
            form.inline method="post" action=(format!("/stacks/{}/sync", stack.id)) {
                button type="submit" { "Sync" }
            }
        }
    };
    frame(&viewer, "/stacks", &format!("Stack {}", stack.id), body).into_response()
}

/// Where the stack is and what it stands on.
fn facts(stack: &Stack) -> Markup {
    html! {
        dl.facts {
            dt { "Repository" } dd { code { (stack.repository) } }
            dt { "Run" } dd { a href=(format!("/runs/{}", stack.run)) { code { (stack.run) } } }
            dt { "Base" } dd { code { (stack.base) } }
            dt { "Sync asked for" } dd { @if stack.sync_requested { "yes, not carried out yet" } @else { "no" } }
            dt { "Created" } dd { (stack.created_at) }
            dt { "Updated" } dd { (ago(stack.updated_at)) " (" (stack.updated_at) ")" }
        }
    }
}

/// A member's pull request: `#N`, or none yet.
fn pull(m: &StackMember) -> Markup {
    html! {
        @match m.pull {
            Some(n) => { "#" (n) },
            None => span.muted { "not opened yet" },
        }
    }
}

/// A commit's name short enough for a table; the whole is its title.
fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// `POST /stacks/{id}/sync`: back to the stack's page, which says the
/// sync is asked for.
pub async fn sync(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.app.stacks().sync(&viewer.principal, &id).await {
        Ok(stack) => {
            let id: String = form_urlencoded::byte_serialize(stack.id.as_bytes()).collect();
            Redirect::to(&format!("/stacks/{id}?synced=true")).into_response()
        }
        Err(e) => refusal(&e),
    }
}
