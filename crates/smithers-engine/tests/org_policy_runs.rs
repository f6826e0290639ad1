#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! An organization's policy bounds a repository's in a real run: the
//! repository allows every command, the organization denies `touch` and
//! asks before `rm`; the run is decided by both, keeps the version it
//! started with even when the organization publishes another, and its
//! decisions say which policy held.

use smithers_audit::{ActorType, CheckpointSigner};
use smithers_store::{RunState, ToolCallState};
use smithers_test_support::engine::Fixture;

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

const REPO_POLICY: &str = r#"
workflow run_command * -> allow
workflow write_file * -> allow
implementer run_command * -> allow
implementer run_tests * -> allow
implementer write_file * -> allow
"#;

const ORG_POLICY: &str = r#"
* run_command "touch *" -> deny
implementer run_command "rm *" -> ask
workflow run_command * -> allow
workflow write_file * -> allow
implementer run_command * -> allow
implementer run_tests * -> allow
implementer write_file * -> allow
"#;

const AGENT: &str = r#"{"calls": [
  {"tool": "run_command", "arguments": {"command": "echo fine > ok.txt"}, "expect": "ok"},
  {"tool": "run_command", "arguments": {"command": "touch TOUCHED"}, "expect": "denied"},
  {"tool": "run_tests", "arguments": {"command": "sh -c 'touch TOUCHED'"}, "expect": "denied"},
  {"tool": "run_command", "arguments": {"command": "rm -f README.md"}, "expect": "rejected"}
]}"#;

const WORKFLOW: &str = r#"
[workflows.bounded]
on = ["manual"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.bounded.steps]]
id = "agent"
agent = { role = "implementer", driver = "scripted", script = ".smithers/agent.json", prompt = "try" }

[[workflows.bounded.steps]]
id = "check"
run = "test -e ok.txt && test ! -e TOUCHED"
"#;

#[tokio::test]
async fn an_organization_policy_bounds_the_repositorys_in_a_run() {
    let f = Fixture::new(
        HELPER,
        &[
            ("smithers.toml", WORKFLOW),
            (".smithers/policy", REPO_POLICY),
            (".smithers/agent.json", AGENT),
        ],
    )
    .await;
    let signer = CheckpointSigner::from_seed(&[7u8; 32]).unwrap();
    let v1 = f
        .store
        .policies()
        .publish(&signer, (ActorType::User, "admin"), "local", ORG_POLICY)
        .await
        .unwrap();
    let run = f.start("bounded").await;
    // Published after the run was created: it does not apply to it.
    f.store
        .policies()
        .publish(
            &signer,
            (ActorType::User, "admin"),
            "local",
            "* * * -> deny\n",
        )
        .await
        .unwrap();
    let (done, asked) = f.execute_deciding(&f.provider, &run.id, false).await;
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);
    assert_eq!(asked.len(), 1, "{asked:?}\n{log}");
    assert!(asked[0].contains("rm -f README.md"), "{asked:?}");
    assert!(
        log.contains(&format!(
            "the organization's policy (version {}) is stricter",
            v1.version
        )),
        "{log}"
    );
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let denied: Vec<_> = calls
        .iter()
        .filter(|c| c.state == ToolCallState::Denied)
        .collect();
    assert_eq!(denied.len(), 2, "{log}");
    for call in &denied {
        assert_eq!(call.decision["organization"]["version"], 1);
        assert_eq!(call.decision["organization"]["decides"], true);
        assert_eq!(call.decision["rule"]["file"], "organization policy v1");
    }
    // The echo was allowed by both; the organization's decision is beside it.
    let echo = calls
        .iter()
        .find(|c| c.state == ToolCallState::Completed)
        .unwrap();
    assert_eq!(echo.decision["organization"]["decides"], false);
    let definition = smithers_engine::run::Definition::from_json(&done.definition).unwrap();
    assert_eq!(definition.org_policy.map(|o| o.version), Some(1));
    f.verify().await;
}
