//! `GET /github`: the GitHub App as the organization sees it — what needs
//! a person (an unprotected default branch, a suspended installation, a
//! failed delivery) first, then the installations, the repositories with
//! their default branch's protection, and the latest deliveries. The same
//! service call as `smithers github status`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::{Viewer, ago, frame, refusal};
use crate::ServerState;

/// `GET /github`.
pub async fn status(State(state): State<ServerState>, viewer: Viewer) -> Response {
    let status = match state.app.github_status(&viewer.principal).await {
        Ok(status) => status,
        Err(e) => return refusal(&e),
    };
    let body = html! {
        h1 { "GitHub" }
        @for warning in &status.warnings {
            p.notice.error { (warning) }
        }
        @if status.installations.is_empty() {
            p { "The GitHub App is not installed anywhere yet: see " code { "smithers github manifest" } "." }
        } @else {
            h2 { "Installations" }
            table {
                thead { tr { th { "Account" } th { "Repositories" } th { "State" } th { "Installed" } } }
                tbody {
                    @for i in &status.installations {
                        tr {
                            td { (i.account) " (" (i.account_type) ")" }
                            td { (i.repository_selection) }
                            td { @if i.deleted { "deleted" } @else if i.suspended { "suspended" } @else { "active" } }
                            td { (ago(i.created_at)) }
                        }
                    }
                }
            }
        }
        @if !status.repositories.is_empty() {
            h2 { "Repositories" }
            table {
                thead { tr { th { "Repository" } th { "Default branch" } th { "Protected on GitHub" } } }
                tbody {
                    @for r in status.repositories.iter().filter(|r| r.connected) {
                        tr id=(format!("repository-{}", r.id)) {
                            td { (r.full_name) }
                            td { (r.default_branch.as_deref().unwrap_or("?")) }
                            td {
                                @match r.default_branch_protected {
                                    Some(true) => "yes",
                                    Some(false) => strong { "no" },
                                    None => "not checked yet",
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !status.deliveries.is_empty() {
            h2 { "Latest deliveries" }
            table {
                thead { tr { th { "Received" } th { "Event" } th { "Delivery" } th { "Outcome" } } }
                tbody {
                    @for d in &status.deliveries {
                        tr {
                            td { (ago(d.received_at)) }
                            td { (d.event) @if let Some(a) = &d.action { "." (a) } }
                            td { code { (d.guid) } }
                            td {
                                (d.outcome.as_deref().unwrap_or("pending"))
                                @if let Some(detail) = &d.detail { " — " (detail) }
                            }
                        }
                    }
                }
            }
        }
    };
    frame(&viewer, "/github", "GitHub", body).into_response()
}
