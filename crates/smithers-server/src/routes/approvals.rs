//! Approvals: the inbox, one approval, decisions.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use smithers_api::Approval;
use smithers_app::{App, Principal};

use crate::auth::Caller;

use super::{ListQuery, Reply, optional_json_body, parsed_query};

/// `GET /api/v1/approvals`: pending ones (every one with `all`).
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Reply<Vec<Approval>> {
    let query = parsed_query(query)?;
    Ok(Json(app.approvals().list(&caller, query.all).await?))
}

/// `GET /api/v1/approvals/{id}`.
pub async fn show(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Reply<Approval> {
    Ok(Json(app.approvals().show(&caller, &id).await?))
}

/// The body of a decision: `{"comment"}` to approve, `{"reason"}` to
/// reject.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    comment: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/approvals/{id}/approve`.
pub async fn approve(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Reply<Approval> {
    let note = optional_json_body(body)?.comment;
    decide(&app, &caller, &id, true, note).await
}

/// `POST /api/v1/approvals/{id}/reject`: a reason is required.
pub async fn reject(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Json<Decision>, JsonRejection>,
) -> Reply<Approval> {
    let note = optional_json_body(body)?.reason;
    decide(&app, &caller, &id, false, note).await
}

async fn decide(
    app: &App,
    caller: &Principal,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> Reply<Approval> {
    Ok(Json(
        app.approvals()
            .decide(caller, id, approve, note.as_deref())
            .await?,
    ))
}
