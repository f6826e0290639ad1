//! Runs: the list with its filters, and a run's page — its steps, every
//! tool call with the kernel's decision and the rule that made it, its
//! approvals, model turns, the sandbox's purge, and its log, followed live
//! (the page's script reads the run's Server-Sent Events from where the
//! page stopped); cancel and resume.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use smithers_api::{EventCursor, LogStream, RunEvent, RunState};
use smithers_app::RunQuery;

use super::{Viewer, frame, refusal};
use crate::ServerState;

/// The run list's filters, as the form sends them (empty: any).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    requested_by: String,
    cursor: Option<String>,
}

const STATES: [RunState; 7] = [
    RunState::Queued,
    RunState::Running,
    RunState::WaitingApproval,
    RunState::Succeeded,
    RunState::Failed,
    RunState::Cancelled,
    RunState::TimedOut,
];

/// `GET /runs`: every run (finished ones too), newest first, 50 a page.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let run_state = STATES.iter().copied().find(|s| s.as_str() == q.state);
    let query = RunQuery {
        all: true,
        state: run_state,
        workflow: some(&q.workflow),
        repository: some(&q.repository),
        requested_by: some(&q.requested_by),
        cursor: q.cursor.clone(),
        limit: 50,
    };
    let page = match state.app.runs().page(&viewer.principal, &query).await {
        Ok(page) => page,
        Err(e) => return refusal(&e),
    };
    let next = page.next.as_ref().map(|cursor| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("state", &q.state)
            .append_pair("workflow", &q.workflow)
            .append_pair("repository", &q.repository)
            .append_pair("requested_by", &q.requested_by)
            .append_pair("cursor", cursor);
        format!("/runs?{}", url.finish())
    });
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            select name="state" {
                option value="" { "any state" }
                @for s in STATES {
                    option value=(s.as_str()) selected[run_state == Some(s)] { (s.as_str()) }
                }
            }
            input type="search" name="workflow" placeholder="workflow" value=(q.workflow);
            input type="search" name="repository" placeholder="repository" value=(q.repository);
            input type="search" name="requested_by" placeholder="started by" value=(q.requested_by);
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th { "Run" } th { "Workflow" } th { "Repository" } th { "State" } th { "Started by" } th { "Created" } } }
            tbody {
                @for run in &page.items {
                    tr {
                        td { a href=(format!("/runs/{}", run.id)) { code { (run.id) } } }
                        td { (run.workflow) }
                        td { code { (run.repository) } }
                        td { span class=(format!("state {}", run.state.as_str())) { (run.state.as_str()) } }
                        td { (run.requested_by) }
                        td { (run.created_at) }
                    }
                }
            }
        }
        @if page.items.is_empty() { p.muted { "No run matches." } }
        @if let Some(next) = next { p { a href=(next) { "Older runs →" } } }
    };
    frame(&viewer, "/runs", "Runs", body).into_response()
}

/// `GET /runs/{id}`.
pub async fn show(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let runs = state.app.runs();
    let run = match runs.show(&viewer.principal, &id).await {
        Ok(run) => run,
        Err(e) => return refusal(&e),
    };
    // The log so far and where it stops: the live stream carries on from
    // there, with nothing missed and nothing twice.
    let mut lines = Vec::new();
    let mut cursor = EventCursor::default();
    loop {
        let read = match runs.events(&viewer.principal, &id, cursor, 5000).await {
            Ok(read) => read,
            Err(e) => return refusal(&e),
        };
        let more = !read.events.is_empty();
        for e in read.events {
            if let Ok(c) = e.cursor.parse() {
                cursor = c;
            }
            if let RunEvent::Log(line) = e.event {
                lines.push(line);
            }
        }
        if !more || lines.len() >= 50_000 {
            break;
        }
    }
    let finished = run.state.is_finished();
    // The chain of pull requests the run delivered, if any: a paused one
    // says here why it waits (a token without runs:read never gets here).
    let stack = state
        .app
        .stacks()
        .of_run(&viewer.principal, &id)
        .await
        .unwrap_or_default();
    let body = html! {
        h1 { "Run " code { (run.id) } " " span #run-state class=(format!("state {}", run.state.as_str())) { (run.state.as_str()) } }
        dl.facts {
            dt { "Workflow" } dd { (run.workflow) }
            dt { "Repository" } dd { code { (run.repository) } }
            dt { "Started by" } dd { (run.requested_by) " (" (run.trigger) ")" }
            dt { "Created" } dd { (run.created_at) }
            @if let Some(at) = run.finished_at { dt { "Finished" } dd { (at) } }
            @if let Some(error) = &run.error { dt { "Error" } dd { (error) } }
            dt { "Sandbox" } dd { (run.sandbox.provider) @if let Some(image) = &run.sandbox.image { " · " code { (image) } } }
            dt { "Policies" } dd {
                "repository " code { (run.policies.repository) }
                @if let Some(v) = run.policies.organization_version { " · organization v" (v) }
            }
            @if let Some(purge) = &run.purge {
                dt { "Sandbox purge" } dd {
                    @if purge.get("clean").and_then(serde_json::Value::as_bool) == Some(true) { "clean" } @else { strong { "not clean" } }
                    " · " code { (purge) }
                }
            }
        }
        @if let Some(stack) = &stack {
            @if let Some(reason) = &stack.paused_reason {
                p.notice.error {
                    "Its pull requests' stack is paused: " (reason) " — "
                    a href=(format!("/stacks/{}", stack.id)) { "see the stack" }
                }
            }
            p {
                "Delivered as a stack of pull requests ("
                a href=(format!("/stacks/{}", stack.id)) { code { (stack.id) } }
                ", " (stack.state) "): "
                @for (i, m) in stack.members.iter().enumerate() {
                    @if i > 0 { " ← " }
                    @match m.pull { Some(n) => { "#" (n) }, None => { code { (m.branch) } } }
                }
            }
        }
        @if !finished {
            form.inline method="post" action=(format!("/runs/{}/cancel", run.id)) {
                button.danger type="submit" { "Cancel" }
            }
            " "
            form.inline method="post" action=(format!("/runs/{}/resume", run.id)) {
                button type="submit" { "Resume" }
            }
        }
        h2 { "Steps" }
        table {
            thead { tr { th { "#" } th { "Step" } th { "Kind" } th { "State" } th { "Attempts" } th { "Exit" } th { "Error" } } }
            tbody {
                @for s in &run.steps {
                    tr {
                        td { (s.position + 1) } td { (s.id) } td { (s.kind) }
                        td { span class=(format!("state {}", s.state.as_str())) { (s.state.as_str()) } }
                        td { (s.attempts) }
                        td { @if let Some(code) = s.exit_code { (code) } }
                        td { @if let Some(e) = &s.error { (e) } }
                    }
                }
            }
        }
        h2 { "Tool calls" }
        @if run.tool_calls.is_empty() { p.muted { "None." } }
        @else {
            table {
                thead { tr { th { "Step" } th { "Who" } th { "Tool" } th { "Asked" } th { "Decision" } th { "Rule" } th { "State" } } }
                tbody {
                    @for c in &run.tool_calls {
                        tr {
                            td { (c.position + 1) "." (c.attempt) "." (c.seq) }
                            td { (c.subject) }
                            td { code { (c.tool) } }
                            td { code { (c.decision.resource) } }
                            td { span class=(format!("state {}", c.decision.decision)) { (c.decision.decision) } br; span.muted { (c.decision.reason) } }
                            td { @if let Some(rule) = &c.decision.rule { code { (rule.text) } br; span.muted { (rule.file) ":" (rule.line) } } @else { span.muted { (c.decision.source) } } }
                            td { span class=(format!("state {}", c.state.as_str())) { (c.state.as_str()) } }
                        }
                    }
                }
            }
        }
        h2 { "Approvals" }
        @if run.approvals.is_empty() { p.muted { "None." } }
        @else {
            table {
                thead { tr { th { "Asked" } th { "State" } th { "Decided by" } th { "Comment" } } }
                tbody {
                    @for a in &run.approvals {
                        tr {
                            td { a href=(format!("/approvals?all=true#approval-{}", a.id)) { (a.summary) } }
                            td { span class=(format!("state {}", a.state.as_str())) { (a.state.as_str()) } }
                            td { @if let Some(by) = &a.decided_by { (by) } }
                            td { @if let Some(c) = &a.comment { (c) } }
                        }
                    }
                }
            }
        }
        @if !run.model_turns.is_empty() {
            h2 { "Model turns" }
            p.muted {
                @match run.history_destroyed_at {
                    Some(at) => { "The answers were sealed under the run's own key, destroyed when it ended (" (at) "): no one can read them any more." }
                    None => { "The answers are sealed under the run's own key, replayed if the run resumes, and destroyed with the key when it ends." }
                }
            }
            table {
                thead { tr { th { "Step" } th { "Turn" } th { "Model" } th { "Calls" } th { "Tokens in / out" } } }
                tbody {
                    @for t in &run.model_turns {
                        tr {
                            td { (t.position + 1) "." (t.attempt) } td { (t.turn) }
                            td { (t.driver) " · " (t.model) } td { (t.calls) }
                            td { (t.input_tokens.map(|n| n.to_string()).unwrap_or_else(|| "?".into())) " / " (t.output_tokens.map(|n| n.to_string()).unwrap_or_else(|| "?".into())) }
                        }
                    }
                }
            }
        }
        h2 { "Log " small #live.muted { @if finished { "the run has ended" } @else { "live" } } }
        (log(&run.id, &lines, cursor, finished))
    };
    frame(&viewer, "/runs", &format!("Run {}", run.id), body).into_response()
}

/// The log so far; unless the run has ended, the script follows its
/// events from `cursor`.
fn log(id: &str, lines: &[smithers_api::LogLine], cursor: EventCursor, finished: bool) -> Markup {
    let events = (!finished).then(|| format!("/api/v1/runs/{id}/events?after={cursor}"));
    html! {
        div.log #log data-events=[events] {
            @for line in lines {
                div class=(format!("line {}", stream(line.stream))) { (line.text) }
            }
        }
    }
}

fn stream(s: LogStream) -> &'static str {
    match s {
        LogStream::Stderr => "stderr",
        LogStream::Smithers => "smithers",
        _ => "stdout",
    }
}

/// `POST /runs/{id}/cancel`.
pub async fn cancel(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.app.runs().cancel(&viewer.principal, &id).await {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(e) => refusal(&e),
    }
}

/// `POST /runs/{id}/resume`: the server carries the run on.
pub async fn resume(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match state
        .app
        .runs()
        .launch(&viewer.principal, &id, &*state.pool)
        .await
    {
        Ok(_) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(e) => refusal(&e),
    }
}
