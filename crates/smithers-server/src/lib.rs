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
//! GET  /api/v1/runs[?all=&state=&workflow=&repository=&requested_by=&cursor=&limit=]
//!                                        runs, newest first, paged (Link: rel="next")
//! POST /api/v1/runs                      {"repository","workflow","provider"?,"image"?}
//! GET  /api/v1/runs/{id}                 a run with everything it did
//! GET  /api/v1/runs/{id}/logs[?after=&limit=]
//! POST /api/v1/runs/{id}/cancel
//! POST /api/v1/runs/{id}/resume
//! GET  /api/v1/runs/{id}/events          Server-Sent Events: log lines and changes, live;
//!                                        Last-Event-ID (or ?after=) resumes
//! GET  /api/v1/approvals[?all=]          pending approvals
//! GET  /api/v1/approvals/{id}
//! POST /api/v1/approvals/{id}/approve    {"comment"?}
//! POST /api/v1/approvals/{id}/reject     {"reason"}
//! GET  /api/v1/stacks[?all=&limit=]      chains of pull requests the GitHub App opened
//! GET  /api/v1/stacks/{id}
//! POST /api/v1/stacks/{id}/sync          take the branches as they are on GitHub
//! GET  /api/v1/users
//! POST /api/v1/users                     {"name","role"} → 201
//! PUT  /api/v1/users/{name}/role         {"role"} → the user (their sessions end)
//! DELETE /api/v1/users/{name}            the user removed (sessions end, tokens go)
//! GET  /api/v1/secrets[?environment=]    metadata only: a value never comes out
//! PUT  /api/v1/secrets/{env}/{name}      {"value","expect_version"?} → 201
//! POST /api/v1/secrets/{env}/{name}/rotate  {"value","expect_version"?}
//! GET  /api/v1/secrets/{env}/{name}/versions
//! DELETE /api/v1/secrets/{env}/{name}/versions/{version}
//! GET  /api/v1/secrets/keys
//! POST /api/v1/secrets/rewrap
//! GET  /api/v1/grants[?environment=&name=&all=]
//! POST /api/v1/grants                    {"environment","name","binding","ttl_seconds","single_use"} → 201
//! POST /api/v1/grants/{id}/approve       {"comment"?}
//! POST /api/v1/grants/{id}/deny          {"reason"}
//! GET  /api/v1/audit/events[?action=&actor=&since=&cursor=&limit=]
//!                                        oldest first, paged (Link: rel="next")
//! GET  /api/v1/audit/events/{seq}/proof  the inclusion proof, checked
//! GET  /api/v1/audit/verify[?trusted_keys=]
//! GET  /api/v1/audit/export[?since=]     JSON Lines (application/x-ndjson), streamed
//! GET  /api/v1/audit/public-key          public: no token needed
//! GET  /api/v1/policy[?version=]         the policy in force, with its text
//! PUT  /api/v1/policy[?file=]            the text as the body → 201
//! DELETE /api/v1/policy
//! GET  /api/v1/policy/history
//! GET  /api/v1/tokens                    (tokens are a person's: refused
//! POST /api/v1/tokens                     through an API token)
//! DELETE /api/v1/tokens/{id}
//! GET  /api/v1/openapi.json              this API's OpenAPI 3.1 document (public)
//! POST /github/webhook                   the GitHub App's deliveries (signed by GitHub)
//! ```
//!
//! The OpenAPI document is generated from the handlers' annotations (see
//! the `openapi` module for how a route is documented); a method a path
//! does not serve is a 405 problem, with `Allow`.

mod auth;
mod dashboard;
mod openapi;
mod page;
mod pool;
mod problem;
mod routes;
mod signin;
mod tls;
mod webhook;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use smithers_app::App;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{Caller, SESSION_COOKIE, Session};
pub use openapi::ApiDoc;
pub use page::CONTENT_SECURITY_POLICY;
pub use pool::RunPool;
pub use problem::{PROBLEM_JSON, Problem};
pub use tls::{HANDSHAKE_TIMEOUT, TlsConfig, TlsListener};

/// How a server carries out runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Runs carried out at once; more wait, queued.
    pub run_slots: usize,
    /// The directories whose git repositories `POST /api/v1/runs` may
    /// start runs on (a repository's real path must lie under one); none:
    /// runs are started from the command line only.
    pub repository_roots: Vec<PathBuf>,
    /// The origin people reach the server at (`https://smithers.example`),
    /// when it is not the address it listens on (behind a proxy): what a
    /// browser's `Origin` must be, and where sign-in links point.
    pub public_origin: Option<String>,
    /// People sign in with this OpenID Connect provider too
    /// (`GET /sign-in/oidc`); none: with local links only.
    pub oidc: Option<Arc<smithers_app::OidcSignIn>>,
    /// People sign in with GitHub too, through a GitHub App
    /// (`GET /sign-in/github`); none: not with GitHub.
    pub github: Option<Arc<smithers_app::GithubSignIn>>,
    /// The GitHub App (`POST /github/webhook`); none: the route answers
    /// 404.
    pub github_app: Option<Arc<smithers_github::GithubApp>>,
    /// HTTPS with this certificate and key (`--tls-cert`, `--tls-key`);
    /// none: plain HTTP (on loopback, or behind a proxy that terminates
    /// TLS).
    pub tls: Option<TlsConfig>,
    /// Run a retention pass over every organization that has a retention
    /// at start and then this often (`smithers serve` runs one hourly);
    /// none: never.
    pub retention_interval: Option<std::time::Duration>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            run_slots: 4,
            repository_roots: Vec::new(),
            public_origin: None,
            oidc: None,
            github: None,
            github_app: None,
            tls: None,
            retention_interval: None,
        }
    }
}

/// What every route reaches: the application, the pool carrying out
/// runs, the settings, and the signal that the server stops (which ends
/// live streams).
#[derive(Clone)]
pub struct ServerState {
    pub app: Arc<App>,
    pub pool: Arc<RunPool>,
    pub settings: Arc<Settings>,
    pub stopping: CancellationToken,
}

impl FromRef<ServerState> for Arc<App> {
    fn from_ref(state: &ServerState) -> Arc<App> {
        state.app.clone()
    }
}

impl FromRef<ServerState> for Arc<Settings> {
    fn from_ref(state: &ServerState) -> Arc<Settings> {
        state.settings.clone()
    }
}

/// The routes, over `state`.
pub fn router(state: ServerState) -> Router {
    let api = Router::new()
        .route("/runs", get(routes::runs::list).post(routes::runs::start))
        .route("/runs/{id}", get(routes::runs::show))
        .route("/runs/{id}/logs", get(routes::runs::logs))
        .route("/runs/{id}/events", get(routes::events::events))
        .route("/runs/{id}/cancel", post(routes::runs::cancel))
        .route("/runs/{id}/resume", post(routes::runs::resume))
        .route("/approvals", get(routes::approvals::list))
        .route("/approvals/{id}", get(routes::approvals::show))
        .route("/approvals/{id}/approve", post(routes::approvals::approve))
        .route("/approvals/{id}/reject", post(routes::approvals::reject))
        .route("/stacks", get(routes::stacks::list))
        .route("/stacks/{id}", get(routes::stacks::show))
        .route("/stacks/{id}/sync", post(routes::stacks::sync))
        .route("/users", get(routes::users::list).post(routes::users::add))
        .route(
            "/users/{name}",
            axum::routing::delete(routes::users::remove),
        )
        .route(
            "/users/{name}/role",
            axum::routing::put(routes::users::set_role),
        )
        .route("/secrets", get(routes::secrets::list))
        .route("/secrets/keys", get(routes::secrets::keys))
        .route("/secrets/rewrap", post(routes::secrets::rewrap))
        .route(
            "/secrets/{environment}/{name}",
            axum::routing::put(routes::secrets::set),
        )
        .route(
            "/secrets/{environment}/{name}/rotate",
            post(routes::secrets::rotate),
        )
        .route(
            "/secrets/{environment}/{name}/versions",
            get(routes::secrets::versions),
        )
        .route(
            "/secrets/{environment}/{name}/versions/{version}",
            axum::routing::delete(routes::secrets::destroy),
        )
        .route(
            "/grants",
            get(routes::secrets::grants).post(routes::secrets::request_grant),
        )
        .route("/grants/{id}/approve", post(routes::secrets::approve_grant))
        .route("/grants/{id}/deny", post(routes::secrets::deny_grant))
        .route("/audit/events", get(routes::audit::events))
        .route("/audit/events/{seq}/proof", get(routes::audit::proof))
        .route("/audit/verify", get(routes::audit::verify))
        .route("/audit/export", get(routes::audit::export))
        .route("/audit/public-key", get(routes::audit::public_key))
        .route(
            "/policy",
            get(routes::policies::show)
                .put(routes::policies::publish)
                .delete(routes::policies::unpublish),
        )
        .route("/policy/history", get(routes::policies::history))
        .route(
            "/tokens",
            get(routes::tokens::list).post(routes::tokens::create),
        )
        .route(
            "/tokens/{id}",
            axum::routing::delete(routes::tokens::revoke),
        );
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/sign-in/local", get(signin::local))
        .route("/sign-in/oidc", get(signin::oidc_begin))
        .route("/sign-in/oidc/callback", get(signin::oidc_callback))
        .route("/sign-in/github", get(signin::github_begin))
        .route("/sign-in/github/callback", get(signin::github_callback))
        .route("/sign-out", post(signin::sign_out))
        .route(
            "/github/webhook",
            post(webhook::receive).layer(axum::extract::DefaultBodyLimit::max(
                smithers_github::webhooks::MAX_BODY_BYTES,
            )),
        )
        .merge(dashboard::routes())
        .nest("/api/v1", api)
        // After the nesting, so that it covers every route (nesting
        // flattens the routes into this router): a wrong method is a
        // problem too, with the `Allow` header the router adds.
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(axum::middleware::map_response(page::secure_headers))
        .with_state(state)
}

/// [`serve_with`] the default [`Settings`].
///
/// Errors: the listener's.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(app, listener, Settings::default(), shutdown).await
}

/// Serves `app` on `listener` until `shutdown` resolves: first carries on
/// the runs it finds interrupted (every organization's), then answers
/// requests and carries out the runs they start. When `shutdown`
/// resolves it takes no more connections or runs, ends live streams,
/// finishes the requests under way, and leaves every run it was carrying
/// out at its last committed point (see [`RunPool`]).
///
/// Errors: the listener's.
pub async fn serve_with(
    app: Arc<App>,
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = CancellationToken::new();
    let pool = RunPool::new(app.clone(), settings.run_slots, stopping.clone());
    match app.runs().resume_interrupted_everywhere(&*pool).await {
        Ok(resumed) => {
            for (run, _) in resumed {
                tracing::info!(run = %run.id, workflow = %run.workflow, "carrying on an interrupted run");
            }
        }
        // The server still answers: the runs wait for a resume.
        Err(e) => tracing::warn!(error = %e, "the interrupted runs could not be resumed"),
    }
    // The GitHub App's recorded deliveries are carried out beside the
    // requests, until the server stops.
    let deliveries = settings.github_app.clone().map(|github| {
        let stopping = stopping.clone();
        let pool = pool.clone();
        tokio::spawn(async move { github.run(&*pool, stopping.cancelled_owned()).await })
    });
    // Every organization's audit destinations, delivered beside the
    // requests until the server stops.
    let destinations = {
        let app = app.clone();
        let stopping = stopping.clone();
        tokio::spawn(smithers_app::destinations::deliver_destinations(
            app,
            smithers_app::destinations::DeliverySettings::default(),
            stopping.cancelled_owned(),
        ))
    };
    let retention = settings.retention_interval.map(|every| {
        let app = app.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move { retention_loop(&app, every, stopping).await })
    });
    let state = ServerState {
        app,
        pool: pool.clone(),
        settings: Arc::new(settings),
        stopping: stopping.clone(),
    };
    // The signal stops the runs and the live streams at once; the
    // connections then finish what they were answering.
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    let tls = state.settings.tls.clone();
    let service = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = match tls {
        Some(tls) => {
            // `tap_io` (doing nothing) makes axum give the peer's address
            // to handlers (`ConnectInfo<SocketAddr>`) for any listener.
            let listener = TlsListener::new(listener, &tls)?.tap_io(|_| {});
            axum::serve(listener, service)
                .with_graceful_shutdown(signal)
                .await
        }
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(signal)
                .await
        }
    };
    // Whatever ended the serving, no run task outlives it.
    stopping.cancel();
    pool.stop().await;
    if let Some(deliveries) = deliveries {
        let _ = deliveries.await;
    }
    if let Some(retention) = retention {
        let _ = retention.await;
    }
    let _ = destinations.await;
    served
}

/// A retention pass over every organization that has a retention, now and
/// then every `every`, until the server stops. A pass that fails is
/// logged and tried again at the next.
async fn retention_loop(app: &App, every: std::time::Duration, stopping: CancellationToken) {
    loop {
        for pass in app.retention().run_all(false).await {
            match pass {
                Ok(pass) => tracing::info!(
                    organization = %pass.organization,
                    runs = pass.runs,
                    lines = pass.lines,
                    outputs = pass.outputs,
                    audit_events = pass.audit.as_ref().map_or(0, |a| a.events),
                    "retention pass"
                ),
                Err((organization, e)) => {
                    tracing::warn!(%organization, error = %e, "retention pass failed")
                }
            }
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
