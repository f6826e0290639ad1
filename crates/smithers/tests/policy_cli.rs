//! The `smithers policy` commands as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn smithers(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smithers"))
        .args(args)
        .output()
        .expect("the smithers binary runs")
}

fn example() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies/default.policy")
        .display()
        .to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A policy file in a fresh temporary directory, removed on drop.
struct TempPolicy {
    dir: PathBuf,
    path: String,
}

impl TempPolicy {
    fn new(name: &str, text: &str) -> TempPolicy {
        let dir = std::env::temp_dir().join(format!("smithers-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.policy"));
        std::fs::write(&path, text).unwrap();
        TempPolicy {
            dir,
            path: path.display().to_string(),
        }
    }
}

impl Drop for TempPolicy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn check_accepts_the_example_and_runs_its_tests() {
    let o = smithers(&["policy", "check", &example()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("valid: 15 rules"), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 failed"), "{}", stdout(&o));
    let o = smithers(&["policy", "check", &example(), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["rules"], 15);
    assert_eq!(v["tests"]["failed"], 0);
}

#[test]
fn check_rejects_a_bad_policy_with_file_line_and_column() {
    let p = TempPolicy::new(
        "bad",
        "a read_file * -> allow\nb write_file \"x -> deny\nc * * -> alow\n",
    );
    let o = smithers(&["policy", "check", &p.path]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}:2:14: error: unterminated quote", p.path)),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:3:10: error: unknown effect `alow`", p.path)),
        "{err}"
    );
    assert!(err.contains("nothing was loaded"), "{err}");
    assert!(stdout(&o).is_empty());
    // The other commands refuse it the same way.
    for cmd in ["test", "analyze"] {
        assert_eq!(smithers(&["policy", cmd, &p.path]).status.code(), Some(2));
    }
    let o = smithers(&[
        "policy",
        "eval",
        &p.path,
        "--subject",
        "a",
        "--action",
        "read_file",
        "--resource",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let o = smithers(&["policy", "check", "/nonexistent/x.policy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read the policy file /nonexistent/x.policy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_json_has_the_documented_shape() {
    let o = smithers(&[
        "policy",
        "eval",
        &example(),
        "--subject",
        "reviewer",
        "--action",
        "write_file",
        "--resource",
        "src/main.rs",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "a deny is still exit 0");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["decided_as", "decision", "reason", "rule", "source"]);
    // Printed in the documented order.
    let out = stdout(&o);
    let at = |k: &str| out.find(&format!("\"{k}\":")).unwrap();
    assert!(
        at("decision") < at("rule")
            && at("rule") < at("source")
            && at("source") < at("reason")
            && at("reason") < at("decided_as"),
        "{out}"
    );
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["source"], "rule");
    assert_eq!(v["rule"]["line"], 15);
    assert_eq!(v["rule"]["text"], "reviewer * * -> deny");
    assert!(
        v["rule"]["file"]
            .as_str()
            .unwrap()
            .ends_with("default.policy")
    );

    let o = smithers(&[
        "policy",
        "eval",
        &example(),
        "--subject",
        "implementer",
        "--action",
        "push_branch",
        "--resource",
        "main",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["source"], "invariant");
    assert_eq!(v["rule"], Value::Null);

    let o = smithers(&[
        "policy",
        "eval",
        &example(),
        "--subject",
        "intern",
        "--action",
        "write_file",
        "--resource",
        "-rf",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["source"].as_str()),
        (Some("ask"), Some("default"))
    );
}

#[test]
fn eval_refuses_a_malformed_subject() {
    let o = smithers(&[
        "policy",
        "eval",
        &example(),
        "--subject",
        "a b",
        "--action",
        "read_file",
        "--resource",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("subject \"a b\""), "{}", stderr(&o));
}

#[test]
fn explain_shows_every_match_and_why_the_winner_won() {
    let o = smithers(&[
        "policy",
        "explain",
        &example(),
        "--subject",
        "planner",
        "--action",
        "write_file",
        "--resource",
        "docs/spec.md",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("decision: ask"), "{out}");
    assert!(out.contains("planner write_file *.md -> ask"), "{out}");
    assert!(out.contains("planner write_file * -> admin-only"), "{out}");
    assert!(
        out.contains("line 3 wins over line 4: its resource is a glob, the other's is `*`"),
        "{out}"
    );
    let o = smithers(&[
        "policy",
        "explain",
        &example(),
        "--subject",
        "implementer",
        "--action",
        "run_command",
        "--resource",
        "cargo test && rm -rf /",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parts"].as_array().unwrap().len(), 2);
    assert_eq!(v["parts"][1]["resource"], "rm -rf /");
}

#[test]
fn analyze_reports_findings_and_who_can() {
    let o = smithers(&[
        "policy",
        "analyze",
        &example(),
        "--who-can",
        "push_branch",
        "release/1",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("0 shadowed, 0 conflicts"), "{out}");
    assert!(
        out.contains("release_manager") && out.contains("admin-only"),
        "{out}"
    );
    let p = TempPolicy::new(
        "shadow",
        "dev read_file * -> forbid\ndev read_file src/* -> allow\nqa write_file *.md -> allow\nqa write_file *_test.* -> deny\n",
    );
    let o = smithers(&["policy", "analyze", &p.path]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains(&format!("{}:2: shadowed", p.path)), "{out}");
    assert!(out.contains(&format!("{}:3: conflict", p.path)), "{out}");
    assert_eq!(
        smithers(&["policy", "analyze", &p.path, "--strict"])
            .status
            .code(),
        Some(1)
    );
    let o = smithers(&[
        "policy",
        "analyze",
        &p.path,
        "--json",
        "--who-can",
        "read_file",
        "src/x",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shadowed"][0]["rule"]["line"], 2);
    assert_eq!(v["shadowed"][0]["by"]["line"], 1);
    assert_eq!(v["conflicts"][0]["winner"]["line"], 4);
    assert_eq!(v["who_can"][0]["subject"], "dev");
    assert_eq!(v["who_can"][0]["decision"]["decision"], "deny");
}

#[test]
fn failing_inline_tests_fail_test_and_check() {
    let p = TempPolicy::new(
        "tests",
        "dev run_command * -> allow\ntest dev run_command \"cargo test && rm -rf /\" -> ask\ntest dev run_command ls -> allow\n",
    );
    let o = smithers(&["policy", "test", &p.path]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains(&format!("FAIL {}:2:", p.path)), "{out}");
    assert!(out.contains("expected ask, got allow"), "{out}");
    assert!(out.contains(&format!("PASS {}:3:", p.path)), "{out}");
    assert!(out.ends_with("1 passed, 1 failed\n"), "{out}");
    assert_eq!(
        smithers(&["policy", "check", &p.path]).status.code(),
        Some(1)
    );
    let o = smithers(&["policy", "test", &p.path, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn warnings_are_printed_but_do_not_fail() {
    let p = TempPolicy::new(
        "warn",
        "dev reed_file * -> allow\ndev reed_file * -> allow\n",
    );
    let o = smithers(&["policy", "check", &p.path]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(err.contains("warning: unknown tool `reed_file`"), "{err}");
    assert!(err.contains("warning: duplicate rule"), "{err}");
}

#[test]
fn a_user_rule_beats_the_role_of_that_user() {
    let p = TempPolicy::new(
        "user",
        "dev read_file * -> allow\nuser:alice read_file * -> deny\n",
    );
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "eval",
            &p.path,
            "--action",
            "read_file",
            "--resource",
            "x",
            "--json",
        ];
        args.extend_from_slice(extra);
        smithers(&args)
    };
    let o = eval(&["--subject", "dev", "--user", "alice"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["rule"]["line"].as_u64()),
        (Some("deny"), Some(2))
    );
    let o = eval(&["--subject", "dev", "--user", "bob"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "allow");
    let o = eval(&["--subject", "user:alice"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    let o = eval(&["--subject", "user:alice", "--user", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--user cannot be combined"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_run_tests_line_that_is_not_a_test_run_is_decided_as_run_command() {
    let empty = TempPolicy::new("empty", "# no rules\n");
    let o = smithers(&[
        "policy",
        "eval",
        &empty.path,
        "--subject",
        "implementer",
        "--action",
        "run_tests",
        "--resource",
        "rm -rf /workspace",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "ask", "{v}");
    assert_eq!(v["decided_as"], "run_command");
    assert_eq!(v["relabeled"]["from"], "run_tests");
    assert!(
        v["relabeled"]["why"]
            .as_str()
            .unwrap()
            .contains("is not a test runner"),
        "{v}"
    );
    // Text says it too, and explain names the tool each part was decided as.
    let o = smithers(&[
        "policy",
        "explain",
        &empty.path,
        "--subject",
        "implementer",
        "--action",
        "run_tests",
        "--resource",
        "cargo test > out.txt",
    ]);
    let out = stdout(&o);
    assert!(out.contains("(as run_tests)"), "{out}");
    assert!(out.contains("(as write_file)"), "{out}");
    let o = smithers(&[
        "policy",
        "eval",
        &empty.path,
        "--subject",
        "implementer",
        "--action",
        "run_tests",
        "--resource",
        "curl -s http://127.0.0.1:1/ ; touch /workspace/PWNED && id",
    ]);
    let out = stdout(&o);
    assert!(out.starts_with("ask\n"), "{out}");
    assert!(
        out.contains("decided as: run_command (not run_tests"),
        "{out}"
    );
    // A policy names its own test runners.
    let own = TempPolicy::new("runner", "test-runner \"python3 -m unittest *\"\n");
    let o = smithers(&[
        "policy",
        "eval",
        &own.path,
        "--subject",
        "implementer",
        "--action",
        "run_tests",
        "--resource",
        "python3 -m unittest discover",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["decided_as"].as_str()),
        (Some("allow"), Some("run_tests"))
    );
}

#[test]
fn analyze_warns_of_a_refusal_by_name_under_a_broad_allow() {
    let p = TempPolicy::new(
        "tripwire",
        "implementer run_command * -> allow\n* run_command \"touch *\" -> forbid\n",
    );
    let o = smithers(&["policy", "analyze", &p.path, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tripwires"][0]["refusal"]["line"], 2, "{v}");
    assert_eq!(v["tripwires"][0]["allow"]["line"], 1, "{v}");
    let o = smithers(&["policy", "analyze", &p.path, "--strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("tripwire, not a boundary"),
        "{}",
        stdout(&o)
    );
}
