//! The organization's policy: the one in force, its history, publishing
//! and unpublishing.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{QueryRejection, StringRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use smithers_api::{Error, PolicyVersion};
use smithers_app::App;

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::problem::Problem;

use super::{Created, Reply, parsed_query};

/// `?version=` of the policy shown.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// This version rather than the one in force.
    version: Option<u32>,
}

/// `GET /api/v1/policy`: the policy in force (or `version`), with its
/// text.
#[utoipa::path(
    get,
    operation_id = "policy_show",
    path = "/api/v1/policy",
    tag = "policy",
    params(ShowQuery),
    responses(
        (status = 200, description = "The policy version, with its text.", body = PolicyVersion),
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
    query: Result<Query<ShowQuery>, QueryRejection>,
) -> Reply<PolicyVersion> {
    let version = parsed_query(query)?.version;
    Ok(Json(app.policies().show(&caller, version).await?))
}

/// `GET /api/v1/policy/history`: every version, oldest first, without
/// their texts.
#[utoipa::path(
    get,
    operation_id = "policy_history",
    path = "/api/v1/policy/history",
    tag = "policy",
    responses(
        (status = 200, description = "Every version, oldest first, without their texts.", body = [PolicyVersion]),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
) -> Reply<Vec<PolicyVersion>> {
    Ok(Json(app.policies().history(&caller).await?))
}

/// `?file=` of a publication: the name diagnostics give the text.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PublishQuery {
    /// The name diagnostics give the text (`policy` unless given).
    #[serde(default = "default_file")]
    file: String,
}

fn default_file() -> String {
    "policy".to_string()
}

/// `PUT /api/v1/policy`: the body (the policy's text, UTF-8) becomes the
/// next version once it parses and its inline tests pass (201); else 400
/// with the diagnostics, and nothing is published.
#[utoipa::path(
    put,
    operation_id = "policy_publish",
    path = "/api/v1/policy",
    tag = "policy",
    params(PublishQuery),
    request_body(content = String, content_type = "text/plain", description = "The policy's text, UTF-8."),
    responses(
        (status = 201, description = "The version published.", body = PolicyVersion),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn publish(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<PublishQuery>, QueryRejection>,
    text: Result<String, StringRejection>,
) -> Created<PolicyVersion> {
    let file = parsed_query(query)?.file;
    let text = text.map_err(|e| {
        Problem(Error::invalid(format!(
            "the body (the policy's text): {}",
            e.body_text()
        )))
    })?;
    let version = app.policies().publish(&caller, &file, &text).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// `DELETE /api/v1/policy`: unpublishes the policy in force; returns the
/// version recording it.
#[utoipa::path(
    delete,
    operation_id = "policy_unpublish",
    path = "/api/v1/policy",
    tag = "policy",
    responses(
        (status = 200, description = "The version recording the unpublishing.", body = PolicyVersion),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn unpublish(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
) -> Reply<PolicyVersion> {
    Ok(Json(app.policies().unpublish(&caller).await?))
}
