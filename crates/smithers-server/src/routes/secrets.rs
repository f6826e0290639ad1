//! Secrets and the grants to read them: names, versions and the keyring's
//! use as metadata, new values in.
//!
//! A value goes in (set, rotate) and never comes out: there is
//! deliberately no route for `SecretsService::get`. A value is decrypted
//! only to be injected into a sandbox when a step runs, and is never part
//! of an API response.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{
    Error, Grant, GrantRequest, KeyUsage, RewrapSummary, SecretSummary, SecretVersion,
};
use smithers_app::{App, Principal};
use smithers_secrets::SecretValue;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::problem::Problem;

use super::{Created, Reply, json_body, optional_json_body, parsed_path, parsed_query};

/// `?environment=` of the secret list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SecretListQuery {
    /// The secrets of this environment only.
    environment: Option<String>,
}

/// `GET /api/v1/secrets`: the organization's secrets (in `environment`,
/// or in all), by environment then name; metadata only.
#[utoipa::path(
    get,
    operation_id = "secrets_list",
    path = "/api/v1/secrets",
    tag = "secrets",
    params(SecretListQuery),
    responses(
        (status = 200, description = "The secrets, by environment then name; metadata only.", body = [SecretSummary]),
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
    query: Result<Query<SecretListQuery>, QueryRejection>,
) -> Reply<Vec<SecretSummary>> {
    let query = parsed_query(query)?;
    Ok(Json(
        app.secrets()
            .list(&caller, query.environment.as_deref())
            .await?,
    ))
}

/// `GET /api/v1/secrets/{environment}/{name}/versions`: every version,
/// oldest first; metadata only.
#[utoipa::path(
    get,
    operation_id = "secrets_versions",
    path = "/api/v1/secrets/{environment}/{name}/versions",
    tag = "secrets",
    params(("environment" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", description = "The environment (`dev`, `staging`, `prod`, …)."), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "The secret's name.")),
    responses(
        (status = 200, description = "Every version, oldest first; metadata only.", body = [SecretVersion]),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn versions(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Reply<Vec<SecretVersion>> {
    let (environment, name) = parsed_path(path)?;
    Ok(Json(
        app.secrets()
            .versions(&caller, &name, Some(&environment))
            .await?,
    ))
}

/// The body of a write: `{"value", "expect_version"?}`. Deliberately not
/// `Debug`, so the value is never logged; it moves into a [`SecretValue`]
/// (zeroed when dropped) without a copy. The request's own buffer is
/// freed, not zeroed, like any HTTP body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretWrite {
    /// The new value; it never comes back out.
    value: String,
    /// Check-and-set: the version the secret must be at (`0`: it must not
    /// exist yet).
    expect_version: Option<u32>,
}

/// `PUT /api/v1/secrets/{environment}/{name}`: creates the secret at
/// version 1 (201).
#[utoipa::path(
    put,
    operation_id = "secrets_set",
    path = "/api/v1/secrets/{environment}/{name}",
    tag = "secrets",
    params(("environment" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", description = "The environment (`dev`, `staging`, `prod`, …)."), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "The secret's name.")),
    request_body = SecretWrite,
    responses(
        (status = 201, description = "The version written; metadata only.", body = SecretVersion),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn set(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<SecretWrite>, JsonRejection>,
) -> Created<SecretVersion> {
    let (environment, name) = parsed_path(path)?;
    let (value, expect_version) = secret_write(body)?;
    let version = app
        .secrets()
        .set(&caller, &environment, &name, &value, expect_version)
        .await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// `POST /api/v1/secrets/{environment}/{name}/rotate`: a new active
/// version; the previous one is deactivated and kept.
#[utoipa::path(
    post,
    operation_id = "secrets_rotate",
    path = "/api/v1/secrets/{environment}/{name}/rotate",
    tag = "secrets",
    params(("environment" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", description = "The environment (`dev`, `staging`, `prod`, …)."), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "The secret's name.")),
    request_body = SecretWrite,
    responses(
        (status = 200, description = "The new active version; metadata only.", body = SecretVersion),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn rotate(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<SecretWrite>, JsonRejection>,
) -> Reply<SecretVersion> {
    let (environment, name) = parsed_path(path)?;
    let (value, expect_version) = secret_write(body)?;
    Ok(Json(
        app.secrets()
            .rotate(&caller, &environment, &name, &value, expect_version)
            .await?,
    ))
}

fn secret_write(
    body: Result<Json<SecretWrite>, JsonRejection>,
) -> Result<(SecretValue, Option<u32>), Problem> {
    let SecretWrite {
        value,
        expect_version,
    } = json_body(body)?;
    Ok((SecretValue::new(value.into_bytes()), expect_version))
}

/// `DELETE /api/v1/secrets/{environment}/{name}/versions/{version}`:
/// erases the version's ciphertext for good; returns its metadata.
#[utoipa::path(
    delete,
    operation_id = "secrets_destroy",
    path = "/api/v1/secrets/{environment}/{name}/versions/{version}",
    tag = "secrets",
    params(("environment" = String, Path, pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", description = "The environment (`dev`, `staging`, `prod`, …)."), ("name" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$", description = "The secret's name."), ("version" = u32, Path, description = "The version, from 1.")),
    responses(
        (status = 200, description = "The version, destroyed; metadata only.", body = SecretVersion),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn destroy(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<(String, String, u32)>, PathRejection>,
) -> Reply<SecretVersion> {
    let (environment, name, version) = parsed_path(path)?;
    Ok(Json(
        app.secrets()
            .destroy(&caller, &environment, &name, version)
            .await?,
    ))
}

/// `GET /api/v1/secrets/keys`: every key id of the keyring and of the
/// stored versions, with how many versions each wraps.
#[utoipa::path(
    get,
    operation_id = "secrets_keys",
    path = "/api/v1/secrets/keys",
    tag = "secrets",
    responses(
        (status = 200, description = "Every key id and what it wraps.", body = [KeyUsage]),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn keys(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<KeyUsage>> {
    Ok(Json(app.secrets().keys(&caller).await?))
}

/// `POST /api/v1/secrets/rewrap`: moves every version still wrapped by an
/// older key to the keyring's primary key; values are never decrypted.
#[utoipa::path(
    post,
    operation_id = "secrets_rewrap",
    path = "/api/v1/secrets/rewrap",
    tag = "secrets",
    responses(
        (status = 200, description = "What the rewrap did.", body = RewrapSummary),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn rewrap(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<RewrapSummary> {
    // The service's rewrap holds its progress callback (`&mut dyn FnMut`,
    // not `Send`) across awaits, so its future cannot move between the
    // server's worker threads: it is driven to the end on a blocking
    // thread of its own. A rare, admin-only operation.
    let runtime = tokio::runtime::Handle::current();
    let summary = tokio::task::spawn_blocking(move || {
        // The summary says it all; progress is for a terminal.
        runtime.block_on(async { app.secrets().rewrap(&caller, &mut |_, _| {}).await })
    })
    .await
    .map_err(|e| Problem(Error::internal(format!("the rewrap stopped: {e}"))))??;
    Ok(Json(summary))
}

/// `?environment=&name=&all=` of the grant list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantListQuery {
    /// The grants of this environment only.
    environment: Option<String>,
    /// The grants of this secret only.
    name: Option<String>,
    /// Decided, spent and expired grants too.
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/grants`: pending and usable grants (every one with
/// `all`), newest first.
#[utoipa::path(
    get,
    operation_id = "grants_list",
    path = "/api/v1/grants",
    tag = "grants",
    params(GrantListQuery),
    responses(
        (status = 200, description = "Grants, newest first.", body = [Grant]),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn grants(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<GrantListQuery>, QueryRejection>,
) -> Reply<Vec<Grant>> {
    let q = parsed_query(query)?;
    Ok(Json(
        app.secrets()
            .grants(&caller, q.environment.as_deref(), q.name.as_deref(), q.all)
            .await?,
    ))
}

/// `POST /api/v1/grants`: `{"environment", "name", "binding":
/// {"run"|"purpose"}, "ttl_seconds", "single_use"}`, a request to read a
/// secret, pending until another admin decides it (201).
#[utoipa::path(
    post,
    operation_id = "grants_request",
    path = "/api/v1/grants",
    tag = "grants",
    request_body = GrantRequest,
    responses(
        (status = 201, description = "The grant, pending.", body = Grant),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn request_grant(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    body: Result<Json<GrantRequest>, JsonRejection>,
) -> Created<Grant> {
    let request = json_body(body)?;
    let grant = app.secrets().request_grant(&caller, &request).await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// The body of a grant's decision: `{"comment"?}` to approve, `{"reason"}`
/// to deny.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantDecision {
    /// The approver's note (approving).
    comment: Option<String>,
    /// Why (denying: required).
    reason: Option<String>,
}

/// `POST /api/v1/grants/{id}/approve`: the grant lives its TTL from now.
#[utoipa::path(
    post,
    operation_id = "grants_approve",
    path = "/api/v1/grants/{id}/approve",
    tag = "grants",
    params(("id" = String, Path, description = "The grant's id.")),
    request_body(content = Option<GrantDecision>, description = "`{\"comment\"}`, or no body (or `null`)."),
    responses(
        (status = 200, description = "The grant, approved.", body = Grant),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn approve_grant(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<GrantDecision>>, JsonRejection>,
) -> Reply<Grant> {
    let id = parsed_path(path)?;
    let note = optional_json_body(body)?.comment;
    decide(&app, &caller, &id, true, note).await
}

/// `POST /api/v1/grants/{id}/deny`: a reason is required.
#[utoipa::path(
    post,
    operation_id = "grants_deny",
    path = "/api/v1/grants/{id}/deny",
    tag = "grants",
    params(("id" = String, Path, description = "The grant's id.")),
    request_body(content = Option<GrantDecision>, description = "`{\"reason\"}`: a reason is required."),
    responses(
        (status = 200, description = "The grant, denied.", body = Grant),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn deny_grant(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<GrantDecision>>, JsonRejection>,
) -> Reply<Grant> {
    let id = parsed_path(path)?;
    let note = optional_json_body(body)?.reason;
    decide(&app, &caller, &id, false, note).await
}

async fn decide(
    app: &App,
    caller: &Principal,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> Reply<Grant> {
    Ok(Json(
        app.secrets()
            .decide_grant(caller, id, approve, note.as_deref())
            .await?,
    ))
}
