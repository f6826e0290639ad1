//! The audit log: its events a page at a time, verification, an event's
//! inclusion proof, the export as JSON Lines, and the key that verifies
//! its checkpoints.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smithers_api::{
    AuditEvent, AuditExportLine, AuditProof, AuditPublicKey, AuditVerification, Error, Timestamp,
};
use smithers_app::{App, AuditFilter};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Caller;
use crate::openapi::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::problem::{Problem, ProblemDetails};

use super::{Paged, Reply, parsed_path, parsed_query};

/// The media type of the export: one JSON value a line.
pub const NDJSON: &str = "application/x-ndjson";

/// `?action=&actor=&since=&cursor=&limit=` of the event list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventListQuery {
    /// Events of this action only (`secret.read`).
    action: Option<String>,
    /// Events of this actor only.
    actor: Option<String>,
    /// An RFC 3339 time: events at or after it.
    since: Option<Timestamp>,
    /// Where a page starts: the `cursor` of the previous page's `Link`
    /// header, given back as it was.
    cursor: Option<String>,
    /// Events a page (50 unless given; at most 1000).
    #[serde(default = "default_event_limit")]
    limit: u64,
}

fn default_event_limit() -> u64 {
    u64::from(super::default_limit())
}

/// `GET /api/v1/audit/events`: the organization's events, oldest first,
/// a page at a time (`Link: <…>; rel="next"` while there is more).
#[utoipa::path(
    get,
    operation_id = "audit_events",
    path = "/api/v1/audit/events",
    tag = "audit",
    params(EventListQuery),
    responses(
        (status = 200, description = "A page of events, oldest first.", body = [AuditEvent],
         headers(("Link" = String, description = "`<…>; rel=\"next\"` (RFC 8288) while there is a next page: this request with its `cursor`."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    OriginalUri(uri): OriginalUri,
    query: Result<Query<EventListQuery>, QueryRejection>,
) -> Result<Paged<AuditEvent>, Problem> {
    let q = parsed_query(query)?;
    let filter = AuditFilter {
        action: q.action,
        actor: q.actor,
        since: q.since,
        limit: Some(q.limit),
    };
    let page = app
        .audit()
        .log_page(&caller, &filter, q.cursor.as_deref())
        .await?;
    Ok(Paged { page, uri })
}

/// `?trusted_keys=` of a verification: older checkpoint keys (64 hex
/// digits each), comma-separated.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Older checkpoint keys (64 hex digits each), comma-separated.
    trusted_keys: Option<String>,
}

/// `GET /api/v1/audit/verify`: the organization's hash chain, Merkle
/// roots and checkpoint signatures. A tampered log is a finding (200,
/// `"intact": false`), not an error.
#[utoipa::path(
    get,
    operation_id = "audit_verify",
    path = "/api/v1/audit/verify",
    tag = "audit",
    params(VerifyQuery),
    responses(
        (status = 200, description = "The verification: a tampered log is a finding, not an error.", body = AuditVerification),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<VerifyQuery>, QueryRejection>,
) -> Reply<AuditVerification> {
    let keys: Vec<String> = parsed_query(query)?
        .trusted_keys
        .iter()
        .flat_map(|k| k.split(','))
        .filter(|k| !k.trim().is_empty())
        .map(str::to_string)
        .collect();
    Ok(Json(app.audit().verify(&caller, &keys).await?))
}

/// `GET /api/v1/audit/events/{seq}/proof`: the event's inclusion proof in
/// the first signed checkpoint covering it. The service checks it against
/// the installation's key; one that does not hold is a fault of the log's
/// data (500 `internal`), as `smithers audit prove` fails on it.
#[utoipa::path(
    get,
    operation_id = "audit_proof",
    path = "/api/v1/audit/events/{seq}/proof",
    tag = "audit",
    params(("seq" = u64, Path, description = "The event's sequence number, from 1.")),
    responses(
        (status = 200, description = "The event, its leaf and its inclusion proof, checked.", body = AuditProof),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        (status = 500, description = "The proof does not hold: the log's data is at fault.", body = ProblemDetails, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn proof(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    path: Result<Path<u64>, PathRejection>,
) -> Reply<AuditProof> {
    let seq = parsed_path(path)?;
    let checked = app.audit().prove(&caller, seq).await?;
    if let Some(problem) = checked.problem {
        return Err(Problem(Error::internal(format!(
            "event {seq} is not proven: {problem}; run `smithers audit verify`"
        ))));
    }
    Ok(Json(checked.proof))
}

/// `?since=` of the export: the first sequence number.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The first sequence number (1 unless given).
    #[serde(default = "first_seq")]
    since: u64,
}

fn first_seq() -> u64 {
    1
}

/// Pages of the export in flight between the task reading them and the
/// response: a slow client holds the reading back.
const EXPORT_PAGES_IN_FLIGHT: usize = 2;

/// `GET /api/v1/audit/export`: the log from `since` on as JSON Lines
/// (`application/x-ndjson`), each line an event with its leaf and its
/// inclusion proof (`smithers audit export`'s lines). Streamed a page at
/// a time as the service reads them, never built in memory. A refusal
/// comes before the first byte, as a problem; a failure later ends the
/// response early (the transfer is cut, so a client cannot take a partial
/// export for a whole one).
#[utoipa::path(
    get,
    operation_id = "audit_export",
    path = "/api/v1/audit/export",
    tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON Lines: one `AuditExportLine` a line.", body = String, content_type = "application/x-ndjson"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(app): State<Arc<App>>,
    Caller(caller): Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let since = parsed_query(query)?.since;
    let (started, start) = oneshot::channel::<Result<(), Error>>();
    let (pages, body) = mpsc::channel::<Result<Bytes, Error>>(EXPORT_PAGES_IN_FLIGHT);
    // The export borrows the application, so it lives in a task that owns
    // a handle on it; the task stops when the client goes away (the
    // channel closes).
    tokio::spawn(async move {
        let audit = app.audit();
        let mut export = match audit.export(&caller, since).await {
            Ok(export) => export,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        if started.send(Ok(())).is_err() {
            return;
        }
        loop {
            let chunk = match export.next_page().await {
                Ok(None) => return,
                Ok(Some(lines)) => json_lines(&lines),
                Err(e) => Err(e),
            };
            if let Err(e) = &chunk {
                tracing::warn!(error = %e, "the audit export stopped");
            }
            let failed = chunk.is_err();
            if pages.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    start
        .await
        .map_err(|_| Error::internal("the audit export stopped before it began"))??;
    let stream = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    Ok(response)
}

/// `lines` as JSON Lines.
fn json_lines(lines: &[AuditExportLine]) -> Result<Bytes, Error> {
    let mut out = Vec::with_capacity(lines.len() * 1024);
    for line in lines {
        serde_json::to_writer(&mut out, line)
            .map_err(|e| Error::internal(format!("an export line: {e}")))?;
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

/// `GET /api/v1/audit/public-key`: the key that verifies this
/// installation's checkpoints. Public, like any verification key: no
/// token needed.
#[utoipa::path(
    get,
    operation_id = "audit_public_key",
    path = "/api/v1/audit/public-key",
    tag = "audit",
    responses((status = 200, description = "The key that verifies this installation's checkpoints.", body = AuditPublicKey))
)]
pub async fn public_key(State(app): State<Arc<App>>) -> Json<AuditPublicKey> {
    Json(app.audit().public_key())
}
