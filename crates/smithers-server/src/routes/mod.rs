//! The routes: each parses its request, calls one service of the
//! application with the caller, and returns the `smithers-api` value as
//! JSON (the same shapes as the command line's `--json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smithers_api::{Error, Page};
use smithers_app::App;

use crate::openapi::Unavailable;
use crate::problem::Problem;

pub mod approvals;
pub mod audit;
pub mod events;
pub mod policies;
pub mod runs;
pub mod secrets;
pub mod stacks;
pub mod tokens;
pub mod users;

type Reply<T> = Result<Json<T>, Problem>;

/// A reply to a request that made something: 201 and the thing.
type Created<T> = Result<(axum::http::StatusCode, Json<T>), Problem>;

/// A page's size when the request names none.
pub(crate) fn default_limit() -> u32 {
    50
}

/// A page of a list as HTTP gives it: the items as the body (the shape the
/// command line prints) and, when there is more, `Link: <…>; rel="next"`
/// (RFC 8288): this request's path and query with `cursor` set to the next
/// page's. The reference is relative, so it holds behind a proxy.
pub struct Paged<T> {
    pub page: Page<T>,
    pub uri: Uri,
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let Paged { page, uri } = self;
        let mut response = Json(page.items).into_response();
        if let Some(next) = page.next {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
                if k != "cursor" {
                    query.append_pair(&k, &v);
                }
            }
            query.append_pair("cursor", &next);
            let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish());
            if let Ok(value) = HeaderValue::from_str(&link) {
                response.headers_mut().insert(header::LINK, value);
            }
        }
        response
    }
}

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get,
    operation_id = "healthz",
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process answers.", body = String, content_type = "text/plain", example = "ok\n"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers too.
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers too.", body = String, content_type = "text/plain", example = "ready\n"),
        (status = 503, response = Unavailable),
    )
)]
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    app.ready().await?;
    Ok("ready\n")
}

/// A JSON body that is missing, does not parse, or names an unknown
/// field, as a problem (`invalid`).
pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    body.map(|Json(b)| b)
        .map_err(|e| Problem(Error::invalid(format!("the body: {}", e.body_text()))))
}

/// A JSON body that may be left out: none (no JSON content type) or
/// `null` is the default; one that does not parse, or names an unknown
/// field, is a problem.
pub(crate) fn optional_json_body<T: Default>(
    body: Result<Json<Option<T>>, JsonRejection>,
) -> Result<T, Problem> {
    match body {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        body => Ok(json_body(body)?.unwrap_or_default()),
    }
}

/// Path parameters that do not parse (a version or sequence number that
/// is not one), as a problem rather than axum's plain-text 400.
fn parsed_path<T>(
    path: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, Problem> {
    path.map(|axum::extract::Path(p)| p)
        .map_err(|e| Problem(Error::invalid(format!("the path: {}", e.body_text()))))
}

/// A query string that does not parse, as a problem.
fn parsed_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|e| {
        Problem(Error::invalid(format!(
            "the query string: {}",
            e.body_text()
        )))
    })
}

/// Any other path.
pub async fn not_found() -> Problem {
    Problem(Error::not_found("no such route"))
}

/// A path served, asked with a method it does not serve.
pub async fn method_not_allowed() -> Response {
    crate::problem::method_not_allowed()
}
