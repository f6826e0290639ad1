//! A served GitHub App: the application with its private key and webhook
//! secret stored as Smithers secrets, the GitHub stand-in sending its
//! webhooks to the server, runs carried out in native sandboxes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smithers_app::{App, Config, Principal, SandboxHelper, Via};
use smithers_github::{ForkSecrets, GithubApp, GithubAppSettings, RetryLimits};
use smithers_secrets::SecretValue;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::TestDb;
use smithers_test_support::audit::all_events;
use smithers_test_support::github::{APP_ID, APP_PRIVATE_KEY_PEM, GithubApi};

pub const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const WEBHOOK_SECRET: &str = "whsec-7f3a9c0e5b2d4e8f";
/// Where statuses link to.
pub const PUBLIC_URL: &str = "https://smithers.example";

/// Everything the process logs, at every level down to `debug`, from the
/// first fixture on: what an operator's log would hold.
static SERVER_LOG: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

/// A writer appending to [`SERVER_LOG`].
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing the process's log (once).
fn capture_log() {
    SERVER_LOG.get_or_init(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        // Another subscriber already set (none is, in these tests) would
        // keep its own.
        let _ = tracing::subscriber::set_global_default(subscriber);
        log
    });
}

/// What the process logged so far (every test's, as one server's log).
pub fn server_log() -> String {
    SERVER_LOG
        .get()
        .and_then(|log| {
            log.lock()
                .ok()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
        })
        .unwrap_or_default()
}

/// Every row of every table of the store, as text: SQLite's files
/// (the database and its write-ahead log) byte for byte, PostgreSQL's
/// rows as JSON.
pub async fn database_text(app: &App, db: &TestDb) -> String {
    use sqlx::Row;
    match app.store().backend() {
        smithers_store::Backend::Sqlite => {
            let mut text = String::new();
            for file in ["smithers.db", "smithers.db-wal"] {
                let bytes = std::fs::read(db.dir.path().join(file)).unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            assert!(!text.is_empty(), "the SQLite file is where it was");
            text
        }
        smithers_store::Backend::Postgres => {
            let pool = app.store().pool();
            let tables: Vec<String> = sqlx::query(
                "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
            assert!(
                tables.iter().any(|t| t == "github_deliveries"),
                "{tables:?}"
            );
            let mut text = String::new();
            for table in tables {
                let rows = sqlx::query(&format!(
                    "SELECT CAST(row_to_json(t) AS TEXT) AS row FROM \"{table}\" t"
                ))
                .fetch_all(pool)
                .await
                .unwrap();
                for row in rows {
                    text.push_str(&row.get::<String, _>("row"));
                    text.push('\n');
                }
            }
            text
        }
    }
}

pub struct GithubFixture {
    pub app: Arc<App>,
    pub api: GithubApi,
    /// The App the server runs.
    pub github: Arc<GithubApp>,
    pub base: String,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn admin(app: &App) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap()
}

/// The App's settings against the stand-in at `api_url`.
pub fn settings(api_url: &str, fork_secrets: ForkSecrets) -> GithubAppSettings {
    GithubAppSettings {
        app_id: APP_ID,
        api_url: api_url.into(),
        web_url: api_url.into(),
        public_url: Some(PUBLIC_URL.into()),
        fork_secrets,
        admin_teams: Some(vec!["platform-admins".into()]),
        organization: DEFAULT_ORGANIZATION.into(),
        secrets_environment: "prod".into(),
        private_key_secret: "GITHUB_APP_PRIVATE_KEY".into(),
        webhook_secret: "GITHUB_WEBHOOK_SECRET".into(),
        limits: RetryLimits {
            backoff: Duration::from_millis(20),
            ..RetryLimits::default()
        },
        // The stand-in's merges and deletions send no event: the sweep
        // finds them, quickly here.
        stack_interval: Duration::from_secs(2),
    }
}

/// A served App, its credentials stored as secrets, and the stand-in
/// sending its webhooks to it.
pub async fn github_fixture(db: &TestDb, fork_secrets: ForkSecrets) -> GithubFixture {
    capture_log();
    // Sandboxed processes run as another user when the tests run as root:
    // the run directories under the data directory must be reachable.
    std::fs::set_permissions(
        db.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            keyring: Some(KEYRING.into()),
            sandbox_helper: Some(SandboxHelper {
                program: PathBuf::from(env!("CARGO_BIN_EXE_smithers-server-sandbox-helper")),
                args: Vec::new(),
            }),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let who = admin(&app).await;
    for (name, value) in [
        ("GITHUB_APP_PRIVATE_KEY", APP_PRIVATE_KEY_PEM),
        ("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ] {
        app.secrets()
            .set(&who, "prod", name, &SecretValue::from(value), None)
            .await
            .unwrap();
    }
    let api = GithubApi::start().await;
    let github = Arc::new(
        GithubApp::open(app.clone(), &settings(api.url(), fork_secrets))
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    api.set_webhook(&format!("{base}/github/webhook"), WEBHOOK_SECRET);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(smithers_server::serve_with(
        app.clone(),
        listener,
        smithers_server::Settings {
            github_app: Some(github.clone()),
            ..smithers_server::Settings::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    // The tests' GitHub starts after what the App does at start.
    github.swept_once().await;
    GithubFixture {
        app,
        api,
        github,
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

/// `X-Hub-Signature-256` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        smithers_test_support::github::signature(secret, body)
    )
}

pub async fn actions(app: &App) -> Vec<String> {
    all_events(app.store())
        .await
        .into_iter()
        .map(|e| e.event.action)
        .collect()
}

/// Waits until every recorded delivery has been carried out.
pub async fn processed(app: &App) {
    for _ in 0..1000 {
        if app
            .store()
            .github()
            .pending_deliveries(1)
            .await
            .unwrap()
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the deliveries were not carried out");
}

/// `installation` `action` (`suspend`, `unsuspend`, `deleted`) for
/// `installation`, a suspension's state changed on the stand-in first, as
/// on GitHub; not waited for.
pub async fn installation_event(f: &GithubFixture, installation: u64, action: &str) {
    let suspended = action == "suspend";
    match action {
        "suspend" => f.api.suspend_installation(installation),
        "unsuspend" => f.api.unsuspend_installation(installation),
        _ => {}
    }
    f.api
        .deliver(
            "installation",
            Some(action),
            None,
            serde_json::json!({"installation": {
                "id": installation,
                "app_slug": smithers_test_support::github::APP_SLUG,
                "created_at": "2026-11-30T10:00:00Z",
                "updated_at": "2026-11-30T10:00:00Z",
                "suspended_at": if suspended { serde_json::json!("2026-11-30T11:00:00Z") } else { serde_json::Value::Null },
                "suspended_by": null,
            }}),
        )
        .await;
}
