//! Refusals as RFC 9457 problem details (`application/problem+json`):
//! `{"type", "title", "status", "detail", "code"}`, where `code` is the
//! service layer's stable error code and the status its mapping
//! (`smithers_api::ErrorKind::http_status`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(error) = self;
        let status = StatusCode::from_u16(error.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": error.message,
            "code": error.kind.code(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if error.kind == ErrorKind::Unauthenticated {
            // RFC 6750 §3: a bearer token is what is asked for.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"smithers\""),
            );
        }
        response
    }
}
