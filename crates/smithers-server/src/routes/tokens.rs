//! API tokens. The service makes, lists and revokes them for people only
//! (tokens never make tokens): through an API token every route here is
//! refused (403); they serve callers signed in otherwise.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{ApiToken, NewApiToken, Scope};
use smithers_app::App;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};

use super::{Created, Reply, json_body, parsed_path};

/// `GET /api/v1/tokens`: the caller's tokens (an admin's: the
/// organization's), never their secrets.
#[utoipa::path(
    get,
    operation_id = "tokens_list",
    path = "/api/v1/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "The caller's tokens (an admin's: the organization's), never their secrets.", body = [ApiToken]),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<ApiToken>> {
    Ok(Json(app.tokens().list(&caller).await?))
}

/// The body of a new token: `{"name", "scopes": [...], "ttl_seconds"?}`
/// (30 days unless given, at most 366).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What its owner calls it (`ci-deploy`).
    name: String,
    scopes: Vec<Scope>,
    /// Its lifetime: 30 days unless given, at most 366.
    ttl_seconds: Option<u64>,
}

/// `POST /api/v1/tokens`: a token acting as the caller (201); its secret
/// is in this response and nowhere else, ever.
#[utoipa::path(
    post,
    operation_id = "tokens_create",
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token and, this once, its secret.", body = NewApiToken),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Created<NewApiToken> {
    let new = json_body(body)?;
    let token = app
        .tokens()
        .create(
            &caller,
            &new.name,
            &new.scopes,
            new.ttl_seconds.map(Duration::from_secs),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// `DELETE /api/v1/tokens/{id}`: revokes the token; returns it.
#[utoipa::path(
    delete,
    operation_id = "tokens_revoke",
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id.")),
    responses(
        (status = 200, description = "The token, revoked.", body = ApiToken),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Reply<ApiToken> {
    let id = parsed_path(path)?;
    Ok(Json(app.tokens().revoke(&caller, &id).await?))
}
