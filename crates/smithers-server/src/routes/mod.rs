//! The routes: each parses its request, calls one service of the
//! application with the caller, and returns the `smithers-api` value as
//! JSON (the same shapes as the command line's `--json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use smithers_api::Error;
use smithers_app::App;

use crate::problem::Problem;

pub mod approvals;
pub mod runs;
pub mod users;

type Reply<T> = Result<Json<T>, Problem>;

/// `?all=&limit=` of a list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers too.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    app.ready().await?;
    Ok("ready\n")
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
