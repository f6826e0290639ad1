//! The service layer every front end stands on: the command line today,
//! the HTTP server and the GitHub App's webhooks next. Each operation is a
//! method of a service taking the [`Principal`] who asks; whether it may is
//! decided once, in [`authz`], and what it returns is a `smithers-api`
//! type, so every front end renders the same shapes and refuses with the
//! same [`smithers_api::Error`].
//!
//! ```text
//!        CLI        server      webhooks
//!          \          |          /
//!           `---- smithers-app ----'     (this crate: App, services, authz)
//!                     |
//!     engine -> sandbox -> store -> secrets, audit, policy
//! ```

mod approvals;
mod audit;
pub mod authz;
mod config;
pub mod destinations;
mod error;
mod github;
mod github_signin;
mod oidc;
mod policies;
mod principal;
mod retention;
mod runs;
mod sandboxes;
mod secret;
mod secrets;
mod sessions;
mod stacks;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smithers_api::Error;
use smithers_audit::CheckpointSigner;
use smithers_engine::run::{Engine, Settings};
use smithers_store::{DataDir, KeySource, Secrets, Store};

pub use approvals::{Approvals, approval_dto};
pub use audit::*;
pub use authz::Operation;
pub use config::Config;
pub use error::{engine_error, store_error};
pub use github_signin::{
    GITHUB_SIGN_IN_TTL, GithubCallback, GithubSettings, GithubSignIn, GithubStarted,
};
pub use oidc::{OIDC_SIGN_IN_TTL, OidcCallback, OidcSettings, OidcSignIn, OidcStarted, UserClaim};
pub use policies::{CapabilityCheck, Policies};
pub use principal::{Principal, Via};
pub use retention::{RETENTION_INTERVAL, RetentionService, parse_retention};
pub use runs::*;
pub use sandboxes::{
    EgressObserver, Purged, PurgedSandbox, SandboxHelper, SandboxRun, SandboxRunOutcome,
    audited_egress,
};
pub use secrets::*;
pub use sessions::{
    Client, OpenedSession, SESSION_PREFIX, SESSION_TTL, SIGN_IN_LINK_TTL, SIGN_IN_PREFIX,
    SessionPrincipal,
};
pub use stacks::{MAX_STACKS, Stacks};
pub use tokens::{DEFAULT_TOKEN_TTL, MAX_TOKEN_TTL, TOKEN_PREFIX, Tokens};
pub use users::Users;

pub use smithers_engine::run::Pinned;
/// The sandbox providers a run can name.
pub use smithers_engine::workflow::ProviderKind;
/// The sandbox helper's entry point, for a binary that is its own helper
/// (`smithers_sandbox::helper::main`).
pub use smithers_sandbox::helper::main as sandbox_helper_main;
/// What [`App::run_changes`] gives: a wake-up when a run changes.
pub use smithers_store::RunChanges;

/// What a front end is told once, when the application opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// No signing key existed: one was made and written to this file; a
    /// copy belongs outside this machine.
    CreatedSigningKey { path: PathBuf, key_id: String },
}

/// The application: the store, the audit signing key, the engine (with
/// the secrets service when a keyring is configured) and the settings read
/// from the environment once, shared by every service.
pub struct App {
    store: Store,
    dir: DataDir,
    signer: Arc<CheckpointSigner>,
    engine: Engine,
    config: Config,
    notices: Vec<Notice>,
}

impl App {
    /// Reads the keyring, then opens the data directory, the store (SQLite
    /// in it, or PostgreSQL) and the signing key (made on first use), and
    /// assembles the engine.
    ///
    /// Errors: `unavailable` when the database cannot be reached,
    /// `invalid` for a bad URL, signing key or keyring (named by entry,
    /// never by value).
    pub async fn open(config: Config) -> Result<App, Error> {
        // A bad keyring stops everything before anything is opened or made.
        let keyring = match config.keyring.as_deref() {
            Some(spec) => Some(Arc::new(smithers_secrets::Keyring::parse(spec).map_err(
                |e| Error::invalid(format!("{}: {e}", smithers_secrets::KEYRING_ENV)),
            )?)),
            None => None,
        };
        let dir = smithers_store::resolve_data_dir(config.data_dir.as_deref(), None).map_err(
            |e| match e {
                smithers_store::Error::Invalid(m) => {
                    Error::invalid(format!("{m}: set SMITHERS_HOME or name one"))
                }
                other => store_error(other),
            },
        )?;
        let url = config.database_url.clone();
        let store = Store::open(dir.path(), url.as_deref())
            .await
            .map_err(|e| match url {
                Some(_) => Error::unavailable(format!(
                    "cannot open the PostgreSQL database from SMITHERS_DATABASE_URL: {e}"
                )),
                None => Error::unavailable(format!(
                    "cannot open the store in {}: {e}",
                    dir.path().display()
                )),
            })?;
        let key_dir = dir.clone();
        let key_env = config.signing_key.clone();
        let (signer, source) = tokio::task::spawn_blocking(move || {
            smithers_store::load_signing_key(&key_dir, key_env.as_deref())
        })
        .await
        .map_err(|e| Error::internal(format!("loading the signing key stopped: {e}")))?
        .map_err(store_error)?;
        let mut notices = Vec::new();
        if let KeySource::Created(path) = source {
            notices.push(Notice::CreatedSigningKey {
                path,
                key_id: signer.key_id().to_string(),
            });
        }
        let signer = Arc::new(signer);
        let secrets = keyring.map(|k| Secrets::new(store.clone(), k, signer.clone()));
        let engine = Engine {
            runs: smithers_store::Runs::new(store.clone(), signer.clone()),
            secrets,
            settings: Settings::new(dir.path().join("runs")),
        };
        Ok(App {
            store,
            dir,
            signer,
            engine,
            config,
            notices,
        })
    }

    /// What the front end should tell its user about opening.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory, as the store's functions take it (the signing
    /// key file, run directories), for what has not moved into a service.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// The store, for what has not moved into a service yet.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The engine, for what has not moved into a service yet.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Who asks, as the command line names them: `user` of `organization`
    /// with the role the store gives them.
    ///
    /// Errors: `unauthenticated` when there is no such user there.
    pub async fn principal(
        &self,
        organization: &str,
        user: &str,
        via: Via,
    ) -> Result<Principal, Error> {
        let found = self
            .store
            .organizations()
            .user(organization, user)
            .await
            .map_err(store_error)?;
        match found {
            Some(u) => Ok(Principal {
                organization: organization.to_string(),
                user: u.name,
                role: error::role(u.role),
                via,
                scopes: None,
            }),
            None => Err(Error::unauthenticated(format!(
                "no user {user:?} in organization {organization:?} (`smithers users add` adds one)"
            ))),
        }
    }

    /// The organization's users.
    pub fn users(&self) -> Users<'_> {
        Users { app: self }
    }

    /// The organization's policy.
    pub fn policies(&self) -> Policies<'_> {
        Policies { app: self }
    }

    /// What runs wait for a human to decide.
    pub fn approvals(&self) -> Approvals<'_> {
        Approvals { app: self }
    }

    /// The chains of pull requests the GitHub App opened.
    pub fn stacks(&self) -> Stacks<'_> {
        Stacks { app: self }
    }

    /// Where the audit log is streamed besides NATS.
    pub fn audit_destinations(&self) -> destinations::AuditDestinationsService<'_> {
        destinations::AuditDestinationsService { app: self }
    }

    /// How long what runs leave is kept, and the pass that drops the rest.
    pub fn retention(&self) -> RetentionService<'_> {
        RetentionService { app: self }
    }

    /// Delivers committed audit events NATS has not had yet, when
    /// `SMITHERS_NATS_URL` is set ([`deliver_pending_audit`]).
    pub async fn deliver_audit(&self) {
        if let Some(url) = self.config.nats_url.as_deref() {
            deliver_pending_audit(&self.store, url).await;
        }
    }

    /// Whether the application can serve: the database answers.
    ///
    /// Errors: `unavailable`, saying why.
    pub async fn ready(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(|e| Error::unavailable(format!("the database does not answer: {e}")))
    }

    /// Closes the store's connections.
    pub async fn close(self) {
        self.store.close().await;
    }

    /// The audit log's checkpoint signing key, for front ends that commit
    /// their own records with their audit events through the store (the
    /// GitHub App's deliveries and installations).
    pub fn signer(&self) -> &CheckpointSigner {
        &self.signer
    }
}

/// Delivers the committed audit events the NATS server at `url` has not
/// had yet, waiting at most 5 seconds. They are committed already: an
/// outage only delays them, so it is logged, not returned.
pub async fn deliver_pending_audit(store: &Store, url: &str) {
    let delivery = async {
        let publisher = smithers_store::AuditPublisher::connect(store.clone(), url).await?;
        publisher.ensure_stream().await?;
        publisher.publish_pending().await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), delivery).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "audit events stay queued for NATS"),
        Err(_) => tracing::warn!("audit events stay queued for NATS: no answer within 5 seconds"),
    }
}
