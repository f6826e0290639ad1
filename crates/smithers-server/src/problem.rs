//! Refusals as RFC 9457 problem details (`application/problem+json`):
//! `{"type", "title", "status", "detail", "code"}`, where `code` is the
//! service layer's stable error code and the status its mapping
//! (`smithers_api::ErrorKind::http_status`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smithers_api::{Error, ErrorKind};

/// The media type of a problem (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A service layer error as the HTTP response a client gets.
#[derive(Debug)]
pub struct Problem(pub Error);

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        Problem(e)
    }
}

/// A problem as it is written: the one shape behind every refusal, and
/// the `Problem` schema of the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemDetails {
    /// `about:blank`: the status and `code` say what it is.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    /// The status's reason phrase.
    #[schema(example = "Not Found")]
    pub title: &'static str,
    /// The HTTP status, repeated.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong, for people; never a secret value.
    #[schema(example = "no run r_0193")]
    pub detail: String,
    /// The stable machine code: `invalid`, `not_found`, `unauthenticated`,
    /// `forbidden`, `conflict`, `unavailable`, `internal` (the service
    /// layer's error kinds), or `method_not_allowed`.
    #[schema(example = "not_found")]
    pub code: &'static str,
}

/// The problem response of `status`, `code` and `detail`.
fn problem_response(status: StatusCode, code: &'static str, detail: String) -> Response {
    let body = ProblemDetails {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
    };
    // A struct of strings and a number always serializes.
    let text = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(error) = self;
        let status = StatusCode::from_u16(error.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = problem_response(status, error.kind.code(), error.message);
        if error.kind == ErrorKind::Unauthenticated {
            // RFC 6750 §3: a bearer token is what is asked for.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"smithers\""),
            );
        }
        response
    }
}

/// A method the path does not serve: 405 as a problem (code
/// `method_not_allowed`). It is the router's, not the service layer's, so
/// it has no error kind; the router adds the `Allow` header.
pub(crate) fn method_not_allowed() -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not serve that method: the Allow header names those it does".to_string(),
    )
}
