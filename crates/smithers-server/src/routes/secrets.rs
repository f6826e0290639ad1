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
use crate::problem::Problem;

use super::{Created, Reply, json_body, optional_json_body, parsed_path, parsed_query};

/// `?environment=` of the secret list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretListQuery {
    environment: Option<String>,
}

/// `GET /api/v1/secrets`: the organization's secrets (in `environment`,
/// or in all), by environment then name; metadata only.
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretWrite {
    value: String,
    /// Check-and-set: the version the secret must be at (`0`: it must not
    /// exist yet).
    expect_version: Option<u32>,
}

/// `PUT /api/v1/secrets/{environment}/{name}`: creates the secret at
/// version 1 (201).
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
pub async fn keys(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<KeyUsage>> {
    Ok(Json(app.secrets().keys(&caller).await?))
}

/// `POST /api/v1/secrets/rewrap`: moves every version still wrapped by an
/// older key to the keyring's primary key; values are never decrypted.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantListQuery {
    environment: Option<String>,
    name: Option<String>,
    /// Decided, spent and expired grants too.
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/grants`: pending and usable grants (every one with
/// `all`), newest first.
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDecision {
    comment: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/grants/{id}/approve`: the grant lives its TTL from now.
pub async fn approve_grant(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<GrantDecision>, JsonRejection>,
) -> Reply<Grant> {
    let note = optional_json_body(body)?.comment;
    decide(&app, &caller, &id, true, note).await
}

/// `POST /api/v1/grants/{id}/deny`: a reason is required.
pub async fn deny_grant(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<GrantDecision>, JsonRejection>,
) -> Reply<Grant> {
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
