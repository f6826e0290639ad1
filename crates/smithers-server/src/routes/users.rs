//! Users.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{Role, User};
use smithers_app::App;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, Unauthorized, Unavailable};

use super::{Created, Reply, json_body};

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
