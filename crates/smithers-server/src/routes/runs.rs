//! Runs: list, show, logs, cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use serde::Deserialize;
use smithers_api::{Cancelled, LogLine, Run, RunState, RunSummary};
use smithers_app::{App, RunQuery};

use crate::problem::Problem;

use crate::auth::Caller;

use super::{Paged, Reply, parsed_query};

/// `?all=&state=&workflow=&repository=&requested_by=&cursor=&limit=` of
/// the run list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunListQuery {
    /// Finished runs too (naming a `state` implies it).
    #[serde(default)]
    all: bool,
    state: Option<RunState>,
    workflow: Option<String>,
    repository: Option<String>,
    requested_by: Option<String>,
    cursor: Option<String>,
    #[serde(default = "super::default_limit")]
    limit: u32,
}

/// `GET /api/v1/runs`: the organization's runs, newest first, a page at a
/// time.
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<RunListQuery>, QueryRejection>,
) -> Result<Paged<RunSummary>, Problem> {
    let q = parsed_query(query)?;
    let query = RunQuery {
        all: q.all,
        state: q.state,
        workflow: q.workflow,
        repository: q.repository,
        requested_by: q.requested_by,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = app.runs().page(&caller, &query).await?;
    Ok(Paged { page, uri })
}

/// `GET /api/v1/runs/{id}`.
pub async fn show(
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
