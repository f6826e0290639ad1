//! Runs: list, show, logs, cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use serde::Deserialize;
use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use smithers_api::{Cancelled, Error, Launched, LogLine, Run, RunState, RunSummary};
use smithers_app::{App, NewRun, ProviderKind, RunQuery};

use crate::ServerState;

use crate::problem::Problem;

use crate::auth::Caller;

use super::{Paged, Reply, json_body, parsed_query};

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

/// The body of `POST /api/v1/runs`: `{"repository", "workflow",
/// "provider"?, "image"?}`.
#[derive(Debug, Deserialize)]
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
    let repo = allowed_repository(&state.settings.repository_roots, &body.repository).await?;
    let runs = state.app.runs();
    let run = runs
        .start(
            &caller,
            NewRun {
                repo: &repo,
                workflow: &body.workflow,
                trigger: "api",
                provider,
                image: body.image.as_deref(),
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

/// The repository a request names, as its real path, when it lies under
/// one of `roots` (each taken as its real path too): a symbolic link
/// cannot lead out of them.
///
/// Errors: `invalid` for a path that does not exist; `forbidden` for one
/// outside every root, or when the server has none.
async fn allowed_repository(roots: &[PathBuf], asked: &str) -> Result<PathBuf, Problem> {
    if roots.is_empty() {
        return Err(Error::forbidden(
            "this server starts runs on no repository: it was given no --repository-root",
        )
        .into());
    }
    let real = tokio::fs::canonicalize(asked)
        .await
        .map_err(|e| Error::invalid(format!("repository {asked:?}: {e}")))?;
    for root in roots {
        if let Ok(root) = tokio::fs::canonicalize(root).await
            && real.starts_with(&root)
        {
            return Ok(real);
        }
    }
    Err(Error::forbidden(format!(
        "repository {asked:?} is not under a repository root of this server"
    ))
    .into())
}

/// `POST /api/v1/runs/{id}/resume`: has the server carry on a run that
/// stopped (its process gone, or a step's error); `202` once under way.
pub async fn resume(
    State(state): State<ServerState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Launched>), Problem> {
    if state.stopping.is_cancelled() {
        return Err(Error::unavailable("the server is stopping: it takes no more runs").into());
    }
    let launched = state.app.runs().launch(&caller, &id, &*state.pool).await?;
    Ok((StatusCode::ACCEPTED, Json(launched)))
}
