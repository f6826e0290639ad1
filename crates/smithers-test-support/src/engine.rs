//! The engine over a real native sandbox: a repository with a workflow,
//! pushed to a bare remote, a store with users and a secret, and an engine
//! that carries out runs in sandboxes of its own state directory.
//!
//! The sandbox helper program is a binary of the crate under test, so its
//! path comes from the caller:
//! `env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper")` in the engine's
//! tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use smithers_audit::CheckpointSigner;
use smithers_engine::run::{Engine, Settings, StartRun};
use smithers_sandbox::{NativeConfig, NativeProvider};
use smithers_secrets::{Keyring, SecretValue};
use smithers_store::{Actor, Role, Runs, SecretRef, Secrets, Store};

use crate::git::git;

/// The keyring the fixture's secrets are sealed with (a fixed test key).
pub const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The value of secret `API_TOKEN` in environment `dev`.
pub const TOKEN: &str = "tok-live-8d2f1c9e7b";

/// A repository, its remote, a store and an engine, all in one temporary
/// directory. Runs are started in organization `local` by `alice`, a
/// member; `admin` sets the secrets and decides approvals.
pub struct Fixture {
    /// Holds `repo`, `remote.git`, `state` (the store), `runs` and
    /// `sandboxes`.
    pub tmp: tempfile::TempDir,
    /// The store (SQLite) the engine records runs in.
    pub store: Store,
    /// The engine, with secrets and a 50 ms poll.
    pub engine: Engine,
    /// A native provider with its state under `sandboxes`.
    pub provider: NativeProvider,
}

impl Fixture {
    /// The working repository.
    pub fn repo(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    /// The bare remote the repository pushes to (`origin`).
    pub fn remote(&self) -> PathBuf {
        self.tmp.path().join("remote.git")
    }

    /// A repository holding `files` (path, contents) plus `src/answer.txt`
    /// and `test.sh`, committed on main and pushed to a bare remote; the
    /// native provider runs the sandbox helper program at `helper`.
    pub async fn new(helper: impl AsRef<Path>, files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        std::fs::write(repo.join("src/answer.txt"), "41\n").unwrap();
        std::fs::write(
            repo.join("test.sh"),
            "echo \"token in use: $API_TOKEN\"\ntest \"$(cat src/answer.txt)\" = 42 || { echo 'wrong answer' >&2; exit 1; }\necho ok\n",
        )
        .unwrap();
        for (path, contents) in files {
            let path = repo.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "first"]);
        let remote = tmp.path().join("remote.git");
        git(
            tmp.path(),
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                remote.to_str().unwrap(),
            ],
        );
        git(
            &repo,
            &["remote", "add", "origin", remote.to_str().unwrap()],
        );
        git(&repo, &["push", "-q", "origin", "main"]);

        let state = tmp.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let store = Store::open(&state, None).await.unwrap();
        store
            .organizations()
            .add_user("local", "alice", Role::Member)
            .await
            .unwrap();
        let signer = Arc::new(audit_signer());
        let secrets = Secrets::new(
            store.clone(),
            Arc::new(Keyring::parse(KEYRING).unwrap()),
            signer.clone(),
        );
        secrets
            .set(
                &Actor::new("local", "admin"),
                SecretRef {
                    environment: "dev",
                    name: "API_TOKEN",
                },
                &SecretValue::from(TOKEN),
                None,
            )
            .await
            .unwrap();
        let mut settings = Settings::new(tmp.path().join("runs"));
        settings.poll = Duration::from_millis(50);
        let engine = Engine {
            runs: Runs::new(store.clone(), signer),
            secrets: Some(secrets),
            settings,
        };
        let mut config = NativeConfig::with_helper(helper.as_ref().to_path_buf(), Vec::new());
        config.state_dir = tmp.path().join("sandboxes");
        let provider = NativeProvider::new(config).unwrap();
        Fixture {
            tmp,
            store,
            engine,
            provider,
        }
    }

    /// Sets a secret of environment `dev`, as admin.
    pub async fn set_secret(&self, name: &str, value: &str) {
        self.engine
            .secrets
            .as_ref()
            .unwrap()
            .set(
                &Actor::new("local", "admin"),
                SecretRef {
                    environment: "dev",
                    name,
                },
                &SecretValue::from(value),
                None,
            )
            .await
            .unwrap();
    }

    /// Starts `workflow` as alice.
    pub async fn start(&self, workflow: &str) -> smithers_store::Run {
        self.engine
            .start(StartRun {
                organization_id: "local",
                requested_by: "alice",
                repo: &self.repo(),
                workflow,
                trigger: "manual",
                provider: None,
                image: None,
                pinned: None,
            })
            .await
            .unwrap()
    }

    /// Executes `run` on `provider` while deciding, as admin, every
    /// approval that comes up; the run as it ended and what was decided.
    pub async fn execute_deciding<P: smithers_sandbox::Provider>(
        &self,
        provider: &P,
        run: &str,
        approve: bool,
    ) -> (smithers_store::Run, Vec<String>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let engine = self.engine.clone();
        let approver = tokio::spawn(async move {
            let mut decided = Vec::new();
            while !*stopped.borrow() {
                for a in engine.runs.approvals("local", true, 100).await.unwrap() {
                    let comment = (!approve).then_some("not like this");
                    engine
                        .decide("local", "admin", &a.id, approve, comment)
                        .await
                        .unwrap();
                    decided.push(a.summary);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            decided
        });
        let done = self.engine.execute(provider, run).await.unwrap();
        stop.send(true).unwrap();
        (done, approver.await.unwrap())
    }

    /// Every line of a run's log.
    pub async fn log(&self, run: &str) -> String {
        self.engine
            .runs
            .logs(run, 0, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|l| format!("[{}] {}\n", l.stream.as_str(), l.text))
            .collect()
    }

    /// The organization's audit log verifies.
    pub async fn verify(&self) {
        let signer = audit_signer();
        let report = self
            .store
            .audit()
            .verify("local", &[signer.verifying_key()])
            .await
            .unwrap();
        assert!(report.is_ok(), "{report:?}");
    }
}

/// The key the fixture's audit log is signed with.
fn audit_signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7u8; 32]).unwrap()
}
