//! What the application reads from its environment, read once.

use std::path::PathBuf;

/// The application's settings. Front ends build it from their flags and
/// [`Config::from_env`]; nothing below reads the environment again.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The data directory: the SQLite file, the signing key, run
    /// directories. `None`: `$SMITHERS_HOME`, else the platform's data
    /// directory.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL (`postgres://…`) instead of the embedded SQLite store.
    pub database_url: Option<String>,
    /// The audit checkpoint signing key (base64 seed), instead of the key
    /// file.
    pub signing_key: Option<String>,
    /// NATS, where committed audit events are delivered.
    pub nats_url: Option<String>,
    /// The secrets keyring (`id:base64-32-bytes,…`); without it, nothing
    /// that reads or releases a secret can be done.
    pub keyring: Option<String>,
    /// The Docker engine (`DOCKER_HOST`, `unix:///path`); `None`: the
    /// default socket.
    pub docker_host: Option<String>,
    /// The program sandboxes start as their helper; without it no sandbox
    /// can be made (a front end names itself, see
    /// [`crate::SandboxHelper`]).
    pub sandbox_helper: Option<crate::SandboxHelper>,
}

impl Config {
    /// The settings from `SMITHERS_HOME`, `SMITHERS_DATABASE_URL`,
    /// `SMITHERS_AUDIT_SIGNING_KEY`, `SMITHERS_NATS_URL`,
    /// `SECRET_ENCRYPTION_KEYS` and `DOCKER_HOST`; `data_dir`
    /// and `database_url`, when given (command-line flags), win. Empty
    /// values count as unset.
    pub fn from_env(data_dir: Option<PathBuf>, database_url: Option<String>) -> Config {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Config {
            data_dir: data_dir.or_else(|| var("SMITHERS_HOME").map(PathBuf::from)),
            database_url: database_url
                .filter(|u| !u.is_empty())
                .or_else(|| var("SMITHERS_DATABASE_URL")),
            signing_key: var(smithers_store::SIGNING_KEY_ENV),
            nats_url: var("SMITHERS_NATS_URL"),
            keyring: var(smithers_secrets::KEYRING_ENV).filter(|k| !k.trim().is_empty()),
            docker_host: var("DOCKER_HOST"),
            sandbox_helper: None,
        }
    }
}
