#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Tool calls as agents send them: read and checked, decided on the right
//! resource, and carried out in a real (native) sandbox over a git
//! repository, their output redacted and capped.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use smithers_engine::Error;
use smithers_engine::tools::{Carry, ToolCall, ToolLimits, execute, specs};
use smithers_sandbox::{NativeConfig, NativeProvider, Provider, SandboxSpec};
use smithers_secrets::{Redactor, SecretValue};

const BRANCH: &str = "smithers/run-1";

#[test]
fn the_schemas_name_exactly_the_kernels_tools() {
    let ours: Vec<&str> = specs().iter().map(|s| s.name).collect();
    let kernel: Vec<&str> = smithers_policy::tool::TOOLS
        .iter()
        .map(|t| t.name)
        .collect();
    let (mut a, mut b) = (ours.clone(), kernel.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for spec in specs() {
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert_eq!(spec.parameters["additionalProperties"], false);
        for required in spec.parameters["required"].as_array().unwrap() {
            assert!(
                spec.parameters["properties"]
                    .get(required.as_str().unwrap())
                    .is_some()
            );
        }
    }
}

#[test]
fn calls_are_read_strictly_and_decided_on_their_resource() {
    let call = ToolCall::parse("read_file", &json!({"path": "src/lib.rs"}), BRANCH).unwrap();
    assert_eq!(
        call,
        ToolCall::ReadFile {
            path: "src/lib.rs".into()
        }
    );
    assert_eq!(call.resources().unwrap(), ["src/lib.rs"]);
    let call = ToolCall::parse("run_tests", &json!({"command": "cargo test"}), BRANCH).unwrap();
    assert_eq!(call.resources().unwrap(), ["cargo test"]);
    let call = ToolCall::parse("create_commit", &json!({"message": "m"}), BRANCH).unwrap();
    assert_eq!(call.resources().unwrap(), [BRANCH]);
    assert_eq!(call.arguments(), json!({"message": "m", "branch": BRANCH}));
    let call = ToolCall::parse("search_files", &json!({"pattern": "fn main"}), BRANCH).unwrap();
    assert_eq!(
        call,
        ToolCall::SearchFiles {
            pattern: "fn main".into(),
            path: ".".into()
        }
    );
    let patch = "--- a/src/a.rs\n+++ b/src/b.rs\n@@ -1 +1 @@\n-x\n+y\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1 @@\n+z\n";
    let call = ToolCall::parse("apply_patch", &json!({"patch": patch}), BRANCH).unwrap();
    assert_eq!(
        call.resources().unwrap(),
        ["docs/new.md", "src/a.rs", "src/b.rs"]
    );
    let call = ToolCall::parse("inspect_repo", &json!({}), BRANCH).unwrap();
    assert_eq!(call.name(), "inspect_repo");

    for (name, args, expected) in [
        ("rm_rf", json!({}), "unknown tool \"rm_rf\""),
        ("read_file", json!({}), "`path` is required"),
        (
            "read_file",
            json!({"path": "a", "mode": "x"}),
            "unknown argument \"mode\"",
        ),
        ("read_file", json!({"path": 7}), "`path` must be a string"),
        ("read_file", json!("a"), "must be an object"),
        (
            "run_command",
            json!({"command": "  "}),
            "`command` is required",
        ),
        ("inspect_repo", json!({"x": 1}), "takes none"),
    ] {
        let e = ToolCall::parse(name, &args, BRANCH).unwrap_err();
        assert!(matches!(e, Error::Tool(_)), "{e}");
        assert!(e.to_string().contains(expected), "{name} {args}: {e}");
    }
    let empty = ToolCall::parse("apply_patch", &json!({"patch": "not a diff"}), BRANCH).unwrap();
    assert!(empty.resources().is_err());
}

fn provider(state: &tempfile::TempDir) -> NativeProvider {
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let mut config = NativeConfig::with_helper(
        PathBuf::from(env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper")),
        Vec::new(),
    );
    config.state_dir = state.path().join("sandboxes");
    NativeProvider::new(config).unwrap()
}

/// A small git repository with one commit.
fn repository() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join("src")).unwrap();
    std::fs::write(
        repo.path().join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .unwrap();
    std::fs::write(repo.path().join("README.md"), "# demo\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first"]);
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_in_the_sandbox_and_come_back_redacted_and_capped() {
    let state = tempfile::tempdir().unwrap();
    let p = provider(&state);
    let repo = repository();
    let id = p
        .create(SandboxSpec {
            workspace_from: Some(repo.path().to_path_buf()),
            env: vec![("API_TOKEN".into(), "tok-4f9a-sekret-value".into())],
            ..SandboxSpec::default()
        })
        .await
        .unwrap();
    let redactor = Redactor::new(&[SecretValue::from("tok-4f9a-sekret-value")]).unwrap();
    let limits = ToolLimits::default();
    let call = |name: &str, args: serde_json::Value| ToolCall::parse(name, &args, BRANCH).unwrap();
    let run = |c: ToolCall| {
        let (p, id, redactor) = (&p, &id, &redactor);
        async move {
            let carry = Carry {
                redactor: Some(redactor),
                ..Carry::new(limits)
            };
            execute(p, id, &c, carry).await.unwrap()
        }
    };

    let out = run(call("read_file", json!({"path": "src/lib.rs"}))).await;
    assert!(out.ok && out.text.contains("42"), "{out:?}");
    let out = run(call("read_file", json!({"path": "../../etc/passwd"}))).await;
    assert!(
        !out.ok && out.text.contains("outside the workspace"),
        "{out:?}"
    );
    let out = run(call("list_directory", json!({"path": "src"}))).await;
    assert!(out.ok && out.text.contains("lib.rs"), "{out:?}");
    let out = run(call("search_files", json!({"pattern": "answer"}))).await;
    assert!(
        out.ok && out.text.contains("src/lib.rs:1:pub fn answer"),
        "{out:?}"
    );
    let out = run(call(
        "search_files",
        json!({"pattern": "nowhere-to-be-found"}),
    ))
    .await;
    assert!(
        out.ok && out.text.is_empty(),
        "no match is an answer: {out:?}"
    );
    // A pattern is one argument, never shell: a quote in it stays a quote.
    let out = run(call(
        "search_files",
        json!({"pattern": "x'; touch pwned; '"}),
    ))
    .await;
    assert!(out.ok, "{out:?}");
    assert!(
        !run(call("list_directory", json!({})))
            .await
            .text
            .contains("pwned")
    );

    let out = run(call(
        "write_file",
        json!({"path": "notes/todo.md", "contents": "- fix\n"}),
    ))
    .await;
    assert!(out.ok, "{out:?}");
    let patch = "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn answer() -> u32 {\n-    42\n+    43\n }\n";
    let out = run(call("apply_patch", json!({"patch": patch}))).await;
    assert!(out.ok && out.text.contains("src/lib.rs"), "{out:?}");
    let out = run(call("apply_patch", json!({"patch": patch}))).await;
    assert!(!out.ok && out.text.contains("does not apply"), "{out:?}");
    let out = run(call("get_git_diff", json!({}))).await;
    assert!(out.ok && out.text.contains("+    43"), "{out:?}");
    let out = run(call("inspect_repo", json!({}))).await;
    assert!(
        out.ok && out.text.contains("## main") && out.text.contains("first"),
        "{out:?}"
    );

    // Commands: their exit code, and secrets masked in what the agent sees.
    let out = run(call(
        "run_command",
        json!({"command": "echo token=$API_TOKEN; exit 3"}),
    ))
    .await;
    assert_eq!((out.ok, out.exit_code), (false, Some(3)));
    assert!(!out.text.contains("tok-4f9a-sekret-value"), "{out:?}");
    assert_eq!(out.text, "token=***\n");
    let out = run(call(
        "run_tests",
        json!({"command": "test -f notes/todo.md"}),
    ))
    .await;
    assert_eq!((out.ok, out.exit_code), (true, Some(0)));
    // Output is capped, and the cut is said.
    let small = ToolLimits {
        output_bytes: 100,
        ..limits
    };
    let c = call("run_command", json!({"command": "seq 1 10000"}));
    let carry = Carry {
        redactor: Some(&redactor),
        ..Carry::new(small)
    };
    let out = execute(&p, &id, &c, carry).await.unwrap();
    assert!(
        out.truncated && out.text.contains("[output cut at 100 bytes"),
        "{out:?}"
    );
    // Commits and pushes are the run's, not the sandbox's.
    let c = call("push_branch", json!({"branch": BRANCH}));
    assert!(execute(&p, &id, &c, Carry::new(limits)).await.is_err());
    assert!(p.destroy(&id).await.unwrap().is_clean());
}
