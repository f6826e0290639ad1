//! A run's events, live, as Server-Sent Events (the WHATWG HTML
//! standard's `text/event-stream`): its log lines (redacted before they
//! were stored) and the changes of the run, its steps, tool calls and
//! approvals, each with `id: CHANGE.LOG` — the cursor after it. A client
//! that reconnects with `Last-Event-ID` (browsers' `EventSource` does so
//! by itself) carries on with nothing missed and nothing twice. Once the
//! run has ended and everything is sent, an `end` event closes the stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use smithers_api::{Error, EventCursor, RunEvents};
use smithers_app::{App, FOLLOW_FALLBACK, Principal, RunChanges};
use tokio_util::sync::CancellationToken;

use super::{parsed_path, parsed_query};
use crate::ServerState;
use crate::auth::Caller;
use crate::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::problem::Problem;

/// Events read at once, of each kind.
const BATCH: u32 = 500;

/// One event of the stream as Server-Sent Events frame it: `event`, `id`
/// and `data` (for the OpenAPI document: what a client reads).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventFrame {
    /// `log`, `change`, `end`, or `error` (the stream stopped).
    #[schema(pattern = "^(log|change|end|error)$")]
    pub event: String,
    /// The cursor after this event (`CHANGE.LOG`); none on `end` and `error`.
    pub id: Option<String>,
    /// JSON: a RunEvent for `log` and `change`; `{"run"}` for `end`;
    /// `{"code", "detail"}` for `error`.
    pub data: String,
}

/// `?after=CHANGE.LOG`: where to start when there is no `Last-Event-ID`
/// (a client that is not a browser's `EventSource`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The cursor after the last event had, `CHANGE.LOG` (an event's `id`).
    #[param(pattern = r"^[0-9]+\.[0-9]+$")]
    after: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "runs_events",
    path = "/api/v1/runs/{id}/events",
    tag = "runs",
    params(
        ("id" = String, Path, description = "The run's id."),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event had (`CHANGE.LOG`): the stream carries on after it."),
        EventsQuery
    ),
    responses(
        (status = 200, description = "A `text/event-stream` (Server-Sent Events): `log` and `change` events, each `data` a RunEvent as JSON and each `id` the cursor after it; an `end` event once the run has ended and everything is sent.", content_type = "text/event-stream", body = EventFrame),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
/// `GET /api/v1/runs/{id}/events`: the run's events from the cursor in
/// `Last-Event-ID` (else `?after=`, else the start), then live until the
/// run ends or the server stops.
///
/// Errors (before the stream starts): `invalid` for a cursor that does not
/// read; `not_found` for a run of another organization; the caller's.
pub async fn events(
    State(state): State<ServerState>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let id = parsed_path(path)?;
    let query = parsed_query(query)?;
    let last = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid("Last-Event-ID is not text"))
        })
        .transpose()?;
    let cursor = match last.or(query.after.as_deref()) {
        Some(text) if !text.trim().is_empty() => text.parse::<EventCursor>()?,
        _ => EventCursor::default(),
    };
    // Subscribed before the first read, so a change between the two wakes
    // the stream rather than being missed.
    let changes = state.app.run_changes(&id);
    let first = state.app.runs().events(&caller, &id, cursor, BATCH).await?;
    let mut follow = Follow {
        app: state.app.clone(),
        caller,
        id,
        cursor,
        changes,
        stopping: state.stopping.clone(),
        pending: VecDeque::new(),
        done: false,
        read_again: false,
    };
    follow.take(first);
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        f.next().await.map(|event| (Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream's state: where it stands and what it has read but not sent.
struct Follow {
    app: Arc<App>,
    caller: Principal,
    id: String,
    cursor: EventCursor,
    changes: RunChanges,
    stopping: CancellationToken,
    pending: VecDeque<Event>,
    done: bool,
    /// The last read gave events: there may be more already.
    read_again: bool,
}

impl Follow {
    /// The next event to send; `None` once the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done || self.stopping.is_cancelled() {
                return None;
            }
            if !self.read_again {
                tokio::select! {
                    () = self.stopping.cancelled() => return None,
                    () = self.changes.changed_within(FOLLOW_FALLBACK) => {}
                }
            }
            match self
                .app
                .runs()
                .events(&self.caller, &self.id, self.cursor, BATCH)
                .await
            {
                Ok(events) => self.take(events),
                Err(e) => {
                    // Told as an event: the response's status is sent.
                    tracing::warn!(run = %self.id, error = %e, "a run's event stream stopped");
                    self.pending.push_back(Event::default().event("error").data(
                        serde_json::json!({"code": e.kind.code(), "detail": e.message}).to_string(),
                    ));
                    self.done = true;
                }
            }
        }
    }

    /// Queues what a read gave, each event with its cursor as its id.
    fn take(&mut self, read: RunEvents) {
        self.read_again = !read.events.is_empty();
        for e in read.events {
            let data = serde_json::to_string(&e.event).unwrap_or_else(|_| "{}".into());
            self.pending.push_back(
                Event::default()
                    .id(e.cursor.clone())
                    .event(e.event.name())
                    .data(data),
            );
            if let Ok(cursor) = e.cursor.parse() {
                self.cursor = cursor;
            }
        }
        if read.finished {
            self.pending.push_back(
                Event::default()
                    .event("end")
                    .data(serde_json::json!({"run": self.id}).to_string()),
            );
            self.done = true;
        }
    }
}
