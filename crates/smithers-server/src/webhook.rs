//! `POST /github/webhook`: the GitHub App's deliveries. The handler only
//! hands the raw bytes and the three headers that matter to
//! `smithers-github`, which checks the signature before anything is
//! parsed and records the delivery before this answers:
//!
//! - 202 `{"delivery","status":"recorded"|"seen before"}`: recorded (or
//!   recorded before: nothing more is done);
//! - 401 problem: the signature is missing or wrong; nothing is stored;
//! - 400 problem: signed, but without a proper event, GUID or JSON body;
//! - 404 problem: the server runs no GitHub App;
//! - 503 problem: it could not be recorded (GitHub shows the delivery as
//!   failed, and it is asked for again).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use smithers_api::{Error, ErrorKind};
use smithers_github::{Incoming, Received};

use crate::Settings;
use crate::problem::Problem;

/// Takes one delivery.
pub(crate) async fn receive(
    State(settings): State<Arc<Settings>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(github) = settings.github_app.as_ref() else {
        return Problem(Error::not_found("this server runs no GitHub App")).into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let received = github
        .webhooks()
        .receive(Incoming {
            event: header("x-github-event"),
            delivery: header("x-github-delivery"),
            signature: header("x-hub-signature-256"),
            body: &body,
        })
        .await;
    match received {
        Ok(Received::New { guid }) => (
            StatusCode::ACCEPTED,
            Json(json!({"delivery": guid, "status": "recorded"})),
        )
            .into_response(),
        Ok(Received::SeenBefore { guid }) => (
            StatusCode::ACCEPTED,
            Json(json!({"delivery": guid, "status": "seen before"})),
        )
            .into_response(),
        Err(e) => {
            let error: Error = e.into();
            let error = match error.kind {
                // Whatever failed inside, GitHub is to try again later.
                ErrorKind::Internal | ErrorKind::Conflict => {
                    tracing::error!(error = %error.message, "a webhook delivery could not be recorded");
                    Error::unavailable(
                        "the delivery could not be recorded; it will be asked for again",
                    )
                }
                _ => error,
            };
            Problem(error).into_response()
        }
    }
}
