//! `smithers serve`: the HTTP API over this data directory.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::context::{self, StateArgs};

#[derive(Debug, Args)]
#[command(after_help = "\
Callers authenticate with API tokens (`smithers tokens create NAME --scope …`) sent as
`Authorization: Bearer …`; refusals are RFC 9457 problems (application/problem+json).
GET /healthz and /readyz answer without a token. Stops on SIGINT or SIGTERM, finishing the
requests under way.")]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
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
        smithers_server::serve(app.clone(), listener, stopped())
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
