//! What every command needs: the data directory and database from the
//! flags, the application opened on them, who acts, and a service's
//! outcome as the exit status.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use smithers_store::{DEFAULT_ORGANIZATION, DataDir};

/// Where Smithers keeps its state.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The data directory (default: $SMITHERS_HOME, else the platform's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL instead of the embedded SQLite store (postgres://…).
    #[arg(
        long,
        global = true,
        env = "SMITHERS_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

impl StateArgs {
    pub fn data_dir(&self) -> Result<DataDir> {
        let home = std::env::var("SMITHERS_HOME").ok();
        smithers_store::resolve_data_dir(self.data_dir.as_deref(), home.as_deref()).map_err(|e| {
            match e {
                smithers_store::Error::Invalid(_) => {
                    anyhow::anyhow!("{e}: pass --data-dir or set SMITHERS_HOME")
                }
                other => other.into(),
            }
        })
    }
}

/// The application's settings from the flags and the environment, with
/// this very binary as the sandboxes' helper.
pub fn app_config(state: &StateArgs) -> smithers_app::Config {
    let mut config =
        smithers_app::Config::from_env(state.data_dir.clone(), state.database_url.clone());
    config.sandbox_helper =
        std::env::current_exe()
            .ok()
            .map(|program| smithers_app::SandboxHelper {
                program,
                args: vec![crate::sandbox_cmd::HELPER_ARG.to_string()],
            });
    config
}

/// The application, opened from the flags and the environment; what it
/// has to say on opening (a signing key it made) goes to stderr.
pub async fn open_app(state: &StateArgs) -> Result<smithers_app::App, smithers_api::Error> {
    open_config(app_config(state)).await
}

/// The application opened with `config`; what it has to say on opening
/// goes to stderr.
pub async fn open_config(
    config: smithers_app::Config,
) -> Result<smithers_app::App, smithers_api::Error> {
    let app = smithers_app::App::open(config).await?;
    for notice in app.notices() {
        match notice {
            smithers_app::Notice::CreatedSigningKey { path, key_id } => eprintln!(
                "created the audit signing key {} (key id {key_id}); keep a copy of it outside this machine",
                path.display()
            ),
        }
    }
    Ok(app)
}

/// A service's outcome as the command's exit status: a refusal is printed
/// as `error: …` and exits with its kind's code (`smithers_api::ErrorKind::exit_code`).
pub fn exit(outcome: Result<ExitCode, smithers_api::Error>) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}

/// Runs a command that stands on the service layer: its outcome as the
/// exit status ([`exit`]).
pub fn serve(
    work: impl std::future::Future<Output = Result<ExitCode, smithers_api::Error>>,
) -> Result<ExitCode> {
    Ok(exit(runtime()?.block_on(work)))
}

/// Who acts, in which organization.
#[derive(Debug, Clone, Args)]
pub struct ActorArgs {
    /// The organization.
    #[arg(long, global = true, default_value = DEFAULT_ORGANIZATION)]
    pub org: String,
    /// Act as this user of the organization.
    #[arg(
        long = "as",
        global = true,
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    pub user: String,
}

/// A tokio runtime for the commands that talk to a database.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
