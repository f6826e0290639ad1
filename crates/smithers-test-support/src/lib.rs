//! Test databases: a fresh SQLite file in a temporary directory, or a fresh
//! database on the real PostgreSQL server named by
//! `SMITHERS_TEST_POSTGRES_URL` (`scripts/test` starts one and sets it);
//! [`on_both_backends!`] runs one test body on each. And the fixtures the
//! crates' tests share:
//!
//! - [`model_server`]: a local stand-in for the OpenAI and Anthropic APIs;
//! - [`datadog`]: a local stand-in for Datadog's Logs intake API v2;
//! - [`s3`]: moto's S3 server, started for a test;
//! - [`github_oauth`]: a local stand-in for GitHub's web application flow
//!   of a GitHub App and its `GET /user`;
//! - [`github`]: a local stand-in for GitHub as a GitHub App sees it —
//!   the REST API, held to GitHub's published OpenAPI description, git
//!   over smart HTTP, and webhooks;
//! - [`audit`]: audit events and logs for the store's tests;
//! - [`git`]: git under a fixed author;
//! - [`sandbox`]: the native and Docker providers, and a test body run
//!   against each;
//! - [`engine`]: an engine over a native sandbox, with a repository, its
//!   remote, users and a secret.
//!
//! A failure to set up a test database is the test's failure: these
//! functions panic with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

pub mod audit;
pub mod datadog;
pub mod engine;
pub mod git;
pub mod github;
pub mod github_oauth;
pub mod model_server;
pub mod runs;
pub mod s3;
pub mod sandbox;
pub mod stacks;

use smithers_audit::CheckpointSigner;
use smithers_store::Store;
use sqlx::{Connection, Executor};
use uuid::Uuid;

/// The environment variable naming the PostgreSQL server tests create
/// their databases on (a URL whose user may `CREATE DATABASE`).
pub const POSTGRES_URL_ENV: &str = "SMITHERS_TEST_POSTGRES_URL";

/// A database of one test, dropped by [`TestDb::cleanup`].
pub struct TestDb {
    pub store: Store,
    /// The data directory (the SQLite file, keys).
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server's URL, from [`POSTGRES_URL_ENV`].
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_ENV).expect(
        "the PostgreSQL tests need SMITHERS_TEST_POSTGRES_URL (e.g. postgres://smithers:smithers@127.0.0.1:5432/postgres); \
         scripts/test starts a server and sets it",
    )
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).await.unwrap();
        TestDb {
            store,
            dir,
            postgres: None,
        }
    }

    /// A database of its own on the PostgreSQL server, under a fresh name.
    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = format!("smithers_test_{}", Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = database_url(&admin, &name);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Some(&url)).await.unwrap();
        TestDb {
            store,
            dir,
            postgres: Some((admin, name)),
        }
    }

    /// The PostgreSQL URL of this database, if it is one.
    pub fn url(&self) -> Option<String> {
        self.postgres
            .as_ref()
            .map(|(admin, name)| database_url(admin, name))
    }

    /// The same database opened again, as a restarted process would.
    pub async fn reopen(&self) -> Store {
        Store::open(self.dir.path(), self.url().as_deref())
            .await
            .unwrap()
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.postgres {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .unwrap();
        }
    }
}

fn database_url(admin: &str, name: &str) -> String {
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// A fixed checkpoint signing key (never a real one).
pub fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[42u8; 32]).unwrap()
}

/// Runs a test body against both backends: `on_both_backends!(name, |db| { … })`
/// makes `name::sqlite` and `name::postgres`, each with `db: &TestDb`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = $crate::TestDb::sqlite().await;
                {
                    let $db = &owned;
                    $body
                }
                owned.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let owned = $crate::TestDb::postgres().await;
                {
                    let $db = &owned;
                    $body
                }
                owned.cleanup().await;
            }
        }
    };
}
