//! The audit log: its events searched by action, actor and time, a page
//! at a time with the service's cursor; whether the log verifies (hash
//! chain, Merkle roots, checkpoint signatures); one event with its
//! inclusion proof, checked; and the JSON Lines export (the API's route,
//! which takes the session cookie too). Reading the log is an admin's:
//! the service refuses anyone else, and the page says so.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use smithers_api::{AuditEvent, Error, Timestamp};
use smithers_app::AuditFilter;

use super::{Viewer, frame, refusal};
use crate::ServerState;

/// The links between the audit pages, and the export.
fn subnav(here: &str) -> Markup {
    let links = [
        ("/audit", "Events"),
        ("/audit/verify", "Verification"),
        ("/audit/destinations", "Destinations"),
    ];
    html! {
        nav.sub {
            @for (href, name) in links {
                a href=(href) class=[(href == here).then_some("here")] { (name) }
            }
            a href="/api/v1/audit/export" download="audit.jsonl" { "Export (JSON Lines)" }
        }
    }
}

/// The search as the form sends it (empty: any), where the page starts,
/// and the starts of the pages before it (`trail`), so that "older" can
/// go back: the service's cursor only goes forward.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    /// `YYYY-MM-DDTHH:MM[:SS]` (UTC), what a `datetime-local` input
    /// sends, or RFC 3339.
    #[serde(default)]
    since: String,
    cursor: Option<String>,
    /// The cursors of the earlier pages, oldest first, `.`-separated
    /// (cursors are base64url, which has no `.`); `-` for the first page,
    /// which has none.
    #[serde(default)]
    trail: String,
    limit: Option<u64>,
}

/// The instant a search's `since` names, in UTC.
///
/// Errors: `invalid` for text that is not a time.
fn since(text: &str) -> Result<Option<Timestamp>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // A `datetime-local` input leaves out the seconds when they are zero.
    let full = if text.len() == 16 {
        format!("{text}:00")
    } else {
        text.to_string()
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map(Some)
        .map_err(|_| {
            Error::invalid(format!(
                "since {text:?} is not a time: write 2026-01-31T09:00 (UTC) or RFC 3339"
            ))
        })
}

impl SearchQuery {
    /// This search's URL starting at `cursor`, with `trail` before it.
    fn url(&self, cursor: Option<&str>, trail: &[Option<String>]) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("action", &self.action)
            .append_pair("actor", &self.actor)
            .append_pair("since", &self.since);
        if let Some(limit) = self.limit {
            url.append_pair("limit", &limit.to_string());
        }
        if let Some(cursor) = cursor {
            url.append_pair("cursor", cursor);
        }
        if !trail.is_empty() {
            let text: Vec<&str> = trail.iter().map(|c| c.as_deref().unwrap_or("-")).collect();
            url.append_pair("trail", &text.join("."));
        }
        format!("/audit?{}", url.finish())
    }

    fn trail(&self) -> Vec<Option<String>> {
        if self.trail.is_empty() {
            return Vec::new();
        }
        self.trail
            .split('.')
            .map(|c| (c != "-" && !c.is_empty()).then(|| c.to_string()))
            .collect()
    }
}

/// `GET /audit`: the events matching the search, oldest first, a page at
/// a time.
pub async fn search(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return refusal(&Error::invalid(format!("the search: {}", e.body_text())));
        }
    };
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let since = match since(&q.since) {
        Ok(since) => since,
        Err(e) => return refusal(&e),
    };
    let filter = AuditFilter {
        action: some(&q.action),
        actor: some(&q.actor),
        since,
        limit: q.limit,
    };
    let page = match state
        .app
        .audit()
        .log_page(&viewer.principal, &filter, q.cursor.as_deref())
        .await
    {
        Ok(page) => page,
        Err(e) => return refusal(&e),
    };
    let trail = q.trail();
    let older = trail
        .split_last()
        .map(|(start, before)| q.url(start.as_deref(), before));
    let newer = page.next.as_deref().map(|next| {
        let mut longer = trail.clone();
        longer.push(q.cursor.clone());
        q.url(Some(next), &longer)
    });
    let body = html! {
        h1 { "Audit log" }
        (subnav("/audit"))
        form.filters method="get" action="/audit" {
            input type="search" name="action" placeholder="action (secret.read)" value=(q.action);
            input type="search" name="actor" placeholder="actor" value=(q.actor);
            label { "since (UTC) " input type="datetime-local" step="1" name="since" value=(q.since); }
            @if let Some(limit) = q.limit { input type="hidden" name="limit" value=(limit); }
            button type="submit" { "Search" }
        }
        (events(&page.items))
        @if page.items.is_empty() { p.muted { "No event matches." } }
        p.pager {
            @if let Some(older) = older { a href=(older) { "← Older" } }
            @if let Some(newer) = newer { a href=(newer) { "Newer →" } }
        }
    };
    frame(&viewer, "/audit", "Audit log", body).into_response()
}

fn events(events: &[AuditEvent]) -> Markup {
    html! {
        table {
            thead { tr { th { "#" } th { "Time" } th { "Actor" } th { "Action" } th { "Resource" } th { "Details" } } }
            tbody {
                @for e in events {
                    tr {
                        td { a href=(format!("/audit/events/{}", e.seq)) { (e.seq) } }
                        td { (e.time) }
                        td { span.muted { (e.actor_type.as_str()) ":" } (e.actor_id) }
                        td { code { (e.action) } }
                        td { (e.resource_type) " " code { (e.resource_id) } }
                        td { code.details { (e.details) } }
                    }
                }
            }
        }
    }
}

/// `GET /audit/verify`: whether the organization's log is intact.
pub async fn verify(State(state): State<ServerState>, viewer: Viewer) -> Response {
    let report = match state.app.audit().verify(&viewer.principal, &[]).await {
        Ok(report) => report,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Audit log verification" }
        (subnav("/audit/verify"))
        @if report.intact {
            p.notice.ok { "The log is intact: every event's hash chains to the one before, and every checkpoint's Merkle root and signature verify." }
        } @else {
            p.notice.error { "The log does not verify: it has been changed." }
        }
        @for log in &report.organizations {
            section.card {
                h2 { (log.organization) " " @if log.intact { span.state.succeeded { "intact" } } @else { span.state.failed { "not intact" } } }
                dl.facts {
                    @if let Some(n) = log.events { dt { "Events" } dd { (n) } }
                    @if let Some(n) = log.pruned { dt { "Dropped by retention" } dd { "events 1 to " (n) ", behind a signed prune base" } }
                    @if let Some(n) = log.checkpoints { dt { "Checkpoints" } dd { (n) } }
                    @if let Some(root) = &log.root { dt { "Merkle root" } dd { code { (root) } } }
                    @if let Some(seq) = log.seq { dt { "First bad event" } dd { a href=(format!("/audit/events/{seq}")) { (seq) } } }
                    @if let Some(problem) = &log.problem { dt { "Problem" } dd { (problem) } }
                }
            }
        }
    };
    frame(&viewer, "/audit", "Audit log verification", body).into_response()
}

/// `GET /audit/destinations`: where the log is streamed besides NATS, and
/// how far each destination is (lag, last success, last error, a gap,
/// whether it stopped). Adding, testing and removing are the command
/// line's (`smithers audit destinations`).
pub async fn destinations(State(state): State<ServerState>, viewer: Viewer) -> Response {
    let list = match state.app.audit_destinations().list(&viewer.principal).await {
        Ok(list) => list,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "Audit destinations" }
        (subnav("/audit/destinations"))
        p.muted { "Each destination has its own cursor over the log: delivery is at least once and in order, and one that is down only grows its lag. `smithers audit destinations add s3|datadog` adds one." }
        @if list.is_empty() {
            p { "No destination: the log stays in this server's database (and NATS, when configured)." }
        }
        @for d in &list {
            section.card {
                h2 {
                    (d.name) " " small.muted { (d.kind) " · " code { (d.id) } } " "
                    @match &d.stopped {
                        Some(_) => span.state.failed { "stopped" },
                        None if d.lag == 0 => span.state.succeeded { "up to date" },
                        None => span.state.running { "delivering" },
                    }
                }
                dl.facts {
                    dt { "Delivered through" } dd { (d.delivered_seq) " of " (d.log_seq) }
                    dt { "Lag" } dd { (d.lag) " event(s)" }
                    dt { "Last success" } dd { @match d.last_success_at { Some(t) => (t), None => "never" } }
                    @if let Some(why) = &d.stopped { dt { "Stopped" } dd { (why) } }
                    @if let Some(e) = &d.last_error { dt { "Last error" } dd { (e) } }
                    @if let Some(gap) = &d.last_gap { dt { "Gap" } dd { (gap) } }
                    @if let Some(bucket) = d.settings["bucket"].as_str() { dt { "Bucket" } dd { code { (bucket) } } }
                    @if let Some(site) = d.settings["site"].as_str() { dt { "Site" } dd { (site) } }
                }
            }
        }
    };
    frame(&viewer, "/audit", "Audit destinations", body).into_response()
}

/// `GET /audit/events/{seq}`: one event and its inclusion proof in the
/// first signed checkpoint covering it, as the service checked it.
pub async fn event(
    State(state): State<ServerState>,
    viewer: Viewer,
    path: Result<Path<u64>, PathRejection>,
) -> Response {
    let Ok(Path(seq)) = path else {
        return refusal(&Error::invalid("an event is named by its sequence number"));
    };
    let checked = match state.app.audit().prove(&viewer.principal, seq).await {
        Ok(checked) => checked,
        Err(e) => return refusal(&e),
    };
    let e = &checked.proof.event;
    let proof = &checked.proof.proof;
    let checkpoint = &proof.checkpoint;
    let details = serde_json::to_string_pretty(&e.details).unwrap_or_default();
    let body = html! {
        h1 { "Audit event " (seq) }
        (subnav(""))
        @match &checked.problem {
            None => p.notice.ok { "The proof holds: this event is leaf " (proof.leaf_index) " of the tree of " (checkpoint.tree_size) " events whose root the checkpoint signed, and the signature verifies." },
            Some(problem) => p.notice.error { "The proof does not hold: " (problem) },
        }
        h2 { "Event" }
        dl.facts {
            dt { "Id" } dd { code { (e.id) } }
            dt { "Time" } dd { (e.time) }
            dt { "Actor" } dd { (e.actor_type.as_str()) " " (e.actor_id) }
            dt { "Action" } dd { code { (e.action) } }
            dt { "Resource" } dd { (e.resource_type) " " code { (e.resource_id) } }
            @if let Some(ip) = &e.ip_address { dt { "From" } dd { (ip) } }
            dt { "Previous hash" } dd { code { (e.prev_hash) } }
            dt { "Hash" } dd { code { (e.hash) } }
            dt { "Leaf" } dd { code { (checked.proof.leaf) } }
        }
        pre { (details) }
        h2 { "Inclusion proof" }
        p.muted { "The audit path from the leaf up to the signed root (RFC 9162, section 2.1.3)." }
        ol.hashes {
            @for hash in &proof.inclusion { li { code { (hash) } } }
        }
        @if proof.inclusion.is_empty() { p.muted { "The leaf is the root: the tree holds this event alone." } }
        h2 { "Checkpoint" }
        dl.facts {
            dt { "Tree size" } dd { (checkpoint.tree_size) }
            dt { "Root" } dd { code { (checkpoint.root) } }
            dt { "Chain head" } dd { code { (checkpoint.chain_head) } }
            dt { "Signed" } dd { (Timestamp(checkpoint.timestamp)) }
            dt { "Key" } dd { code { (checkpoint.key_id) } }
            dt { "Signature" } dd { code { (checkpoint.signature) } }
        }
    };
    frame(&viewer, "/audit", &format!("Audit event {seq}"), body).into_response()
}
