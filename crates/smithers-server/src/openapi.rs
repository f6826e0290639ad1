//! The OpenAPI 3.1 document of the HTTP API, generated from the code by
//! `utoipa` and served at `GET /api/v1/openapi.json` (no token needed).
//! Nothing in it is written by hand: the operations come from the
//! `#[utoipa::path]` attribute of each route's handler, the schemas from
//! the `smithers-api` types (their `openapi` feature) and the request
//! types beside the handlers.
//!
//! A new route is documented in three steps, and `tests/openapi.rs`
//! fails until all three are done:
//!
//! 1. its handler gets `#[utoipa::path(...)]`: the method, the full
//!    `path` (`/api/v1/…`), a `tag`, `params(...)` (path parameters as
//!    `("id" = String, Path, description = "…")`, a query struct deriving
//!    `utoipa::IntoParams` with `#[into_params(parameter_in = Query)]`),
//!    `request_body`, one entry in `responses(...)` per status it can
//!    give — the successes with their body (and headers such as `Link`),
//!    the refusals by reference to the problem responses below
//!    (`(status = 404, response = NotFound)`) — and
//!    `security(("bearer" = []))` unless it serves callers without a
//!    token;
//! 2. every type it returns or accepts derives `utoipa::ToSchema` (in
//!    `smithers-api`: `#[cfg_attr(feature = "openapi",
//!    derive(utoipa::ToSchema))]`);
//! 3. the handler is named in [`ApiDoc`]'s `paths(...)`, and its method
//!    and path in the test's list of routes.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::{PROBLEM_JSON, ProblemDetails};
use crate::routes;

/// The document: every route's operation, the schemas they use, the
/// problem responses and the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Smithers",
        description = "The HTTP API of Smithers, a self-hostable control plane for running AI \
                       coding agents safely. Callers authenticate with an API token \
                       (`Authorization: Bearer smt_…`); every refusal is an RFC 9457 problem \
                       (`application/problem+json`) carrying a stable error `code`."
    ),
    paths(
        routes::healthz,
        routes::readyz,
        document,
        routes::runs::list,
        routes::runs::start,
        routes::runs::show,
        routes::runs::logs,
        routes::events::events,
        routes::runs::cancel,
        routes::runs::resume,
        routes::approvals::list,
        routes::approvals::show,
        routes::approvals::approve,
        routes::approvals::reject,
        routes::stacks::list,
        routes::stacks::show,
        routes::stacks::sync,
        routes::users::list,
        routes::users::add,
        routes::users::set_role,
        routes::users::remove,
        routes::secrets::list,
        routes::secrets::keys,
        routes::secrets::rewrap,
        routes::secrets::set,
        routes::secrets::rotate,
        routes::secrets::versions,
        routes::secrets::destroy,
        routes::secrets::grants,
        routes::secrets::request_grant,
        routes::secrets::approve_grant,
        routes::secrets::deny_grant,
        routes::audit::events,
        routes::audit::proof,
        routes::audit::verify,
        routes::audit::export,
        routes::audit::public_key,
        routes::policies::show,
        routes::policies::publish,
        routes::policies::unpublish,
        routes::policies::history,
        routes::tokens::list,
        routes::tokens::create,
        routes::tokens::revoke,
    ),
    components(
        schemas(ProblemDetails),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unavailable)
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Whether the server and its database answer."),
        (name = "runs", description = "Runs: list, start, show, logs, cancel, resume."),
        (name = "approvals", description = "What runs wait for a human to decide."),
        (name = "stacks", description = "Chains of pull requests the GitHub App opened and keeps current."),
        (name = "users", description = "The organization's users."),
        (name = "secrets", description = "Secrets' metadata and new values; a value never comes out."),
        (name = "grants", description = "Grants to read a secret, decided by another admin."),
        (name = "audit", description = "The tamper-evident audit log."),
        (name = "policy", description = "The organization's policy."),
        (name = "tokens", description = "API tokens (a person's: refused through an API token)."),
        (name = "openapi", description = "This document."),
    )
)]
pub struct ApiDoc;

/// The `bearer` HTTP security scheme the operations that need a token
/// name (RFC 6750; the token is `smt_…`).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("smt_…")
                    .description(Some(
                        "An API token, `Authorization: Bearer smt_…`, narrowed to its scopes.",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/v1/openapi.json`: this document. Public, like the API's
/// shape: no token needed.
#[utoipa::path(
    get,
    operation_id = "openapi_document",
    path = "/api/v1/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object))
)]
pub async fn document() -> Response {
    // Built once: the document is fixed for the life of the process.
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());
    let mut response = DOCUMENT.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

// The problem responses operations refer to, one per status. Only their
// schemas are used: they are never built (`Problem` is).

/// The request does not parse (path, query string or body), or names a
/// value the service refuses.
#[derive(utoipa::ToResponse)]
#[response(content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub(crate) struct BadRequest(ProblemDetails);

/// No token, or one that is unknown, expired or revoked.
#[derive(utoipa::ToResponse)]
#[response(
    content_type = PROBLEM_JSON,
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"smithers\"` (RFC 6750)."))
)]
#[allow(dead_code)]
pub(crate) struct Unauthorized(ProblemDetails);

/// The caller may not do this: the token lacks the scope, or the caller's
/// role or relation to the thing forbids it.
#[derive(utoipa::ToResponse)]
#[response(content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub(crate) struct Forbidden(ProblemDetails);

/// Nothing of that name or id in the caller's organization.
#[derive(utoipa::ToResponse)]
#[response(content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub(crate) struct NotFound(ProblemDetails);

/// The state changed under the request: already there, already decided,
/// a check-and-set that lost.
#[derive(utoipa::ToResponse)]
#[response(content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub(crate) struct Conflict(ProblemDetails);

/// Something the request needs cannot be reached now (the database, the
/// keyring not configured, the server stopping); trying later may work.
#[derive(utoipa::ToResponse)]
#[response(content_type = PROBLEM_JSON)]
#[allow(dead_code)]
pub(crate) struct Unavailable(ProblemDetails);
