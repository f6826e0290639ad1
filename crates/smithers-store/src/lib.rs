//! Persistence for Smithers: the embedded SQLite store (the default, a file
//! in the data directory) and PostgreSQL (`SMITHERS_DATABASE_URL`), behind
//! one interface, with migrations applied on open.
//!
//! Both backends run the same SQL (through `sqlx`'s `Any` driver, with
//! `$N` placeholders that both understand) except where the schema must
//! differ (column types, triggers). One repository per aggregate:
//! [`Organizations`], [`AuditStore`], [`Secrets`]; the [`AuditLog`] puts group commit and
//! checkpoints on top of the audit store.

mod appender;
mod approvals;
mod audit;
mod audited;
mod data_dir;
mod destinations;
mod github;
mod github_stacks;
mod migrate;
mod model_turns;
mod orgs;
mod outbox;
mod policies;
mod run_changes;
mod runs;
mod secrets;
mod sessions;
mod signing_key;
mod tokens;
mod tool_calls;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use appender::{AuditLog, AuditLogConfig, AuditWriter};
pub use approvals::{Approval, ApprovalKind, ApprovalState, NewApproval};
pub use audit::{AuditQuery, AuditStore, Pruned, placeholder};
pub use audited::event as audit_event;
pub use data_dir::{DataDir, resolve_data_dir};
pub use destinations::{Destination, DestinationKind, Destinations, NewDestination};
pub use github::{
    Cause, Delivery, GITHUB_ACTOR, Github, GithubMember, GithubRun, Installation,
    InstallationChange, InstallationRef, NewDelivery, NewGithubRun, Outcome, Recorded, Repository,
    RepositoryRef, ResultState,
};
pub use github_stacks::{
    GithubStack, GithubStackMember, NewGithubStack, NewStackMember, StackState,
};
pub use model_turns::{Answer, ModelTurn, NewModelTurn};
pub use orgs::{DEFAULT_ORGANIZATION, Organization, Organizations, Role, User};
pub use outbox::{AUDIT_STREAM, AUDIT_SUBJECTS, AuditPublisher, audit_stream_config};
pub use policies::{Policies, PolicyVersion};
pub use run_changes::{CHANNEL as RUN_CHANGES_CHANNEL, RunChanges};
pub use runs::{
    LogLine, LogStream, LogsDropped, NewRun, Run, RunFilter, RunState, RunStep, Runs, StepState,
    StepUpdate,
};
pub use secrets::{
    Actor, Grant, GrantBinding, GrantFilter, GrantRequest, GrantState, KeyUsage, MAX_GRANT_TTL,
    ReadRequest, RewrapProgress, RewrapSummary, SecretRead, SecretRef, SecretSummary,
    SecretVersion, Secrets, VersionState, readable_secrets,
};
pub use sessions::{NewSession, NewSignIn, SessionRecord, Sessions, SignIn, Taken};
pub use signing_key::{KeySource, SIGNING_KEY_ENV, SIGNING_KEY_FILE, load_signing_key};
pub use tokens::{NewToken, TokenRecord, Tokens};
pub use tool_calls::{NewToolCall, ToolCallKey, ToolCallRecord, ToolCallState, ToolResult};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "unsupported database URL {0:?}: use postgres://… (or leave it unset for the embedded SQLite store)"
    )]
    UnsupportedUrl(String),
    /// A row that the schema allows but the model does not (the database
    /// was edited by hand).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error(transparent)]
    Audit(#[from] smithers_audit::Error),
    #[error("{0}")]
    Invalid(String),
    /// NATS could not be reached or refused a publish.
    #[error("NATS: {0}")]
    Nats(String),
    /// The audit writer has stopped: nothing more can be recorded.
    #[error("the audit log is closed")]
    AuditClosed,
    #[error(transparent)]
    Secrets(#[from] smithers_secrets::Error),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A check-and-set or state check failed: someone else changed it first.
    #[error("{0}")]
    Conflict(String),
    /// Not allowed: no usable grant, not an admin, deciding one's own request.
    #[error("access denied: {0}")]
    Denied(String),
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open, migrated database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Who waits on runs, woken when they change.
    changes: Arc<run_changes::Hub>,
}

/// The SQLite file inside a data directory.
pub const SQLITE_FILE: &str = "smithers.db";

impl Store {
    /// Opens the PostgreSQL database at `database_url` if given, else the
    /// SQLite file in `data_dir`; applies migrations and makes sure the
    /// default organization and its admin exist.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Store, Error> {
        sqlx::any::install_default_drivers();
        let store = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let options: AnyConnectOptions = url.parse()?;
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Store {
                    pool,
                    backend: Backend::Postgres,
                    changes: Arc::new(run_changes::Hub::new(run_changes::Source::Postgres(
                        url.to_string(),
                    ))),
                }
            }
            Some(url) => return Err(Error::UnsupportedUrl(url.to_string())),
            None => {
                let path = data_dir.join(SQLITE_FILE);
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let options: AnyConnectOptions = url.parse()?;
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer;
                            // synchronous=FULL makes a commit durable when it
                            // returns, which group commit pays for once per batch;
                            // secure_delete zeroes what a delete frees (a run's
                            // history key, a destroyed secret) instead of leaving
                            // it in free pages of the file.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA secure_delete = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Store {
                    pool,
                    backend: Backend::Sqlite,
                    changes: Arc::new(run_changes::Hub::new(run_changes::Source::Sqlite(path))),
                }
            }
        };
        migrate::apply(&store).await?;
        store.organizations().ensure_default().await?;
        Ok(store)
    }

    /// A waiter on run `run_id`, woken when it changes (in this process or
    /// another) or after `fallback` at the latest ([`RunChanges`]). The
    /// first waiter starts listening to other processes: on PostgreSQL a
    /// task of the current tokio runtime (so call it from inside one), on
    /// SQLite a file watch and its thread.
    pub fn run_changes(&self, run_id: &str, fallback: Duration) -> RunChanges {
        self.changes.subscribe(run_id, fallback)
    }

    /// Announces to this process's waiters that run `run_id` changed, once
    /// the change is committed. Other processes learn of it from the
    /// database: on PostgreSQL its triggers `NOTIFY smithers_runs` in the
    /// writing transaction (migration 0009), on SQLite its files change.
    pub(crate) fn announce(&self, run_id: &str) {
        self.changes.announce(run_id);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn organizations(&self) -> Organizations<'_> {
        Organizations { store: self }
    }

    pub fn policies(&self) -> Policies<'_> {
        Policies { store: self }
    }

    /// The API tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { store: self }
    }

    /// Browser sessions and sign-ins.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }

    /// The GitHub App's deliveries, installations and repositories.
    pub fn github(&self) -> Github<'_> {
        Github { store: self }
    }

    pub fn audit(&self) -> AuditStore<'_> {
        AuditStore { store: self }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    micros_at(std::time::SystemTime::now())
}

/// Microseconds since the Unix epoch at `at` (0 before the epoch).
pub fn micros_at(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
