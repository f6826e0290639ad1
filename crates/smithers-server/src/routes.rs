//! The routes: each parses its request, calls one service of the
//! application with the caller, and returns the `smithers-api` value as
//! JSON (the same shapes as the command line's `--json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use smithers_api::{Approval, Cancelled, Error, LogLine, Run, RunSummary, User};
use smithers_app::{App, Principal};

use crate::auth::Caller;
use crate::problem::Problem;

type Reply<T> = Result<Json<T>, Problem>;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers too.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    app.ready().await?;
    Ok("ready\n")
}

/// `?all=&limit=` of a list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /api/v1/runs`: the organization's runs, newest first.
pub async fn runs(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Reply<Vec<RunSummary>> {
    Ok(Json(
        app.runs().list(&caller, query.all, query.limit).await?,
    ))
}

/// `GET /api/v1/runs/{id}`.
pub async fn run(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Reply<Run> {
    Ok(Json(app.runs().show(&caller, &id).await?))
}

/// `?after=&limit=` of a run's log.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_log_limit")]
    limit: u32,
}

fn default_log_limit() -> u32 {
    1000
}

/// `GET /api/v1/runs/{id}/logs`: lines after `after`, at most `limit`.
pub async fn logs(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Reply<Vec<LogLine>> {
    let query = parsed_query(query)?;
    let limit = query.limit.min(10_000);
    Ok(Json(
        app.runs().logs(&caller, &id, query.after, limit).await?,
    ))
}

/// `POST /api/v1/runs/{id}/cancel`.
pub async fn cancel(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Reply<Cancelled> {
    Ok(Json(app.runs().cancel(&caller, &id).await?))
}

/// `GET /api/v1/approvals`: pending ones (every one with `all`).
pub async fn approvals(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Reply<Vec<Approval>> {
    let query = parsed_query(query)?;
    Ok(Json(app.approvals().list(&caller, query.all).await?))
}

/// `GET /api/v1/approvals/{id}`.
pub async fn approval(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Reply<Approval> {
    Ok(Json(app.approvals().show(&caller, &id).await?))
}

/// The body of a decision: `{"comment"}` to approve, `{"reason"}` to
/// reject.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    comment: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/approvals/{id}/approve`.
pub async fn approve(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Reply<Approval> {
    let note = decision(body)?.comment;
    decide(&app, &caller, &id, true, note).await
}

/// `POST /api/v1/approvals/{id}/reject`: a reason is required.
pub async fn reject(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Reply<Approval> {
    let note = decision(body)?.reason;
    decide(&app, &caller, &id, false, note).await
}

async fn decide(
    app: &App,
    caller: &Principal,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> Reply<Approval> {
    Ok(Json(
        app.approvals()
            .decide(caller, id, approve, note.as_deref())
            .await?,
    ))
}

/// `GET /api/v1/users`.
pub async fn users(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<User>> {
    Ok(Json(app.users().list(&caller).await?))
}

/// A query string that does not parse, as a problem.
fn parsed_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|e| {
        Problem(Error::invalid(format!(
            "the query string: {}",
            e.body_text()
        )))
    })
}

/// A decision's body: none (no JSON content type) is an empty one; JSON
/// that does not parse, or names an unknown field, is a problem.
fn decision(body: Result<Json<Decision>, JsonRejection>) -> Result<Decision, Problem> {
    match body {
        Ok(Json(decision)) => Ok(decision),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(Decision::default()),
        Err(e) => Err(Problem(Error::invalid(format!(
            "the body: {}",
            e.body_text()
        )))),
    }
}

/// Any other path.
pub async fn not_found() -> Problem {
    Problem(Error::not_found("no such route"))
}
