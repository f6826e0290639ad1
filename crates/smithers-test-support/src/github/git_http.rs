//! Git over smart HTTP.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::Shared;

pub(crate) fn is_git(path: &str) -> bool {
    path.contains(".git/")
}

pub(crate) async fn serve(
    _: Arc<Shared>,
    _: &str,
    _: &str,
    _: &str,
    _: &HeaderMap,
    _: Bytes,
) -> Response {
    axum::http::StatusCode::NOT_FOUND.into_response()
}
