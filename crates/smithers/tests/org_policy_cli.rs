//! `smithers policy publish | show | history | unpublish` and
//! `policy eval/explain --org-policy`, as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::Path;
use std::process::{Command, Output};

fn smithers(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_USER")
        .env_remove("SMITHERS_NATS_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ORG: &str = "* run_command \"curl *\" -> deny\n\
                   implementer run_command * -> ask\n\
                   test implementer run_command \"curl x\" -> deny\n";
const REPO: &str = "implementer run_command * -> allow\n";

#[test]
fn an_organization_policy_is_published_shown_and_bounds_decisions() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    std::fs::write(dir.join("org.policy"), ORG).unwrap();
    std::fs::write(dir.join("repo.policy"), REPO).unwrap();
    std::fs::write(dir.join("bad.policy"), "implementer run_command\n").unwrap();
    let org = dir.join("org.policy");
    let org = org.to_str().unwrap();
    let repo = dir.join("repo.policy");
    let repo = repo.to_str().unwrap();
    let bad = dir.join("bad.policy");

    let out = smithers(dir, &["policy", "show"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no policy in force"),
        "{}",
        text(&out.stderr)
    );

    // Invalid: the diagnostics, exit 2, nothing published.
    let out = smithers(dir, &["policy", "publish", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing was published"),
        "{}",
        text(&out.stderr)
    );

    let out = smithers(dir, &["policy", "publish", org, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["version"].as_u64(), v["state"].as_str()),
        (Some(1), Some("published"))
    );
    // Again: unchanged, a conflict.
    let out = smithers(dir, &["policy", "publish", org]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    // A member may read it, not change it.
    assert!(smithers(dir, &["users", "add", "bob"]).status.success());
    let out = smithers(dir, &["policy", "unpublish", "--as", "bob"]);
    assert_eq!(out.status.code(), Some(3));
    let out = smithers(dir, &["policy", "show", "--as", "bob"]);
    assert_eq!(text(&out.stdout), ORG, "the text exactly as published");

    // It bounds a repository policy that allows everything.
    let eval = |resource: &str, extra: &[&str]| {
        let mut args = vec![
            "policy",
            "eval",
            repo,
            "--subject",
            "implementer",
            "--action",
            "run_command",
            "--resource",
            resource,
        ];
        args.extend_from_slice(extra);
        smithers(dir, &args)
    };
    assert!(text(&eval("curl x", &[]).stdout).starts_with("allow"));
    let out = eval("curl x", &["--org-policy"]);
    let shown = text(&out.stdout);
    assert!(shown.starts_with("deny"), "{shown}");
    assert!(
        shown.contains("bounded by the organization's policy version 1: deny (stricter: it holds)"),
        "{shown}"
    );
    let out = eval("ls", &["--org-policy", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "ask");
    assert_eq!(v["organization"]["version"], 1);
    assert_eq!(v["organization"]["decides"], true);
    assert_eq!(v["rule"]["file"], "organization policy v1");
    let mut args = vec![
        "policy",
        "explain",
        repo,
        "--subject",
        "implementer",
        "--action",
        "run_command",
        "--resource",
        "curl x",
        "--org-policy",
    ];
    let out = smithers(dir, &args);
    let shown = text(&out.stdout);
    assert!(shown.contains("repository policy"), "{shown}");
    assert!(shown.contains("organization policy (version 1)"), "{shown}");
    assert!(
        shown.contains("→ deny (the organization's decision holds"),
        "{shown}"
    );
    args.push("--json");
    let out = smithers(dir, &args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["decided_by"].as_str()),
        (Some("deny"), Some("organization"))
    );

    let out = smithers(dir, &["policy", "unpublish"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = eval("curl x", &["--org-policy"]);
    assert!(text(&out.stdout).starts_with("allow"));
    assert!(text(&out.stderr).contains("has no policy in force"));

    let out = smithers(dir, &["policy", "history", "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [(1, "published"), (2, "unpublished")]);
    let out = smithers(dir, &["policy", "history"]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
    let out = smithers(dir, &["policy", "show", "--version", "1"]);
    assert_eq!(text(&out.stdout), ORG);

    // The events, committed with the changes, and the log verifies.
    let out = smithers(dir, &["audit", "log", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("policy.")))
        .collect();
    assert_eq!(actions, ["policy.created", "policy.deleted"]);
    assert!(smithers(dir, &["audit", "verify"]).status.success());
}
