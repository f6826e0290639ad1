//! Smithers' HTTP front end. Like the command line it only parses,
//! calls the service layer (`smithers-app`) with the caller, and renders:
//! the routes under `/api/v1` return the `smithers-api` shapes as JSON,
//! callers authenticate with API tokens (`Authorization: Bearer smt_…`,
//! RFC 6750), and every refusal is an RFC 9457 problem
//! (`application/problem+json`) carrying the stable error code.
//!
//! ```text
//! GET  /healthz                          the process answers
//! GET  /readyz                           the database answers
//! GET  /api/v1/runs[?all=&limit=]        runs, newest first
//! GET  /api/v1/runs/{id}                 a run with everything it did
//! GET  /api/v1/runs/{id}/logs[?after=&limit=]
//! POST /api/v1/runs/{id}/cancel
//! GET  /api/v1/approvals[?all=]          pending approvals
//! GET  /api/v1/approvals/{id}
//! POST /api/v1/approvals/{id}/approve    {"comment"?}
//! POST /api/v1/approvals/{id}/reject     {"reason"}
//! GET  /api/v1/users
//! ```

mod auth;
mod problem;
mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use smithers_app::App;
use tokio::net::TcpListener;

pub use auth::Caller;
pub use problem::{PROBLEM_JSON, Problem};

/// The routes, over `app`.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/runs", get(routes::runs::list))
        .route("/runs/{id}", get(routes::runs::show))
        .route("/runs/{id}/logs", get(routes::runs::logs))
        .route("/runs/{id}/cancel", post(routes::runs::cancel))
        .route("/approvals", get(routes::approvals::list))
        .route("/approvals/{id}", get(routes::approvals::show))
        .route("/approvals/{id}/approve", post(routes::approvals::approve))
        .route("/approvals/{id}/reject", post(routes::approvals::reject))
        .route("/users", get(routes::users::list));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .nest("/api/v1", api)
        .fallback(routes::not_found)
        .with_state(app)
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes
/// the requests under way.
///
/// Errors: the listener's.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
