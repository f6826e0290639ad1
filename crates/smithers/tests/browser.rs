//! The dashboard in a real browser: Debian's Chromium, headless, driven
//! through ChromeDriver (WebDriver), over `smithers serve` carrying out
//! real runs in real sandboxes. People sign in with their one-time links;
//! the run's starter watches it wait; another user approves it from the
//! inbox and the starter's page shows the log carry on live; a rejection
//! carries its reason; two people deciding the same approval — one wins,
//! the other is told; a step that prints markup changes nothing on the
//! page. And a person signs in through an OpenID Connect provider (panva's
//! oidc-provider, its login and consent pages). Screenshots of the main
//! pages go to target/screenshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use smithers_test_support::git::git;

use common::{Served, cli, serve, serve_at, token};

const WORKFLOWS: &str = r#"
[workflows.gated]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.gated.steps]]
id = "ask"
run = "echo asked"
needs_approval = true

[[workflows.gated.steps]]
id = "after"
run = "echo carried-on"

[workflows.hostile]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.hostile.steps]]
id = "print"
run = "printf '%s\n' '<script>window.pwned=1</script>' '<img src=x onerror=window.pwned=2>'"
"#;

const POLICY: &str =
    "workflow run_command \"echo *\" -> allow\nworkflow run_command \"printf *\" -> allow\n";

/// How long the test waits for what is due (a broken page, not a slow one).
const DUE: Duration = Duration::from_secs(60);

/// ChromeDriver on a free loopback port; stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let program = std::env::var("SMITHERS_TEST_CHROMEDRIVER").unwrap_or_else(|e| {
        panic!(
            "the browser tests need SMITHERS_TEST_CHROMEDRIVER (the chromedriver program); \
             scripts/test installs Debian's chromium-driver and sets it: {e}"
        )
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DUE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A browser of its own (its own profile: its own cookies).
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
    );
    // The driver is on loopback, over plain HTTP: no TLS stack needed.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// Signs `user` in in `browser` with a one-time link.
async fn sign_in(browser: &Client, home: &Path, served: &Served, user: &str) {
    let link = cli(
        home,
        &[
            "serve",
            "--new-sign-in-link",
            "--as",
            user,
            "--listen",
            &served.address,
        ],
    );
    browser.goto(link.trim()).await.unwrap();
    // Signed in, the browser lands on the inbox.
    wait_for(browser, "h1", "Approvals").await;
}

/// Waits until the element at `css` holds `text` (the page may change by
/// itself: the live log).
async fn wait_for(browser: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + DUE;
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(shown) = element.text().await
            && shown.contains(text)
        {
            return shown;
        }
        if Instant::now() >= deadline {
            let page = browser.source().await.unwrap_or_default();
            panic!("{css} never held {text:?}; the page: {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Starts `workflow` over the API as the token's user; its id.
async fn start(
    http: &reqwest::Client,
    served: &Served,
    token: &str,
    repo: &Path,
    workflow: &str,
) -> String {
    let answer = http
        .post(served.url("/api/v1/runs"))
        .bearer_auth(token)
        .json(&json!({"repository": repo, "workflow": workflow}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let run: serde_json::Value = answer.json().await.unwrap();
    run["id"].as_str().unwrap().to_string()
}

/// Reads run `id` through the API until it is in `state`.
async fn run_in(
    http: &reqwest::Client,
    served: &Served,
    token: &str,
    id: &str,
    state: &str,
) -> serde_json::Value {
    let deadline = Instant::now() + DUE;
    loop {
        let run: serde_json::Value = http
            .get(served.url(&format!("/api/v1/runs/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["state"] == state {
            return run;
        }
        assert!(Instant::now() < deadline, "{run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the `button` of the form posting to `action` on this page.
async fn press(browser: &Client, action: &str, button: &str) {
    let css = format!("form[action=\"{action}\"] button.{button}");
    browser
        .find(Locator::Css(&css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_approve_reject_and_watch_runs_in_a_browser() {
    let root = tempfile::tempdir().unwrap();
    // Sandboxed processes run as another user when the tests run as root.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let home = root.path().join("home");
    let repos = root.path().join("repos");
    let repo = repos.join("app");
    std::fs::create_dir_all(repo.join(".smithers")).unwrap();
    std::fs::write(repo.join("smithers.toml"), WORKFLOWS).unwrap();
    std::fs::write(repo.join(".smithers/policy"), POLICY).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    for user in ["carol", "dave", "erin"] {
        cli(&home, &["users", "add", user]);
    }
    let carol_token = token(&home, "carol", "runs:read,runs:write");
    let served = serve(&home, &["--repository-root", repos.to_str().unwrap()]);
    let http = reqwest::Client::new();
    let driver = chromedriver();

    // Carol starts a run and watches it wait.
    let first = start(&http, &served, &carol_token, &repo, "gated").await;
    run_in(&http, &served, &carol_token, &first, "waiting_approval").await;
    let carol = browser(&driver).await;
    sign_in(&carol, &home, &served, "carol").await;
    // Her own run's approval has no buttons for her.
    let card = format!("[data-approval] a[href=\"/runs/{first}\"]");
    carol.find(Locator::Css(&card)).await.unwrap();
    assert!(
        carol
            .find(Locator::Css("form[action$=\"/approve\"]"))
            .await
            .is_err()
    );
    wait_for(&carol, "main", "You started this run").await;
    carol
        .goto(&served.url(&format!("/runs/{first}")))
        .await
        .unwrap();
    wait_for(&carol, "#run-state", "waiting_approval").await;
    wait_for(&carol, "#log", "waiting for approval").await;
    screenshot(&carol, "run-waiting").await;

    // Dave approves it from his inbox; Carol's page carries on by itself.
    let dave = browser(&driver).await;
    sign_in(&dave, &home, &served, "dave").await;
    screenshot(&dave, "inbox").await;
    let approval = dave
        .find(Locator::Css("[data-approval]"))
        .await
        .unwrap()
        .attr("data-approval")
        .await
        .unwrap()
        .unwrap();
    press(&dave, &format!("/approvals/{approval}/approve"), "approve").await;
    wait_for(&dave, ".notice", "approved").await;
    wait_for(&carol, "#log", "carried-on").await;
    wait_for(&carol, "#run-state", "succeeded").await;
    screenshot(&carol, "run-finished").await;

    // Another run: Dave rejects it with a reason, which the run keeps.
    let second = start(&http, &served, &carol_token, &repo, "gated").await;
    run_in(&http, &served, &carol_token, &second, "waiting_approval").await;
    dave.goto(&served.url("/approvals")).await.unwrap();
    let reject = dave
        .find(Locator::Css("form[action$=\"/reject\"] input[name=reason]"))
        .await
        .unwrap();
    reject.send_keys("not on a Friday").await.unwrap();
    dave.find(Locator::Css("form[action$=\"/reject\"] button.reject"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&dave, ".notice", "rejected").await;
    let done = run_in(&http, &served, &carol_token, &second, "failed").await;
    assert!(
        done["error"].as_str().unwrap().contains("not on a Friday"),
        "{done:#}"
    );

    // Two people decide the same approval: one wins, the other is told.
    let third = start(&http, &served, &carol_token, &repo, "gated").await;
    run_in(&http, &served, &carol_token, &third, "waiting_approval").await;
    let erin = browser(&driver).await;
    sign_in(&erin, &home, &served, "erin").await;
    dave.goto(&served.url("/approvals")).await.unwrap();
    let action = dave
        .find(Locator::Css("form[action$=\"/approve\"]"))
        .await
        .unwrap()
        .attr("action")
        .await
        .unwrap()
        .unwrap();
    erin.find(Locator::Css(&format!("form[action=\"{action}\"]")))
        .await
        .unwrap();
    press(&dave, &action, "approve").await;
    wait_for(&dave, ".notice", "approved").await;
    press(&erin, &action, "approve").await;
    let told = wait_for(&erin, "main", "already").await;
    assert!(told.contains("approved"), "{told}");
    screenshot(&erin, "already-decided").await;

    // A step that prints markup: text on the page, nothing run.
    let hostile = start(&http, &served, &carol_token, &repo, "hostile").await;
    run_in(&http, &served, &carol_token, &hostile, "succeeded").await;
    carol
        .goto(&served.url(&format!("/runs/{hostile}")))
        .await
        .unwrap();
    wait_for(&carol, "#log", "<script>window.pwned=1</script>").await;
    wait_for(&carol, "#log", "<img src=x onerror=window.pwned=2>").await;
    assert!(
        carol
            .find_all(Locator::Css("#log img, #log script"))
            .await
            .unwrap()
            .is_empty()
    );
    let pwned = carol
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!("undefined"));
    screenshot(&carol, "hostile-output").await;

    for b in [carol, dave, erin] {
        b.close().await.unwrap();
    }
}

/// The OpenID provider of the server's sign-in tests (a node process),
/// stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts crates/smithers-server/tests/oidc/provider.mjs with one client
/// whose redirect URI is `redirect`.
fn provider(redirect: &str) -> Provider {
    use std::io::BufRead as _;
    let modules = std::env::var("SMITHERS_TEST_OIDC_MODULES").unwrap_or_else(|e| {
        panic!(
            "the OpenID Connect browser test needs SMITHERS_TEST_OIDC_MODULES (scripts/test \
             installs the provider and sets it): {e}"
        )
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../smithers-server/tests/oidc/provider.mjs");
    let clients = json!([{
        "client_id": "smithers",
        "client_secret": "a-browser-test-secret",
        "redirect_uris": [redirect],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
    }]);
    let mut child = Command::new("node")
        .arg(script)
        .arg(clients.to_string())
        .env("SMITHERS_TEST_OIDC_MODULES", modules)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let issuer = line
        .trim()
        .strip_prefix("issuer ")
        .unwrap_or_else(|| panic!("the provider did not start: {line}"))
        .to_string();
    // Drained to the end: a provider that cannot write would stop.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Provider { child, issuer }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_openid_connect_in_a_browser() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    cli(&home, &["users", "add", "olga"]);
    // The server's address is the provider's redirect URI: chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let provider = provider(&format!("http://{listen}/sign-in/oidc/callback"));
    let served = serve_at(
        &home,
        &listen,
        &[
            "--oidc-issuer",
            &provider.issuer,
            "--oidc-client-id",
            "smithers",
        ],
        &[("SMITHERS_OIDC_CLIENT_SECRET", "a-browser-test-secret")],
    );
    let driver = chromedriver();
    let olga = browser(&driver).await;
    olga.goto(&served.url("/approvals")).await.unwrap();
    // Not signed in: the sign-in page, with the provider's button.
    wait_for(&olga, "h1", "Sign in").await;
    olga.find(Locator::Css("a[href=\"/sign-in/oidc\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The provider's login page, then its consent page.
    let login = olga
        .wait()
        .for_element(Locator::Css("input[name=login]"))
        .await
        .unwrap();
    login.send_keys("olga").await.unwrap();
    olga.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("anything")
        .await
        .unwrap();
    screenshot(&olga, "oidc-provider-login").await;
    olga.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The consent page is the one without the login field.
    let deadline = Instant::now() + DUE;
    while olga.find(Locator::Css("input[name=login]")).await.is_ok() {
        assert!(Instant::now() < deadline, "the login page stayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    olga.wait()
        .for_element(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back at Smithers, signed in as olga.
    wait_for(&olga, "h1", "Approvals").await;
    wait_for(&olga, "header", "olga").await;
    screenshot(&olga, "oidc-signed-in").await;
    olga.close().await.unwrap();
}
