//! Users.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{Role, User};
use smithers_app::App;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};

use super::{Created, Reply, json_body, parsed_path};

/// `GET /api/v1/users`.
#[utoipa::path(
    get,
    operation_id = "users_list",
    path = "/api/v1/users",
    tag = "users",
    responses(
        (status = 200, description = "The organization's users.", body = [User]),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<User>> {
    Ok(Json(app.users().list(&caller).await?))
}

/// The body of a new user: `{"name", "role": "member"|"admin"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's name in the organization.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
    role: Role,
}

/// `POST /api/v1/users`: adds a user to the caller's organization (201).
#[utoipa::path(
    post,
    operation_id = "users_add",
    path = "/api/v1/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user, added.", body = User),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn add(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Created<User> {
    let new = json_body(body)?;
    let user = app.users().add(&caller, &new.name, new.role).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The body of a role change: `{"role": "member"|"admin"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
}

/// `PUT /api/v1/users/{name}/role`: gives the user the role; their
/// sessions end (they sign in again). Returns the user.
#[utoipa::path(
    put,
    operation_id = "users_set_role",
    path = "/api/v1/users/{name}/role",
    tag = "users",
    params(("name" = String, Path, description = "The user's name in the organization.")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user, with the new role.", body = User),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn set_role(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RoleChange>, JsonRejection>,
) -> Reply<User> {
    let name = parsed_path(path)?;
    let change = json_body(body)?;
    Ok(Json(
        app.users().set_role(&caller, &name, change.role).await?,
    ))
}

/// `DELETE /api/v1/users/{name}`: removes the user from the organization
/// (their sessions end, their API tokens go; what they did stays in the
/// audit log). Returns the user removed.
#[utoipa::path(
    delete,
    operation_id = "users_remove",
    path = "/api/v1/users/{name}",
    tag = "users",
    params(("name" = String, Path, description = "The user's name in the organization.")),
    responses(
        (status = 200, description = "The user, removed.", body = User),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply<User> {
    let name = parsed_path(path)?;
    Ok(Json(app.users().remove(&caller, &name).await?))
}
