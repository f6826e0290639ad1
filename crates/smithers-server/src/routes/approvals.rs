//! Approvals: the inbox, one approval, decisions.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use serde::Deserialize;
use smithers_api::Approval;
use smithers_app::{App, Principal};

use crate::auth::Caller;
use crate::openapi::{BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable};

use super::{Paged, Reply, optional_json_body, parsed_path, parsed_query};
use crate::problem::Problem;

/// `?all=&cursor=&limit=` of the approvals list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApprovalListQuery {
    /// Decided and expired ones too.
    #[serde(default)]
    all: bool,
    /// The `cursor` of the `Link` header's next page (opaque).
    cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    #[serde(default = "super::default_limit")]
    #[param(minimum = 1, maximum = 500)]
    limit: u32,
}

/// `GET /api/v1/approvals`: pending ones (every one with `all`), newest
/// first, a page at a time.
#[utoipa::path(
    get,
    operation_id = "approvals_list",
    path = "/api/v1/approvals",
    tag = "approvals",
    params(ApprovalListQuery),
    responses(
        (status = 200, description = "A page of the organization's pending approvals (every one with `all`), newest first.", body = [Approval],
         headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) while there is a next page: this request with its `cursor`."))),
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
    OriginalUri(uri): OriginalUri,
    query: Result<Query<ApprovalListQuery>, QueryRejection>,
) -> Result<Paged<Approval>, Problem> {
    let q = parsed_query(query)?;
    let page = app
        .approvals()
        .page(&caller, q.all, q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Paged { page, uri })
}

/// `GET /api/v1/approvals/{id}`.
#[utoipa::path(
    get,
    operation_id = "approvals_show",
    path = "/api/v1/approvals/{id}",
    tag = "approvals",
    params(("id" = String, Path, description = "The approval's id.")),
    responses(
        (status = 200, description = "The approval.", body = Approval),
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
    path: Result<Path<String>, PathRejection>,
) -> Reply<Approval> {
    let id = parsed_path(path)?;
    Ok(Json(app.approvals().show(&caller, &id).await?))
}

/// The body of a decision: `{"comment"}` to approve, `{"reason"}` to
/// reject.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = ApprovalDecision)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The approver's note (approving).
    comment: Option<String>,
    /// Why (rejecting: required).
    reason: Option<String>,
}

/// `POST /api/v1/approvals/{id}/approve`.
#[utoipa::path(
    post,
    operation_id = "approvals_approve",
    path = "/api/v1/approvals/{id}/approve",
    tag = "approvals",
    params(("id" = String, Path, description = "The approval's id.")),
    request_body(content = Option<Decision>, description = "`{\"comment\"}`, or no body (or `null`)."),
    responses(
        (status = 200, description = "The approval, approved.", body = Approval),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<Decision>>, JsonRejection>,
) -> Reply<Approval> {
    let id = parsed_path(path)?;
    let note = optional_json_body(body)?.comment;
    decide(&app, &caller, &id, true, note).await
}

/// `POST /api/v1/approvals/{id}/reject`: a reason is required.
#[utoipa::path(
    post,
    operation_id = "approvals_reject",
    path = "/api/v1/approvals/{id}/reject",
    tag = "approvals",
    params(("id" = String, Path, description = "The approval's id.")),
    request_body(content = Option<Decision>, description = "`{\"reason\"}`: a reason is required."),
    responses(
        (status = 200, description = "The approval, rejected.", body = Approval),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn reject(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<Option<Decision>>, JsonRejection>,
) -> Reply<Approval> {
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
) -> Reply<Approval> {
    Ok(Json(
        app.approvals()
            .decide(caller, id, approve, note.as_deref())
            .await?,
    ))
}
