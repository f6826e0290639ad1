//! The harness the server's tests share: an application over the test's
//! database, served on a loopback socket, and who calls it.

#![allow(dead_code)] // each test file uses part of it

pub mod github;

use std::sync::Arc;

use smithers_api::Scope;
use smithers_app::{App, Config, Principal, Via};
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::TestDb;

/// A served application; the server stops when this is dropped.
pub struct Server {
    pub app: Arc<App>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The application over `db` with `config`'s other settings, served.
pub async fn serve(db: &TestDb, config: Config) -> Server {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            ..config
        })
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(smithers_server::serve(app.clone(), listener, async move {
        let _ = stopped.await;
    }));
    Server {
        app,
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

/// The application over `db` with `config`'s other settings, served on
/// `listener` (bound first, so that a setting can name its address) with
/// the server `settings`.
pub async fn serve_on(
    db: &TestDb,
    config: Config,
    listener: tokio::net::TcpListener,
    settings: smithers_server::Settings,
) -> Server {
    let app = Arc::new(
        App::open(Config {
            data_dir: Some(db.dir.path().to_path_buf()),
            database_url: db.url(),
            ..config
        })
        .await
        .unwrap(),
    );
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(smithers_server::serve_with(
        app.clone(),
        listener,
        settings,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        app,
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

/// `user` of the default organization, as the command line names them.
pub async fn principal(app: &App, user: &str) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, user, Via::Cli)
        .await
        .unwrap()
}

/// A new API token of `user` with `scopes`; its secret.
pub async fn token(app: &App, user: &str, scopes: &[Scope]) -> String {
    let who = principal(app, user).await;
    app.tokens()
        .create(&who, "test", scopes, None)
        .await
        .unwrap()
        .secret
}

/// Records stack number `n` on `acme/api` as the GitHub App does on
/// delivering a run (see [`smithers_test_support::stacks::recorded_stack`]);
/// the stack's id and the run's.
pub async fn stack(app: &App, n: u32, members: &[(&str, &str)]) -> (String, String) {
    smithers_test_support::stacks::recorded_stack(
        app.store(),
        &app.engine().runs,
        app.signer(),
        n,
        members,
    )
    .await
}
