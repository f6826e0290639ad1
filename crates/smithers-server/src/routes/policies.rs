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
use crate::problem::Problem;

use super::{Created, Reply, parsed_query};

/// `?version=` of the policy shown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    version: Option<u32>,
}

/// `GET /api/v1/policy`: the policy in force (or `version`), with its
/// text.
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
pub async fn history(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
) -> Reply<Vec<PolicyVersion>> {
    Ok(Json(app.policies().history(&caller).await?))
}

/// `?file=` of a publication: the name diagnostics give the text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishQuery {
    #[serde(default = "default_file")]
    file: String,
}

fn default_file() -> String {
    "policy".to_string()
}

/// `PUT /api/v1/policy`: the body (the policy's text, UTF-8) becomes the
/// next version once it parses and its inline tests pass (201); else 400
/// with the diagnostics, and nothing is published.
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
pub async fn unpublish(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
) -> Reply<PolicyVersion> {
    Ok(Json(app.policies().unpublish(&caller).await?))
}
