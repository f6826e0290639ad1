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

use super::{Created, Reply, json_body};

/// `GET /api/v1/users`.
pub async fn list(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<User>> {
    Ok(Json(app.users().list(&caller).await?))
}

/// The body of a new user: `{"name", "role": "member"|"admin"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    role: Role,
}

/// `POST /api/v1/users`: adds a user to the caller's organization (201).
pub async fn add(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Created<User> {
    let new = json_body(body)?;
    let user = app.users().add(&caller, &new.name, new.role).await?;
    Ok((StatusCode::CREATED, Json(user)))
}
