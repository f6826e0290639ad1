//! Test databases: a fresh SQLite file in a temporary directory, or a fresh
//! database on the real PostgreSQL server named by
//! `SMITHERS_TEST_POSTGRES_URL` (scripts/test starts one and sets it).

#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use smithers_store::{AuditLog, AuditLogConfig, AuditWriter, Store};
use sqlx::{Connection, Executor};
use uuid::Uuid;

pub struct TestDb {
    pub store: Store,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("SMITHERS_TEST_POSTGRES_URL").expect(
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

    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = format!("smithers_test_{}", Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
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
        self.postgres.as_ref().map(|(admin, name)| {
            let (base, _) = admin.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        })
    }

    /// The same database opened again, as a restarted process would.
    pub async fn reopen(&self) -> Store {
        match &self.postgres {
            Some((admin, name)) => {
                let (base, _) = admin.rsplit_once('/').unwrap();
                Store::open(self.dir.path(), Some(&format!("{base}/{name}")))
                    .await
                    .unwrap()
            }
            None => Store::open(self.dir.path(), None).await.unwrap(),
        }
    }

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

/// Runs a test body against both backends: `on_both_backends!(name, |db| { … })`.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = common::TestDb::sqlite().await;
                {
                    let $db = &owned;
                    $body
                }
                owned.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let owned = common::TestDb::postgres().await;
                {
                    let $db = &owned;
                    $body
                }
                owned.cleanup().await;
            }
        }
    };
}

pub fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[42u8; 32]).unwrap()
}

pub fn event(org: &str, i: u64) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        organization_id: org.into(),
        actor_type: if i.is_multiple_of(2) {
            ActorType::Agent
        } else {
            ActorType::User
        },
        actor_id: format!("actor-{}", i % 3),
        action: if i.is_multiple_of(5) {
            "secret.read".into()
        } else {
            "capability_check".into()
        },
        resource_type: "tool_call".into(),
        resource_id: format!("call-{i}"),
        details: json!({"i": i, "decision": "allow", "ratio": 0.5, "z": {"b": 1, "a": [true]}}),
        ip_address: if i.is_multiple_of(4) {
            Some("192.0.2.7".parse().unwrap())
        } else {
            None
        },
        timestamp: 1_700_000_000_000_000 + i64::try_from(i).unwrap() * 1_000_000,
    }
}

pub fn start_log(store: &Store, every: u64) -> (AuditLog, AuditWriter) {
    AuditLog::start(
        store.clone(),
        signer(),
        AuditLogConfig {
            checkpoint_every: every,
            checkpoint_interval: Duration::from_secs(3600),
            max_batch: 256,
        },
    )
}

/// Every event of the default organization, oldest first.
pub async fn all_events(store: &Store) -> Vec<smithers_audit::SealedEvent> {
    let query = smithers_store::AuditQuery {
        organization_id: "local".into(),
        ..Default::default()
    };
    store.audit().query(&query).await.unwrap()
}

/// The sizes of the default organization's checkpoints, smallest first.
pub async fn checkpoint_sizes(store: &Store) -> Vec<u64> {
    let checkpoints = store.audit().checkpoints("local").await.unwrap();
    checkpoints.iter().map(|c| c.tree_size).collect()
}

/// Appends `n` events to the default organization and waits for the writer.
pub async fn fill(store: &Store, n: u64, every: u64) {
    let (log, writer) = start_log(store, every);
    for i in 1..=n {
        log.append(event("local", i)).await.unwrap();
    }
    drop(log);
    writer.join().await;
}
