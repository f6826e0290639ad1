//! The approvals inbox: what exactly each waiting run asks (the command,
//! the patch, the secrets), why the kernel asked, which run and step, who
//! started it, how long it has waited and when it expires; approve, or
//! reject with a reason. Who may not decide (the run's starter; a member,
//! for an admin-only approval) gets no buttons, and a refusal if they
//! post anyway — the service layer decides, as for the API.

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use smithers_api::{Approval, ApprovalState, Role};

use super::{Viewer, ago, frame, refusal, until};
use crate::ServerState;

/// `?all=&cursor=&done=&id=`: every approval, not only pending ones; the
/// page; what was just decided.
#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    all: bool,
    cursor: Option<String>,
    done: Option<String>,
    id: Option<String>,
}

/// `GET /approvals`.
pub async fn inbox(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = match state
        .app
        .approvals()
        .page(&viewer.principal, query.all, query.cursor.as_deref(), 50)
        .await
    {
        Ok(page) => page,
        Err(e) => return refusal(&e),
    };
    let approvals = page.items;
    let older = page.next.map(|cursor| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        if query.all {
            url.append_pair("all", "true");
        }
        url.append_pair("cursor", &cursor);
        format!("/approvals?{}", url.finish())
    });
    let body = html! {
        h1 { "Approvals" }
        @if let (Some(done), Some(id)) = (&query.done, &query.id) {
            p.notice.ok { "Approval " code { (id) } " " (done) "." }
        }
        p.muted {
            @if query.all { a href="/approvals" { "Pending only" } }
            @else { a href="/approvals?all=true" { "Every approval" } }
        }
        @if approvals.is_empty() {
            p.muted { "Nothing waits for a decision." }
        }
        @for approval in &approvals {
            (card(&viewer, approval))
        }
        @if let Some(older) = older { p { a href=(older) { "Older approvals →" } } }
    };
    frame(&viewer, "/approvals", "Approvals", body).into_response()
}

/// One approval: what is asked, why, where, who, how long; the decision
/// forms for whoever may decide.
fn card(viewer: &Viewer, a: &Approval) -> Markup {
    let me = &viewer.principal;
    let why_not = if a.requested_by == me.user {
        Some("You started this run: another user decides its approvals.")
    } else if a.admin_only && me.role != Role::Admin {
        Some("Only an admin of the organization decides this approval.")
    } else {
        None
    };
    let details = &a.details;
    html! {
        section.card id=(format!("approval-{}", a.id)) data-approval=(a.id) {
            h2 { (a.summary) " " span class=(format!("state {}", a.state.as_str())) { (a.state.as_str()) } }
            dl.facts {
                dt { "Run" } dd { a href=(format!("/runs/{}", a.run)) { code { (a.run) } } " · " (a.workflow) " · step " (a.position + 1) }
                dt { "Started by" } dd { (a.requested_by) }
                @if let Some(role) = &a.role { dt { "Asked by" } dd { "agent role " (role) } }
                dt { "Kind" } dd { (kind(a)) @if a.admin_only { " · " strong { "admin-only" } } }
                dt { "Waiting" } dd { (ago(a.created_at)) " (since " (a.created_at) ")" }
                @if let Some(expires) = a.expires_at { dt { "Expires" } dd { (until(expires)) " (" (expires) ")" } }
                @if let Some(reason) = details.get("reason").and_then(Value::as_str) {
                    dt { "Why asked" } dd { (reason) }
                }
                @if let Some(by) = &a.decided_by {
                    dt { "Decided by" } dd { (by) @if let Some(c) = &a.comment { ": " (c) } }
                }
            }
            (asked(details))
            @if a.state == ApprovalState::Pending {
                @if let Some(why) = why_not {
                    p.muted { (why) }
                } @else {
                    form.decide method="post" action=(format!("/approvals/{}/approve", a.id)) {
                        input type="text" name="comment" placeholder="Comment (optional)";
                        button.approve type="submit" { "Approve" }
                    }
                    form.decide method="post" action=(format!("/approvals/{}/reject", a.id)) {
                        input type="text" name="reason" placeholder="Reason (required)" required;
                        button.reject type="submit" { "Reject" }
                    }
                }
            }
        }
    }
}

fn kind(a: &Approval) -> &'static str {
    match a.details.get("gate").and_then(Value::as_str) {
        Some("secrets") => "release of secrets",
        Some(_) => "step gate",
        None => "tool call",
    }
}

/// Exactly what is asked, from what the run recorded: the command, the
/// patch (as a diff), the branch, the secrets' grants, the tool's other
/// arguments.
fn asked(details: &Value) -> Markup {
    let arguments = details.get("arguments");
    let text = |key: &str| arguments.and_then(|a| a.get(key)).and_then(Value::as_str);
    html! {
        @if let Some(tool) = details.get("tool").and_then(Value::as_str) {
            p { "Tool: " code { (tool) } }
        }
        @if let Some(command) = text("command") {
            p { "Command line:" }
            pre { (command) }
        }
        @if let Some(patch) = text("patch").or_else(|| text("diff")) {
            p { "Patch:" }
            pre.diff {
                @for line in patch.lines() {
                    @let class = if line.starts_with('+') && !line.starts_with("+++") { "add" }
                        else if line.starts_with('-') && !line.starts_with("---") { "del" } else { "" };
                    span class=(class) { (line) } "\n"
                }
            }
        }
        @if let Some(branch) = text("branch") {
            p { "Branch: " code { (branch) } }
        }
        @if let Some(grants) = details.get("grants").and_then(Value::as_array) {
            p { "Secret grants: " @for g in grants { code { (g.as_str().unwrap_or_default()) } " " } }
        }
        @if let Some(arguments) = arguments.filter(|a| text("command").is_none() && text("patch").is_none() && !a.is_null()) {
            p { "Arguments:" }
            pre { (serde_json::to_string_pretty(arguments).unwrap_or_default()) }
        }
    }
}

/// The approve form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    comment: String,
}

/// The reject form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
}

/// `POST /approvals/{id}/approve`.
pub async fn approve(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<ApproveForm>,
) -> Response {
    let comment = Some(form.comment.trim()).filter(|c| !c.is_empty());
    decide(&state, &viewer, &id, true, comment).await
}

/// `POST /approvals/{id}/reject`: a reason is required.
pub async fn reject(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RejectForm>,
) -> Response {
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
        .approvals()
        .decide(&viewer.principal, id, approve, note)
        .await
    {
        Ok(decided) => Redirect::to(&format!(
            "/approvals?done={}&id={}",
            decided.state.as_str(),
            decided.id
        ))
        .into_response(),
        Err(e) => refusal(&e),
    }
}
