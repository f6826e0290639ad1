#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Workflows run for real: smithers.toml, a scripted agent whose calls pass
//! the kernel, an ask approved and a deny returned to the agent, a secret
//! redacted in the log, a commit pushed to a bare remote with main
//! untouched; a rejected approval; a timed-out step; a workflow past its
//! time limit; a run cancelled mid-command, while waiting for a human, and
//! with nothing carrying it out.

use std::time::Duration;

use smithers_store::{RunState, StepState, ToolCallState};
use smithers_test_support::engine::{Fixture, TOKEN};
use smithers_test_support::git::git;

/// The sandbox helper program, a binary of this crate.
const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

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

[workflows.unheeded]
on = ["manual"]
policy = ".smithers/policy"
approval_timeout = "1s"

[[workflows.unheeded.steps]]
id = "ask"
approval = { message = "Anyone?" }

[[workflows.unheeded.steps]]
id = "after"
run = "sh test.sh"

[workflows.late]
on = ["manual"]
policy = ".smithers/policy"
timeout = "2s"

[[workflows.late.steps]]
id = "wait"
run = "sleep 30"

[[workflows.late.steps]]
id = "never"
run = "sh test.sh"

[workflows.long]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.long.steps]]
id = "wait"
run = "sleep 30"

[[workflows.long.steps]]
id = "never"
run = "sh test.sh"
"#;

async fn fixture() -> Fixture {
    Fixture::new(
        HELPER,
        &[
            ("smithers.toml", WORKFLOWS),
            (".smithers/policy", POLICY),
            (".smithers/fix.json", SCRIPT),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_through_the_kernel_to_a_pushed_branch() {
    let f = fixture().await;
    let main_before = git(&f.remote(), &["rev-parse", "main"]);
    let run = f.start("fix").await;
    assert_eq!(run.state, RunState::Queued);
    let (done, asked) = f.execute_deciding(&f.provider, &run.id, true).await;
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
    let (done, decided) = f.execute_deciding(&f.provider, &run.id, false).await;
    assert_eq!(decided, ["Ship it?"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_past_its_time_limit_is_stopped_whatever_step_it_is_in() {
    let f = fixture().await;
    let run = f.start("late").await;
    let started = std::time::Instant::now();
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::TimedOut, "{log}");
    assert!(started.elapsed() < Duration::from_secs(25), "{log}");
    assert!(
        done.error
            .unwrap()
            .contains("the workflow's time limit (2s) passed"),
        "{log}"
    );
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::TimedOut, "{steps:?}");
    assert_eq!(steps[1].state, StepState::TimedOut, "{steps:?}");
    assert_eq!(done.purge.unwrap()["clean"], true);
    f.verify().await;
}

/// Waits until `check` holds for the run's state in the store.
async fn until(f: &Fixture, run: &str, what: &str, check: impl Fn(&smithers_store::Run) -> bool) {
    for _ in 0..600 {
        if check(&f.engine.runs.get(run).await.unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited too long for {what}\n{}", f.log(run).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_mid_command_stops_and_cleans_up() {
    let f = fixture().await;
    let run = f.start("long").await;
    let engine = f.engine.clone();
    let provider = f.provider.clone();
    let id = run.id.clone();
    let executing = tokio::spawn(async move { engine.execute(&provider, &id).await });
    let calls = f.engine.runs.clone();
    for _ in 0..600 {
        let c = calls.tool_calls(&run.id).await.unwrap();
        if c.first().is_some_and(|c| c.state == ToolCallState::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    let cancelled = f.engine.cancel(&run.id, "admin").await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    let done = executing.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(done.state, RunState::Cancelled);
    assert_eq!(done.error.as_deref(), Some("cancelled by admin"));
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert_eq!(steps[0].state, StepState::Cancelled, "{steps:?}");
    assert_eq!(steps[1].state, StepState::Cancelled, "{steps:?}");
    assert_eq!(done.purge.unwrap()["clean"], true);
    assert!(!f.tmp.path().join("runs").join(&run.id).exists());
    // Cancelling again is refused: the run is over.
    assert!(f.engine.cancel(&run.id, "admin").await.is_err());
    f.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cancelled_while_waiting_for_a_human_withdraws_the_approval() {
    let f = fixture().await;
    let run = f.start("gate").await;
    let engine = f.engine.clone();
    let provider = f.provider.clone();
    let id = run.id.clone();
    let executing = tokio::spawn(async move { engine.execute(&provider, &id).await });
    until(&f, &run.id, "the approval to be asked", |r| {
        r.state == RunState::WaitingApproval
    })
    .await;
    f.engine.cancel(&run.id, "admin").await.unwrap();
    let done = executing.await.unwrap().unwrap();
    assert_eq!(done.state, RunState::Cancelled);
    let approvals = f.engine.runs.approvals_of_run(&run.id).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].state, smithers_store::ApprovalState::Expired);
    assert!(
        f.engine
            .runs
            .approvals("local", true, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nobody can approve what no longer waits.
    assert!(
        f.engine
            .decide("local", "admin", &approvals[0].id, true, None)
            .await
            .is_err()
    );
    f.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_nobody_carries_out_is_closed_by_its_cancel() {
    let f = fixture().await;
    let run = f.start("gate").await;
    let cancelled = f.engine.cancel(&run.id, "alice").await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert!(
        steps.iter().all(|s| s.state == StepState::Cancelled),
        "{steps:?}"
    );
    // Executing it now does nothing.
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    assert_eq!(done.state, RunState::Cancelled);
    assert!(f.engine.runs.tool_calls(&run.id).await.unwrap().is_empty());
    f.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_nobody_decides_expires_and_fails_the_step() {
    let f = fixture().await;
    let run = f.start("unheeded").await;
    let done = f.engine.execute(&f.provider, &run.id).await.unwrap();
    let log = f.log(&run.id).await;
    assert_eq!(done.state, RunState::Failed, "{log}");
    assert!(
        done.error
            .unwrap_or_default()
            .contains("the approval expired before anyone decided"),
        "{log}"
    );
    let approvals = f.engine.runs.approvals_of_run(&run.id).await.unwrap();
    assert_eq!(approvals[0].state, smithers_store::ApprovalState::Expired);
    let asked = approvals[0].created_at;
    assert_eq!(approvals[0].expires_at, Some(asked + 1_000_000));
    let steps = f.engine.runs.steps(&run.id).await.unwrap();
    assert_eq!(steps[1].state, StepState::Skipped);
}
