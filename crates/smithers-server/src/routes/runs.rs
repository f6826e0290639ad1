//! Runs: list, show, logs, cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use smithers_api::{Cancelled, LogLine, Run, RunSummary};
use smithers_app::App;

use crate::auth::Caller;

use super::{ListQuery, Reply, parsed_query};

/// `GET /api/v1/runs`: the organization's runs, newest first.
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Reply<Vec<RunSummary>> {
    Ok(Json(
        app.runs().list(&caller, query.all, query.limit).await?,
    ))
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
