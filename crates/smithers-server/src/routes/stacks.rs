//! Stacks: the chains of pull requests the GitHub App opened, listed,
//! shown, and synced after a person's push paused one.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use smithers_api::Stack;
use smithers_app::App;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};

use super::{Reply, parsed_path, parsed_query};

/// `?all=&limit=` of the stacks list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StackListQuery {
    /// Finished and superseded ones too.
    #[serde(default)]
    all: bool,
    /// At most this many (default 50, at most 500).
    #[serde(default = "super::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    limit: u32,
}

/// `GET /api/v1/stacks`: the stacks kept current (every one with `all`),
/// newest first.
#[utoipa::path(
    get,
    operation_id = "stacks_list",
    path = "/api/v1/stacks",
    tag = "stacks",
    params(StackListQuery),
    responses(
        (status = 200, description = "The organization's active and paused stacks (every one with `all`), newest first, at most `limit`.", body = [Stack]),
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
    query: Result<Query<StackListQuery>, QueryRejection>,
) -> Reply<Vec<Stack>> {
    let q = parsed_query(query)?;
    Ok(Json(app.stacks().list(&caller, q.all, q.limit).await?))
}

/// `GET /api/v1/stacks/{id}`.
#[utoipa::path(
    get,
    operation_id = "stacks_show",
    path = "/api/v1/stacks/{id}",
    tag = "stacks",
    params(("id" = String, Path, description = "The stack's id (`stk_…`).")),
    responses(
        (status = 200, description = "The stack, its members bottom first.", body = Stack),
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
) -> Reply<Stack> {
    let id = parsed_path(path)?;
    Ok(Json(app.stacks().show(&caller, &id).await?))
}

/// `POST /api/v1/stacks/{id}/sync`: the App takes the stack's branches
/// as they are on GitHub at its next pass (a person's push onto one
/// becomes that pull request's) and goes on from there.
#[utoipa::path(
    post,
    operation_id = "stacks_sync",
    path = "/api/v1/stacks/{id}/sync",
    tag = "stacks",
    params(("id" = String, Path, description = "The stack's id (`stk_…`).")),
    responses(
        (status = 200, description = "The stack as it now stands, `sync_requested` set until the App's next pass carries it out.", body = Stack),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn sync(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply<Stack> {
    let id = parsed_path(path)?;
    Ok(Json(app.stacks().sync(&caller, &id).await?))
}
