//! Runs: list, show, logs, cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use serde::Deserialize;

use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use smithers_api::{Cancelled, Error, Launched, LogLine, Run, RunState, RunSummary};
use smithers_app::{App, NewRun, ProviderKind, RunQuery};

use crate::ServerState;
use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::problem::Problem;

use super::{Paged, Reply, json_body, parsed_path, parsed_query};

/// `?all=&state=&workflow=&repository=&requested_by=&cursor=&limit=` of
/// the run list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunListQuery {
    /// Finished runs too (naming a `state` implies it).
    #[serde(default)]
    all: bool,
    /// Runs in this state only.
    state: Option<RunState>,
    /// Runs of this workflow only.
    workflow: Option<String>,
    /// Runs on this repository only.
    repository: Option<String>,
    /// Runs started by this user only.
    requested_by: Option<String>,
    /// Where a page starts: the `cursor` of the previous page's `Link`
    /// header, given back as it was.
    cursor: Option<String>,
    /// Runs a page (50 unless given).
    #[serde(default = "super::default_limit")]
    limit: u32,
}

/// `GET /api/v1/runs`: the organization's runs, newest first, a page at a
/// time.
#[utoipa::path(
    get,
    operation_id = "runs_list",
    path = "/api/v1/runs",
    tag = "runs",
    params(RunListQuery),
    responses(
        (status = 200, description = "A page of runs, newest first.", body = [RunSummary],
         headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) while there is a next page: this request with its `cursor`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
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
#[utoipa::path(
    get,
    operation_id = "runs_show",
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run with everything it did.", body = Run),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply<Run> {
    let id = parsed_path(path)?;
    Ok(Json(app.runs().show(&caller, &id).await?))
}

/// `?after=&limit=` of a run's log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The lines after this sequence number (0: from the first).
    #[serde(default)]
    after: u64,
    /// Lines at most (1000 unless given; no more than 10000).
    #[serde(default = "default_log_limit")]
    limit: u32,
}

fn default_log_limit() -> u32 {
    1000
}

/// `GET /api/v1/runs/{id}/logs`: lines after `after`, at most `limit`.
#[utoipa::path(
    get,
    operation_id = "runs_logs",
    path = "/api/v1/runs/{id}/logs",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id."), LogQuery),
    responses(
        (status = 200, description = "The run's log lines, redacted, in order.", body = [LogLine]),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn logs(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Reply<Vec<LogLine>> {
    let id = parsed_path(path)?;
    let query = parsed_query(query)?;
    let limit = query.limit.min(10_000);
    Ok(Json(
        app.runs().logs(&caller, &id, query.after, limit).await?,
    ))
}

/// `POST /api/v1/runs/{id}/cancel`.
#[utoipa::path(
    post,
    operation_id = "runs_cancel",
    path = "/api/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run, cancelled.", body = Cancelled),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply<Cancelled> {
    let id = parsed_path(path)?;
    Ok(Json(app.runs().cancel(&caller, &id).await?))
}

/// The body of `POST /api/v1/runs`: `{"repository", "workflow",
/// "provider"?, "image"?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = NewRun)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// A git checkout under one of the server's repository roots.
    repository: String,
    /// The workflow's name in its `smithers.toml`.
    workflow: String,
    /// `native` or `docker` over the workflow's own.
    provider: Option<String>,
    /// A Docker image over the default.
    image: Option<String>,
}

/// `POST /api/v1/runs`: starts a workflow of a repository the server was
/// given (`--repository-root`) and has the server carry it out; `201`
/// with the run and its `Location`.
#[utoipa::path(
    post,
    operation_id = "runs_start",
    path = "/api/v1/runs",
    tag = "runs",
    request_body = StartBody,
    responses(
        (status = 201, description = "The run, started and handed to the server's run pool.", body = Run,
         headers(("Location" = String, description = "The run's path, `/api/v1/runs/{id}`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(state): State<ServerState>,
    Caller(caller): Caller,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let body = json_body(body)?;
    if state.stopping.is_cancelled() {
        return Err(Error::unavailable("the server is stopping: it takes no more runs").into());
    }
    let provider = match body.provider.as_deref() {
        None => None,
        Some("native") => Some(ProviderKind::Native),
        Some("docker") => Some(ProviderKind::Docker),
        Some(other) => {
            return Err(Error::invalid(format!("provider {other:?}: native or docker")).into());
        }
    };
    let runs = state.app.runs();
    let run = runs
        .start(
            &caller,
            NewRun {
                repo: std::path::Path::new(&body.repository),
                workflow: &body.workflow,
                trigger: "api",
                provider,
                image: body.image.as_deref(),
                roots: Some(&state.settings.repository_roots),
                pinned: None,
            },
        )
        .await?;
    runs.launch(&caller, &run.id, &*state.pool).await?;
    let location = format!("/api/v1/runs/{}", run.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(run),
    )
        .into_response())
}

#[utoipa::path(
    post,
    operation_id = "runs_resume",
    path = "/api/v1/runs/{id}/resume",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id.")),
    responses(
        (status = 202, description = "The run, handed to the server's run pool.", body = Launched),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    State(state): State<ServerState>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Launched>), Problem> {
    let id = parsed_path(path)?;
    if state.stopping.is_cancelled() {
        return Err(Error::unavailable("the server is stopping: it takes no more runs").into());
    }
    let launched = state.app.runs().launch(&caller, &id, &*state.pool).await?;
    Ok((StatusCode::ACCEPTED, Json(launched)))
}
