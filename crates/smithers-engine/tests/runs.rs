#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Workflows run for real: smithers.toml, a scripted agent whose calls pass
//! the kernel, an ask approved and a deny returned to the agent, a secret
//! redacted in the log, a commit pushed to a bare remote with main
//! untouched; a rejected approval; a timed-out step.

mod common;

use common::{Fixture, TOKEN, git};
use smithers_store::{RunState, StepState, ToolCallState};

const POLICY: &str = "\
implementer read_file * -> allow
implementer apply_patch * -> ask
implementer push_branch * -> ask
workflow run_command \"sh test.sh\" -> allow
workflow run_command \"sleep *\" -> allow
workflow create_commit smithers/* -> allow
workflow push_branch smithers/* -> allow
";

const SCRIPT: &str = r#"{
  "calls": [
    {"tool": "read_file", "arguments": {"path": "src/answer.txt"}, "expect": "ok"},
    {"tool": "apply_patch", "arguments": {"patch": "--- a/src/answer.txt\n+++ b/src/answer.txt\n@@ -1 +1 @@\n-41\n+42\n"}, "expect": "ok"},
    {"tool": "push_branch", "arguments": {"branch": "main"}, "expect": "denied"},
    {"tool": "read_file", "arguments": {"path": "../../etc/passwd"}, "expect": "denied"}
  ],
  "summary": "fixed the answer"
}"#;

const WORKFLOWS: &str = r#"
[workflows.fix]
on = ["manual"]
secrets = [{ name = "API_TOKEN", env = "dev" }]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.fix.steps]]
id = "plan"
agent = { role = "implementer", driver = "scripted", script = ".smithers/fix.json", prompt = "Fix the answer" }

[[workflows.fix.steps]]
id = "test"
run = "sh test.sh"
if = "plan.succeeded"

[[workflows.fix.steps]]
id = "ship"
commit = { branch = "smithers/fix", message = "Fix the answer" }

[workflows.gate]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.gate.steps]]
id = "ask"
approval = { message = "Ship it?" }

[[workflows.gate.steps]]
id = "after"
run = "sh test.sh"

[workflows.slow]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.slow.steps]]
id = "wait"
run = "sleep 30"
timeout = "1s"

[[workflows.slow.steps]]
id = "never"
run = "sh test.sh"
"#;

async fn fixture() -> Fixture {
    Fixture::new(&[
        ("smithers.toml", WORKFLOWS),
        (".smithers/policy", POLICY),
        (".smithers/fix.json", SCRIPT),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_through_the_kernel_to_a_pushed_branch() {
    let f = fixture().await;
    let main_before = git(&f.remote(), &["rev-parse", "main"]);
    let run = f.start("fix").await;
    assert_eq!(run.state, RunState::Queued);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let approver = f.approver(true, stopped);
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    stop.send(true).unwrap();
    let asked = approver.await.unwrap();
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Succeeded, "{:?}\n{log}", done.error);

    // Two humans' decisions: the secret's release and the patch.
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains("API_TOKEN (dev)"), "{asked:?}");
    assert!(
        asked[1].contains("apply_patch") && asked[1].contains("+42"),
        "{asked:?}"
    );

    // The kernel's deny came back to the agent, which carried on.
    let calls = f.engine.runs.tool_calls(&run.id).await.unwrap();
    let denied: Vec<_> = calls
        .iter()
        .filter(|c| c.state == ToolCallState::Denied)
        .map(|c| c.tool.as_str())
        .collect();
    assert_eq!(denied, ["push_branch", "read_file"], "{calls:#?}");
    assert!(log.contains("push_branch → deny"), "{log}");

    // The secret was in the command's environment and never in the log.
    assert!(log.contains("token in use: ***"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");

    // The commit is on smithers/fix in the remote; main is untouched.
    assert_eq!(git(&f.remote(), &["rev-parse", "main"]), main_before);
    assert_eq!(
        git(&f.remote(), &["show", "smithers/fix:src/answer.txt"]),
        "42"
    );
    assert_eq!(
        git(&f.remote(), &["log", "-1", "--format=%s", "smithers/fix"]),
        "Fix the answer"
    );
    // The user's working copy is as it was.
    assert_eq!(
        std::fs::read_to_string(f.repo().join("src/answer.txt")).unwrap(),
        "41\n"
    );
    let purge = done.purge.unwrap();
    assert_eq!(purge["clean"], true, "{purge}");
    assert!(!f.tmp.path().join("runs").join(&run.id).exists());
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert!(steps.iter().all(|s| s.state == StepState::Succeeded));
    f.verify().await;
    // Executing a finished run changes nothing.
    let again = f.engine.execute(&f.provider, &run.id).await.unwrap();
    assert_eq!(again.state, RunState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_approval_fails_the_step_with_the_reason() {
    let f = fixture().await;
    let run = f.start("gate").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let approver = f.approver(false, stopped);
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    stop.send(true).unwrap();
    assert_eq!(approver.await.unwrap(), ["Ship it?"]);
    assert_eq!(done.state, RunState::Failed);
    let error = done.error.unwrap();
    assert!(error.contains("step ask failed"), "{error}");
    assert!(error.contains("admin: not like this"), "{error}");
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Failed);
    assert_eq!(steps[1].state, StepState::Skipped);
    f.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_its_time_limit_is_stopped() {
    let f = fixture().await;
    let run = f.start("slow").await;
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Failed, "{log}");
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::TimedOut);
    assert_eq!(steps[0].exit_code, Some(124));
    assert_eq!(steps[1].state, StepState::Skipped);
    assert!(done.error.unwrap().contains("time limit (1s)"));
}
