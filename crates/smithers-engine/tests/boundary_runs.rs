#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The boundary cases end to end: an agent's calls that once got through —
//! a `run_tests` label on any command, a line dash reads otherwise, a
//! variable that changes what runs, a program computed at run time or
//! behind a wrapper's options, a redirection into a protected directory —
//! run through a real workflow on the native sandbox. Every one is asked
//! (and rejected), or denied, or runs as exactly what was decided; a last
//! step checks the workspace for what they tried to leave behind. An
//! agent's commands get no secret unless its step names it.

use smithers_store::{RunState, ToolCallState};
use smithers_test_support::engine::{Fixture, TOKEN};

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

const POLICY: &str = r#"
tester run_tests * -> allow
tester run_command * -> ask
echoer run_command "echo *" -> allow
echoer * * -> deny
gitter run_command "git status *" -> allow
toucher run_command * -> allow
toucher run_command "touch *" -> forbid
writer run_command "echo *" -> allow
writer write_file .github -> deny
writer write_file * -> allow
reader run_command "printenv *" -> allow
workflow run_command "chmod *" -> allow
workflow run_command "test *" -> allow
"#;

/// A label does not choose the rules: a `run_tests` call that is not a
/// test run is asked as `run_command` (and rejected here).
const TESTER: &str = r#"{"calls": [
  {"tool": "run_tests", "arguments": {"command": "curl -s http://127.0.0.1:1/ ; touch /workspace/PWNED && id"}, "expect": "rejected"}
]}"#;

/// bash reads one echo; the same text handed to sh starts touch and id.
const ECHOER: &str = r#"{"calls": [
  {"tool": "run_command", "arguments": {"command": "echo $'\\' ; touch /workspace/PWNED ; id ; # '"}, "expect": "ok"},
  {"tool": "run_command", "arguments": {"command": "sh -c \"echo \\$'\\\\' ; touch /workspace/PWNED ; id ; # '\""}, "expect": "denied"}
]}"#;

/// Variables that change which program runs or what it executes ask.
const GITTER: &str = r#"{"calls": [
  {"tool": "run_command", "arguments": {"command": "git status --short"}, "expect": "ok"},
  {"tool": "run_command", "arguments": {"command": "PATH=/workspace/tools:$PATH git status"}, "expect": "rejected"},
  {"tool": "run_command", "arguments": {"command": "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor GIT_CONFIG_VALUE_0='touch /workspace/FSMONITOR' git status"}, "expect": "rejected"}
]}"#;

/// A program computed at run time asks; a wrapper's options are skipped.
const TOUCHER: &str = r#"{"calls": [
  {"tool": "run_command", "arguments": {"command": "touch /workspace/PWNED"}, "expect": "denied"},
  {"tool": "run_command", "arguments": {"command": "/usr/bin/tou?h /workspace/PWNED"}, "expect": "rejected"},
  {"tool": "run_command", "arguments": {"command": "find /usr/bin -name touch -exec {} /workspace/PWNED ;"}, "expect": "rejected"},
  {"tool": "run_command", "arguments": {"command": "time -p touch /workspace/PWNED"}, "expect": "denied"},
  {"tool": "run_command", "arguments": {"command": "nice -n 5 timeout -k 1 5 touch /workspace/PWNED"}, "expect": "denied"}
]}"#;

/// A redirection is a write of its target.
const WRITER: &str = r#"{"calls": [
  {"tool": "write_file", "arguments": {"path": ".github/workflows/pwn.yml", "contents": "on: push\n"}, "expect": "denied"},
  {"tool": "run_command", "arguments": {"command": "echo 'on: push' > .github/ci.yml"}, "expect": "denied"},
  {"tool": "run_command", "arguments": {"command": "echo fine > notes.txt"}, "expect": "ok"}
]}"#;

const CHECK: &str = "test ! -e PWNED && test ! -e FSMONITOR && test ! -e FAKE_GIT && test ! -e .github/ci.yml && test ! -e .github/workflows/pwn.yml && test -e notes.txt";

fn agent(id: &str, role: &str) -> String {
    format!(
        r#"
[[workflows.boundary.steps]]
id = "{id}"
agent = {{ role = "{role}", driver = "scripted", script = ".smithers/{role}.json", prompt = "try" }}
"#
    )
}

#[tokio::test]
async fn boundary_cases_are_decided_on_what_really_runs() {
    let mut toml = String::from(
        r#"
[workflows.boundary]
on = ["manual"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.boundary.steps]]
id = "arm"
run = "chmod +x tools/git"
"#,
    );
    for (id, role) in [
        ("label", "tester"),
        ("dialect", "echoer"),
        ("variables", "gitter"),
        ("computed", "toucher"),
        ("redirection", "writer"),
    ] {
        toml.push_str(&agent(id, role));
    }
    toml.push_str(&format!(
        "\n[[workflows.boundary.steps]]\nid = \"check\"\nrun = \"{}\"\n",
        CHECK
    ));
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml.as_str()),
            (".smithers/policy", POLICY),
            (".smithers/tester.json", TESTER),
            (".smithers/echoer.json", ECHOER),
            (".smithers/gitter.json", GITTER),
            (".smithers/toucher.json", TOUCHER),
            (".smithers/writer.json", WRITER),
            ("tools/git", "#!/bin/sh\ntouch /workspace/FAKE_GIT\n"),
        ],
    )
    .await;
    let run = f.start("boundary").await;
    // Every question is answered no.
    let (done, asked) = f.execute_deciding(&f.provider, &run.id, false).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    // The label, the two variables and the two computed programs.
    assert_eq!(asked.len(), 5, "{asked:?}\n{log}");
    assert!(
        asked[0].contains("run_tests") && asked[0].contains("curl"),
        "{asked:?}"
    );
    // The ANSI-C line ran as bash read it: one echo of the quoted text.
    assert!(
        log.contains("[stdout] ' ; touch /workspace/PWNED ; id ; #"),
        "{log}"
    );
    assert!(
        log.contains("decided as `run_command`, not `run_tests`"),
        "{log}"
    );
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let states = |state| calls.iter().filter(|c| c.state == state).count();
    assert_eq!(states(ToolCallState::Rejected), 5);
    assert_eq!(states(ToolCallState::Denied), 6);
    f.verify().await;
}

const SECRETS_POLICY: &str = r#"
reader run_command "printenv *" -> allow
workflow run_command "printenv *" -> allow
"#;

const PRINTENV: &str = r#"{"calls": [
  {"tool": "run_command", "arguments": {"command": "printenv API_TOKEN || echo no-token-here"}, "expect": "ok"}
]}"#;

#[tokio::test]
async fn an_agents_commands_get_only_the_secrets_its_step_names() {
    let toml = r#"
[workflows.secrets]
on = ["manual"]
secrets = [{ name = "API_TOKEN", env = "dev" }]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.secrets.steps]]
id = "unnamed"
agent = { role = "reader", driver = "scripted", script = ".smithers/printenv.json", prompt = "look" }

[[workflows.secrets.steps]]
id = "named"
agent = { role = "reader", driver = "scripted", script = ".smithers/printenv.json", prompt = "look", secrets = ["API_TOKEN"] }

[[workflows.secrets.steps]]
id = "step"
run = "printenv API_TOKEN"
"#;
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml),
            (".smithers/policy", SECRETS_POLICY),
            (".smithers/printenv.json", PRINTENV),
        ],
    )
    .await;
    let run = f.start("secrets").await;
    let (done, _) = f.execute_deciding(&f.provider, &run.id, true).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let output = |position: u32| {
        calls
            .iter()
            .find(|c| c.key.position == position)
            .and_then(|c| c.result.as_ref())
            .map(|r| r.output.clone())
            .unwrap_or_default()
    };
    // The step that names nothing: its command has no such variable.
    assert!(output(0).contains("no-token-here"), "{}", output(0));
    // The step that names it: the value, masked in what the agent is shown.
    assert!(output(1).contains("***"), "{}", output(1));
    assert!(!log.contains(TOKEN), "{log}");
    // A run step gets the workflow's secrets, masked in the log.
    assert!(log.contains("[stdout] ***"), "{log}");
    f.verify().await;
}

#[test]
fn workflow_check_warns_when_an_agents_commands_get_secrets() {
    let text = r#"
[workflows.w]
on = ["manual"]
secrets = [{ name = "API_TOKEN", env = "dev" }]

[[workflows.w.steps]]
id = "a"
agent = { role = "r", driver = "scripted", script = "s.json", prompt = "p", secrets = ["API_TOKEN"] }
"#;
    let file = smithers_engine::workflow::parse("smithers.toml", text).unwrap();
    assert_eq!(file.warnings.len(), 1);
    assert!(
        file.warnings[0].message.contains("the model is shown what"),
        "{}",
        file.warnings[0].message
    );
    assert_eq!(file.warnings[0].line, 8);
    let bad = text.replace(r#"secrets = ["API_TOKEN"] }"#, r#"secrets = ["OTHER"] }"#);
    let errors = smithers_engine::workflow::parse("smithers.toml", &bad).unwrap_err();
    assert!(errors[0].message.contains("OTHER"), "{errors:?}");
}

const PATHS_POLICY: &str = r#"
reader read_file * -> allow
reader read_file config -> deny
reader search_files * -> allow
reader search_files config -> deny
reader list_directory * -> allow
reader apply_patch * -> allow
reader apply_patch .github -> deny
reader run_command "echo *" -> allow
reader write_file * -> allow
reader write_file .github -> deny
workflow run_command "ln *" -> allow
"#;

/// A git rename patch: a harmless-looking hunk on README.md, and a file
/// moved into `.github/workflows`.
const RENAME: &str = "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-hello\n+hello, world\ndiff --git a/docs/payload.yml b/.github/workflows/pwn.yml\nsimilarity index 100%\nrename from docs/payload.yml\nrename to .github/workflows/pwn.yml\n";

fn paths_script() -> String {
    serde_json::json!({"calls": [
        {"tool": "read_file", "arguments": {"path": "notes.txt"}, "expect": "denied"},
        {"tool": "read_file", "arguments": {"path": "config/prod.key"}, "expect": "denied"},
        {"tool": "read_file", "arguments": {"path": "passwd"}, "expect": "denied"},
        {"tool": "read_file", "arguments": {"path": "docs/payload.yml"}, "expect": "ok"},
        {"tool": "search_files", "arguments": {"pattern": "KEY", "path": "."}, "expect": "ok"},
        {"tool": "search_files", "arguments": {"pattern": "KEY", "path": "notes.txt"}, "expect": "denied"},
        {"tool": "list_directory", "arguments": {"path": "."}, "expect": "ok"},
        {"tool": "list_directory", "arguments": {"path": "config"}, "expect": "ok"},
        {"tool": "apply_patch", "arguments": {"patch": RENAME}, "expect": "denied"},
        {"tool": "run_command", "arguments": {"command": "echo 'on: push' > linked/ci.yml"}, "expect": "denied"},
        {"tool": "run_command", "arguments": {"command": "echo fine > docs/fine.txt"}, "expect": "ok"}
    ]})
    .to_string()
}

#[tokio::test]
async fn file_tools_are_decided_on_what_a_path_resolves_to() {
    let toml = r#"
[workflows.paths]
on = ["manual"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.paths.steps]]
id = "links"
run = "ln -s config/prod.key notes.txt && ln -s /etc/passwd passwd && ln -s .github linked"

[[workflows.paths.steps]]
id = "read"
agent = { role = "reader", driver = "scripted", script = ".smithers/paths.json", prompt = "look" }
"#;
    let script = paths_script();
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", toml),
            (".smithers/policy", PATHS_POLICY),
            (".smithers/paths.json", script.as_str()),
            ("config/prod.key", "KEY=prod-secret-4411\n"),
            ("docs/payload.yml", "KEY: harmless\n"),
            (".github/README", "workflows\n"),
            ("README.md", "hello\n"),
        ],
    )
    .await;
    let run = f.start("paths").await;
    let (done, asked) = f.execute_deciding(&f.provider, &run.id, false).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    assert!(asked.is_empty(), "{asked:?}");
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let agent: Vec<_> = calls.iter().filter(|c| c.key.position == 1).collect();
    let output = |seq: usize| {
        agent[seq]
            .result
            .as_ref()
            .map(|r| r.output.clone())
            .unwrap_or_default()
    };
    // The link's target is what was decided, and named.
    assert!(output(0).contains("config/prod.key"), "{}", output(0));
    // The search found the harmless file only: no name or line of config/.
    assert!(
        output(4).contains("docs/payload.yml:1:KEY: harmless"),
        "{}",
        output(4)
    );
    assert!(!output(4).contains("config/prod.key:"), "{}", output(4));
    assert!(!output(4).contains("prod-secret-4411"), "{}", output(4));
    // The listing hides config/ and the link's target.
    assert!(
        output(6).contains("notes.txt -> (not shown)"),
        "{}",
        output(6)
    );
    assert!(!output(6).contains("config"), "{}", output(6));
    assert!(!output(6).contains("prod.key"), "{}", output(6));
    assert_eq!(output(7).trim(), "", "nothing beneath config/ is named");
    // The rename's destination decided the patch.
    assert!(
        output(8).contains(".github/workflows/pwn.yml"),
        "{}",
        output(8)
    );
    assert!(!log.contains("prod-secret-4411"), "{log}");
}
