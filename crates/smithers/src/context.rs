//! What every command that touches state needs: the data directory, the
//! store, the audit signing key.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use smithers_store::{AuditLog, AuditLogConfig, AuditWriter, DEFAULT_ORGANIZATION, DataDir, Store};

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

    pub async fn open(&self) -> Result<(DataDir, Store)> {
        let dir = self.data_dir()?;
        let url = self.database_url.as_deref().filter(|u| !u.is_empty());
        let store = Store::open(dir.path(), url)
            .await
            .with_context(|| match url {
                Some(_) => {
                    "cannot open the PostgreSQL database from SMITHERS_DATABASE_URL".to_string()
                }
                None => format!("cannot open the store in {}", dir.path().display()),
            })?;
        Ok((dir, store))
    }
}

/// The application's settings from the flags and the environment, with
/// this very binary as the sandboxes' helper.
pub fn app_config(state: &StateArgs) -> smithers_app::Config {
    let mut config =
        smithers_app::Config::from_env(state.data_dir.clone(), state.database_url.clone());
    config.sandbox_helper = std::env::current_exe()
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

/// The checkpoint signing key, from `SMITHERS_AUDIT_SIGNING_KEY` or the key file.
pub fn signer(dir: &DataDir) -> Result<CheckpointSigner> {
    let env = std::env::var(smithers_store::SIGNING_KEY_ENV).ok();
    let (signer, source) = smithers_store::load_signing_key(dir, env.as_deref())?;
    if let smithers_store::KeySource::Created(path) = source {
        eprintln!(
            "created the audit signing key {} (key id {}); keep a copy of it outside this machine",
            path.display(),
            signer.key_id()
        );
    }
    Ok(signer)
}

/// An audit log writer for the length of one command.
pub fn audit_log(store: &Store, signer: CheckpointSigner) -> (AuditLog, AuditWriter) {
    AuditLog::start(store.clone(), signer, AuditLogConfig::default())
}

/// A tokio runtime for the commands that talk to a database.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// With `SMITHERS_NATS_URL` set, delivers what the audit log has not
/// yet delivered (`smithers_app::deliver_pending_audit`), for the commands
/// that have not moved onto the service layer.
pub async fn deliver_to_nats(store: &Store) {
    if let Some(url) = std::env::var("SMITHERS_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        smithers_app::deliver_pending_audit(store, &url).await;
    }
}

/// An audit event happening now, from this command line.
pub fn event(
    organization_id: &str,
    actor_type: ActorType,
    actor_id: String,
    action: &str,
    resource: (&str, String),
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        organization_id: organization_id.to_string(),
        actor_type,
        actor_id,
        action: action.to_string(),
        resource_type: resource.0.to_string(),
        resource_id: resource.1,
        details,
        ip_address: None,
        timestamp: smithers_store::now_micros(),
    }
}
