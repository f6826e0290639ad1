//! `smithers serve`: the HTTP API over this data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::context::{self, StateArgs};

#[derive(Debug, Args)]
#[command(after_help = "\
Callers authenticate with API tokens (`smithers tokens create NAME --scope …`) sent as
`Authorization: Bearer …`; refusals are RFC 9457 problems (application/problem+json).
GET /healthz and /readyz answer without a token. The server carries out the runs started
through it (--run-slots at once) and, when it starts, the runs it finds interrupted. On SIGINT
or SIGTERM it takes no more work, finishes the requests under way, and leaves every run at its
last committed point; the next start carries them on.")]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Runs carried out at once; more wait, queued.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    run_slots: u16,
    /// A directory whose git repositories `POST /api/v1/runs` may start runs on (repeatable);
    /// without one, runs are started from the command line only.
    #[arg(long = "repository-root", value_name = "DIR")]
    repository_roots: Vec<PathBuf>,
}

pub fn run(args: ServeArgs, state: &StateArgs) -> Result<ExitCode> {
    context::runtime()?.block_on(async {
        let app = match context::open_app(state).await {
            Ok(app) => Arc::new(app),
            Err(e) => return Ok(context::exit(Err(e))),
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        eprintln!("smithers: serving the API on http://{address}/api/v1 (Ctrl-C to stop)");
        let settings = smithers_server::Settings {
            run_slots: usize::from(args.run_slots),
            repository_roots: args.repository_roots,
        };
        smithers_server::serve_with(app.clone(), listener, settings, stopped())
            .await
            .context("the server stopped")?;
        app.deliver_audit().await;
        eprintln!("smithers: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM cannot be caught; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
