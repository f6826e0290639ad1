//! `smithers serve`: it says where it listens, answers, and stops cleanly
//! on SIGTERM; it carries out the runs started through it, only on the
//! repositories it was given, and a restart carries on the runs a stop
//! left (what the rest of the API does is tested in crates/smithers-server).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use serde_json::json;
use smithers_test_support::git::git;

mod common;

use common::{cli, run_until, serve, token};

#[test]
fn it_serves_until_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SMITHERS_HOME", home.path())
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_NATS_URL")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let address = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "it ended early");
        if let Some(rest) = line.strip_prefix("smithers: serving the API on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let mut http = std::net::TcpStream::connect(&address).unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("smithers: stopped"), "{rest}");
}

/// A workflow whose step waits for a person, then a step after it.
const GATED: &str = r#"
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
"#;

#[test]
fn it_carries_out_runs_and_a_restart_carries_on_the_ones_it_left() {
    let root = tempfile::tempdir().unwrap();
    // Sandboxed processes run as another user when the tests run as root.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let home = root.path().join("home");
    let repos = root.path().join("repos");
    let repo = repos.join("app");
    std::fs::create_dir_all(repo.join(".smithers")).unwrap();
    std::fs::write(repo.join("smithers.toml"), GATED).unwrap();
    std::fs::write(
        repo.join(".smithers/policy"),
        "workflow run_command \"echo *\" -> allow\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&repo, outside.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, repos.join("escape")).unwrap();

    cli(&home, &["users", "add", "carol"]);
    cli(&home, &["users", "add", "dave"]);
    let carol = token(&home, "carol", "runs:read,runs:write");
    let dave = token(&home, "dave", "runs:read,approvals:read,approvals:write");
    let http = reqwest::blocking::Client::new();

    let mut served = serve(&home, &["--repository-root", repos.to_str().unwrap()]);
    // Only repositories under a root: not one elsewhere, nor a link out
    // of the root.
    for (path, status) in [
        (outside.to_str().unwrap().to_string(), 403),
        (repos.join("escape").display().to_string(), 403),
        (repos.join("missing").display().to_string(), 400),
    ] {
        let answer = http
            .post(served.url("/api/v1/runs"))
            .bearer_auth(&carol)
            .json(&json!({"repository": path, "workflow": "gated"}))
            .send()
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
    }
    // A run started over the API is carried out by the server, up to the
    // person it waits for.
    let answer = http
        .post(served.url("/api/v1/runs"))
        .bearer_auth(&carol)
        .json(&json!({"repository": repo.to_str().unwrap(), "workflow": "gated"}))
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let run: serde_json::Value = answer.json().unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/runs/{id}"));
    assert_eq!(
        (run["trigger"].as_str(), run["requested_by"].as_str()),
        (Some("api"), Some("carol"))
    );
    let waiting = run_until(&http, &served, &carol, &id, |r| {
        r["state"] == "waiting_approval"
    });
    let approval = waiting["approvals"][0]["id"].as_str().unwrap().to_string();

    // SIGTERM while it waits: the server stops, the run stays where it was.
    let (code, said) = served.terminate();
    assert_eq!(code, Some(0), "{said}");
    let shown: serde_json::Value =
        serde_json::from_str(&cli(&home, &["runs", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["state"], "waiting_approval", "{said}");
    // The next start carries it on, and the approval lets it finish.
    let mut served = serve(&home, &["--repository-root", repos.to_str().unwrap()]);
    let answer = http
        .post(served.url(&format!("/api/v1/approvals/{approval}/approve")))
        .bearer_auth(&dave)
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let done = run_until(&http, &served, &carol, &id, |r| {
        r["state"]
            .as_str()
            .is_some_and(|s| s != "waiting_approval" && s != "running")
    });
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let logs: serde_json::Value = http
        .get(served.url(&format!("/api/v1/runs/{id}/logs")))
        .bearer_auth(&carol)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"] == "carried-on"),
        "{logs:#}"
    );
    // A finished run is not carried on again.
    let answer = http
        .post(served.url(&format!("/api/v1/runs/{id}/resume")))
        .bearer_auth(&carol)
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 409);
    let (code, said) = served.terminate();
    assert_eq!(code, Some(0), "{said}");
}
