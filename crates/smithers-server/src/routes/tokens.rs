//! API tokens. The service makes, lists and revokes them for people only
//! (tokens never make tokens): through an API token every route here is
//! refused (403); they serve callers signed in otherwise.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{ApiToken, NewApiToken, Scope};
use smithers_app::App;

use crate::auth::Caller;

use super::{Created, Reply, json_body};

/// `GET /api/v1/tokens`: the caller's tokens (an admin's: the
/// organization's), never their secrets.
pub async fn list(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<ApiToken>> {
    Ok(Json(app.tokens().list(&caller).await?))
}

/// The body of a new token: `{"name", "scopes": [...], "ttl_seconds"?}`
/// (30 days unless given, at most 366).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    scopes: Vec<Scope>,
    ttl_seconds: Option<u64>,
}

/// `POST /api/v1/tokens`: a token acting as the caller (201); its secret
/// is in this response and nowhere else, ever.
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
pub async fn revoke(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Reply<ApiToken> {
    Ok(Json(app.tokens().revoke(&caller, &id).await?))
}
