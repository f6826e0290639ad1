#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! The same workflow as the native end-to-end test, on the real Docker
//! engine: kernel asks approved, denies returned to the agent, the secret
//! redacted, the commit carried out of the container and pushed, main
//! untouched, and every container and volume gone.

use std::path::PathBuf;

use smithers_sandbox::{DockerConfig, DockerProvider};
use smithers_store::{RunState, ToolCallState};
use smithers_test_support::engine::{Fixture, TOKEN};
use smithers_test_support::git::git;

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

const IMAGE: &str = "smithers-engine-test:latest";

const POLICY: &str = "\
implementer read_file * -> allow
implementer apply_patch * -> ask
implementer push_branch * -> ask
workflow run_command \"sh test.sh\" -> allow
workflow create_commit smithers/* -> allow
workflow push_branch smithers/* -> allow
";

const SCRIPT: &str = r#"{"calls": [
  {"tool": "read_file", "arguments": {"path": "src/answer.txt"}, "expect": "ok"},
  {"tool": "apply_patch", "arguments": {"patch": "--- a/src/answer.txt\n+++ b/src/answer.txt\n@@ -1 +1 @@\n-41\n+42\n"}, "expect": "ok"},
  {"tool": "push_branch", "arguments": {"branch": "main"}, "expect": "denied"}
]}"#;

const WORKFLOWS: &str = r#"
[workflows.fix]
on = ["manual"]
provider = "docker"
secrets = [{ name = "API_TOKEN", env = "dev" }]
policy = ".smithers/policy"

[[workflows.fix.steps]]
id = "plan"
agent = { role = "implementer", driver = "scripted", script = ".smithers/fix.json", prompt = "Fix it" }

[[workflows.fix.steps]]
id = "test"
run = "sh test.sh"

[[workflows.fix.steps]]
id = "ship"
commit = { branch = "smithers/fix", message = "Fix the answer" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_end_to_end_on_docker() {
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", WORKFLOWS),
            (".smithers/policy", POLICY),
            (".smithers/fix.json", SCRIPT),
        ],
    )
    .await;
    let helper = PathBuf::from(HELPER);
    let mut config = DockerConfig::from_env().unwrap();
    let programs: Vec<String> = smithers_sandbox::docker::image::DEFAULT_PROGRAMS
        .iter()
        .map(|p| (*p).to_string())
        .collect();
    let work = tempfile::tempdir().unwrap();
    smithers_sandbox::docker::image::build(
        &config.socket,
        IMAGE,
        &programs,
        &helper,
        work.path(),
        |_| Ok(()),
    )
    .await
    .expect("the Docker engine must run for this test (scripts/lib.sh ensure_docker)");
    config.image = IMAGE.to_string();
    config.state_dir = f.tmp.path().join("docker");
    config.helper = Some((helper, Vec::new()));
    let provider = DockerProvider::connect(config).await.unwrap();

    let main_before = git(&f.remote(), &["rev-parse", "main"]);
    let run = f.start("fix").await;
    let (done, decided) = f.execute_deciding(&provider, &run.id, true).await;
    assert_eq!(decided.len(), 2);
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    assert!(log.contains("token in use: ***"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c.tool == "push_branch" && c.state == ToolCallState::Denied)
    );
    assert_eq!(git(&f.remote(), &["rev-parse", "main"]), main_before);
    assert_eq!(
        git(&f.remote(), &["show", "smithers/fix:src/answer.txt"]),
        "42"
    );
    let purge = done.purge.unwrap();
    assert_eq!(purge["clean"], true, "{purge}");
    // Nothing of the run is left in the engine: no container, no volume.
    let label = format!(
        "label={}={}",
        smithers_sandbox::docker::SANDBOX_LABEL,
        purge["sandbox"].as_str().unwrap()
    );
    for what in [&["ps", "-aq"][..], &["volume", "ls", "-q"][..]] {
        let left = std::process::Command::new("docker")
            .args(what)
            .args(["--filter", &label])
            .output()
            .unwrap();
        assert!(left.status.success());
        assert!(
            String::from_utf8_lossy(&left.stdout).trim().is_empty(),
            "{what:?}"
        );
    }
    f.verify().await;
}
