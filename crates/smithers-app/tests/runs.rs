//! The runs service on both backends, as a user relies on it: a run is
//! started, carried out in a real sandbox and shown with its steps and its
//! log (a failing command with its exit code); another organization is
//! told nothing of it; a step waiting for a human wakes its followers, is
//! refused to its starter and decided by another user; another process
//! sees a run's changes at once; a run nobody carries out is cancelled
//! once; and what a killed process left is handed to the launcher, and
//! only that.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use smithers_api::{
    ApprovalKind, ApprovalState, Cancelled, Error, ErrorKind, Launched, LogLine, LogStream, Role,
    RunState, RunSummary, StepState, ToolCallState,
};
use smithers_app::{
    App, BoxFuture, Config, Execution, NewRun, Principal, RunLauncher, SandboxHelper, Via,
};
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::git::git;
use smithers_test_support::{TestDb, on_both_backends};

const WORKFLOWS: &str = r#"
[workflows.hello]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.hello.steps]]
id = "greet"
run = "echo hi"

[[workflows.hello.steps]]
id = "again"
run = "echo there"

[workflows.gated]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.gated.steps]]
id = "greet"
run = "echo hi"
needs_approval = true

[workflows.broken]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.broken.steps]]
id = "fail"
run = "exit 3"

[[workflows.broken.steps]]
id = "never"
run = "echo never"
"#;

const POLICY: &str =
    "workflow run_command \"echo *\" -> allow\nworkflow run_command \"exit *\" -> allow\n";

/// Longer than any wait of these tests: a waiter built with it that wakes
/// within [`WITHIN`] was woken by an announcement.
const FALLBACK: Duration = Duration::from_secs(60);

/// How long a wake-up may take.
const WITHIN: Duration = Duration::from_secs(30);

fn config(db: &TestDb) -> Config {
    Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        sandbox_helper: Some(SandboxHelper {
            program: PathBuf::from(env!("CARGO_BIN_EXE_smithers-app-sandbox-helper")),
            args: Vec::new(),
        }),
        ..Config::default()
    }
}

/// The application over the test's database, a repository holding the
/// workflows, and the people: carol starts runs, dave is another member
/// of her organization, eve an admin of another one.
struct Fixture {
    app: Arc<App>,
    repo: tempfile::TempDir,
    carol: Principal,
    dave: Principal,
    eve: Principal,
}

impl Fixture {
    async fn new(db: &TestDb) -> Fixture {
        // Sandboxed processes run as another user when the tests run as
        // root: the run directories under the data directory must be
        // reachable.
        std::fs::set_permissions(
            db.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        let app = App::open(config(db)).await.unwrap();
        let admin = app
            .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
            .await
            .unwrap();
        for name in ["carol", "dave"] {
            app.users().add(&admin, name, Role::Member).await.unwrap();
        }
        let orgs = app.store().organizations();
        orgs.create("acme", "Acme").await.unwrap();
        orgs.add_user("acme", "eve", smithers_store::Role::Admin)
            .await
            .unwrap();
        let carol = app
            .principal(DEFAULT_ORGANIZATION, "carol", Via::Cli)
            .await
            .unwrap();
        let dave = app
            .principal(DEFAULT_ORGANIZATION, "dave", Via::Cli)
            .await
            .unwrap();
        let eve = app.principal("acme", "eve", Via::Cli).await.unwrap();

        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("smithers.toml"), WORKFLOWS).unwrap();
        std::fs::create_dir(repo.path().join(".smithers")).unwrap();
        std::fs::write(repo.path().join(".smithers/policy"), POLICY).unwrap();
        git(repo.path(), &["init", "-q", "-b", "main"]);
        git(repo.path(), &["add", "-A"]);
        git(repo.path(), &["commit", "-q", "-m", "first"]);
        Fixture {
            app: Arc::new(app),
            repo,
            carol,
            dave,
            eve,
        }
    }

    /// Starts `workflow` as `who`.
    async fn start(&self, who: &Principal, workflow: &str) -> RunSummary {
        self.app
            .runs()
            .start(
                who,
                NewRun {
                    repo: self.repo.path(),
                    workflow,
                    trigger: "manual",
                    provider: None,
                    image: None,
                    roots: None,
                    pinned: None,
                },
            )
            .await
            .unwrap()
    }

    async fn logs(&self, id: &str) -> Vec<LogLine> {
        self.app.runs().logs(&self.dave, id, 0, 1000).await.unwrap()
    }

    async fn state(&self, id: &str) -> RunState {
        self.app.runs().summary(&self.dave, id).await.unwrap().state
    }

    /// Moves run `id` to `running` as carried out by the process `owner`.
    async fn carried_out_by(&self, id: &str, owner: &str) {
        self.app
            .engine()
            .runs
            .transition(
                id,
                &[smithers_store::RunState::Queued],
                smithers_store::RunState::Running,
                Some(owner),
                None,
                json!(null),
            )
            .await
            .unwrap();
    }
}

/// The log as text, one `[stream] text` line each, for failure messages.
fn text(lines: &[LogLine]) -> String {
    lines
        .iter()
        .map(|l| format!("[{:?}] {}\n", l.stream, l.text))
        .collect()
}

/// An owner mark of a process that is gone: this process's pid with
/// another start time (the pid reused since).
fn gone_owner() -> String {
    let me = smithers_sandbox::owner::current();
    let (process, _start) = me.rsplit_once(':').unwrap();
    let gone = format!("{process}:1");
    assert!(smithers_sandbox::owner::is_gone(&gone), "{gone}");
    gone
}

on_both_backends!(
    a_run_is_carried_out_and_shown_with_its_steps_and_log,
    |db| {
        let f = Fixture::new(db).await;
        let runs = f.app.runs();
        let started = f.start(&f.carol, "hello").await;
        assert_eq!(
            (
                started.workflow.as_str(),
                started.state,
                started.requested_by.as_str(),
                started.error.as_deref()
            ),
            ("hello", RunState::Queued, "carol", None)
        );
        let id = started.id.clone();
        // Unfinished: listed without `all`.
        let listed = runs.list(&f.dave, false, 10).await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&started));

        let done = runs
            .execute(&f.carol, &id, Execution::default())
            .await
            .unwrap();
        let lines = f.logs(&id).await;
        assert_eq!(done.state, RunState::Succeeded, "{}", text(&lines));
        assert_eq!(
            (done.id.as_str(), done.error.as_deref()),
            (id.as_str(), None)
        );

        // Shown to another member, with everything it did.
        let run = runs.show(&f.dave, &id).await.unwrap();
        assert_eq!(run.state, RunState::Succeeded);
        assert_eq!(
            (
                run.workflow.as_str(),
                run.trigger.as_str(),
                run.requested_by.as_str()
            ),
            ("hello", "manual", "carol")
        );
        let repo = std::fs::canonicalize(f.repo.path()).unwrap();
        assert_eq!(run.repository, repo.display().to_string());
        assert_eq!(
            (run.sandbox.provider.as_str(), run.sandbox.image.as_deref()),
            ("native", None)
        );
        assert_eq!(
            (
                run.policies.repository.as_str(),
                run.policies.organization_version
            ),
            (".smithers/policy", None)
        );
        let started_at = run.started_at.expect("started");
        let finished_at = run.finished_at.expect("finished");
        assert!(run.created_at <= started_at && started_at <= finished_at);
        assert_eq!(run.created_at, started.created_at);
        assert_eq!(
            run.purge.as_ref().unwrap()["clean"],
            true,
            "{:?}",
            run.purge
        );
        let steps: Vec<_> = run
            .steps
            .iter()
            .map(|s| {
                (
                    s.position,
                    s.id.as_str(),
                    s.kind.as_str(),
                    s.state,
                    s.attempts,
                    s.exit_code,
                    s.error.as_deref(),
                )
            })
            .collect();
        // A step's exit code tells why it failed; a succeeded one has none.
        assert_eq!(
            steps,
            [
                (0, "greet", "run", StepState::Succeeded, 1, None, None),
                (1, "again", "run", StepState::Succeeded, 1, None, None),
            ]
        );
        assert_eq!(runs.steps(&f.carol, &id).await.unwrap(), run.steps);
        let calls: Vec<_> = run
            .tool_calls
            .iter()
            .map(|c| {
                (
                    c.position,
                    c.tool.as_str(),
                    c.subject.as_str(),
                    c.state,
                    c.ok,
                )
            })
            .collect();
        assert_eq!(
            calls,
            [
                (
                    0,
                    "run_command",
                    "workflow",
                    ToolCallState::Completed,
                    Some(true)
                ),
                (
                    1,
                    "run_command",
                    "workflow",
                    ToolCallState::Completed,
                    Some(true)
                ),
            ]
        );
        assert!(run.approvals.is_empty() && run.model_turns.is_empty());

        // The log: numbered from 1 without gaps, each command's output under
        // its step, in order.
        let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, (1..=lines.len() as u64).collect::<Vec<_>>());
        let output: Vec<_> = lines
            .iter()
            .filter(|l| l.stream == LogStream::Stdout)
            .map(|l| (l.position, l.text.as_str()))
            .collect();
        assert_eq!(
            output,
            [(Some(0), "hi"), (Some(1), "there")],
            "{}",
            text(&lines)
        );
        assert!(
            lines.iter().any(|l| l.stream == LogStream::Smithers),
            "{}",
            text(&lines)
        );
        assert!(lines.windows(2).all(|w| w[0].at <= w[1].at));
        // Paged: after line N, at most `limit`.
        assert!(lines.len() > 3, "{}", text(&lines));
        assert_eq!(runs.logs(&f.carol, &id, 0, 2).await.unwrap(), lines[..2]);
        assert_eq!(runs.logs(&f.carol, &id, 2, 1000).await.unwrap(), lines[2..]);
        assert_eq!(runs.logs(&f.carol, &id, 1, 2).await.unwrap(), lines[1..3]);
        let last = lines.len() as u64;
        assert!(
            runs.logs(&f.carol, &id, last, 1000)
                .await
                .unwrap()
                .is_empty()
        );

        // Finished: listed only with `all`, newest first, at most `limit`.
        let summary = runs.summary(&f.carol, &id).await.unwrap();
        assert_eq!(summary, done);
        assert!(runs.list(&f.carol, false, 10).await.unwrap().is_empty());
        assert_eq!(
            runs.list(&f.carol, true, 10).await.unwrap(),
            std::slice::from_ref(&done)
        );
        let newer = f.start(&f.carol, "hello").await;
        assert_eq!(
            runs.list(&f.carol, false, 10).await.unwrap(),
            std::slice::from_ref(&newer)
        );
        assert_eq!(
            runs.list(&f.carol, true, 10).await.unwrap(),
            [newer.clone(), done.clone()]
        );
        assert_eq!(runs.list(&f.carol, true, 1).await.unwrap(), [newer]);

        // A finished run is not cancelled, and carrying it out again changes
        // nothing.
        let e = runs.cancel(&f.dave, &id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
        let again = runs
            .execute(&f.carol, &id, Execution::default())
            .await
            .unwrap();
        assert_eq!(again, done);
        assert_eq!(f.logs(&id).await, lines);

        // A failing command fails its step with its exit code, and the run.
        let broken = f.start(&f.carol, "broken").await.id;
        let failed = runs
            .execute(&f.carol, &broken, Execution::default())
            .await
            .unwrap();
        let lines = f.logs(&broken).await;
        assert_eq!(failed.state, RunState::Failed, "{}", text(&lines));
        let error = failed.error.unwrap_or_default();
        assert!(error.contains("step fail failed"), "{error}");
        let steps = runs.steps(&f.dave, &broken).await.unwrap();
        let steps: Vec<_> = steps
            .iter()
            .map(|s| (s.id.as_str(), s.state, s.exit_code, s.error.as_deref()))
            .collect();
        assert_eq!(
            steps,
            [
                (
                    "fail",
                    StepState::Failed,
                    Some(3),
                    Some("`exit 3` exited 3")
                ),
                (
                    "never",
                    StepState::Skipped,
                    None,
                    Some("an earlier step failed")
                ),
            ],
            "{}",
            text(&lines)
        );
    }
);

on_both_backends!(another_organization_is_told_nothing_of_a_run, |db| {
    let f = Fixture::new(db).await;
    let runs = f.app.runs();
    let id = f.start(&f.carol, "hello").await.id;
    let launcher = Recorder::default();

    // Each refusal is the one for a run that does not exist.
    let unknown = "0190f2c4-0000-7000-8000-000000000000";
    let like_unknown = |e: Error, what: &str| {
        assert_eq!(e.kind, ErrorKind::NotFound, "{what}: {e}");
        assert!(!e.message.contains(DEFAULT_ORGANIZATION), "{what}: {e}");
        e.message.replace(&id, "ID").replace(unknown, "ID")
    };
    for run in [id.as_str(), unknown] {
        let mut told = vec![
            like_unknown(runs.show(&f.eve, run).await.unwrap_err(), "show"),
            like_unknown(runs.summary(&f.eve, run).await.unwrap_err(), "summary"),
            like_unknown(runs.steps(&f.eve, run).await.unwrap_err(), "steps"),
            like_unknown(runs.logs(&f.eve, run, 0, 10).await.unwrap_err(), "logs"),
            like_unknown(runs.cancel(&f.eve, run).await.unwrap_err(), "cancel"),
            like_unknown(
                runs.execute(&f.eve, run, Execution::default())
                    .await
                    .unwrap_err(),
                "execute",
            ),
            like_unknown(
                runs.launch(&f.eve, run, &launcher).await.unwrap_err(),
                "launch",
            ),
            like_unknown(
                f.app
                    .approvals()
                    .of_run(&f.eve, run, false)
                    .await
                    .unwrap_err(),
                "approvals of the run",
            ),
        ];
        told.dedup();
        assert_eq!(told, ["no run ID in acme"], "{run}");
    }
    assert!(runs.list(&f.eve, true, 100).await.unwrap().is_empty());
    assert!(launcher.asked().is_empty());

    // The run is as it was, and nothing was carried out.
    let run = runs.show(&f.carol, &id).await.unwrap();
    assert_eq!(run.state, RunState::Queued);
    assert!(run.steps.iter().all(|s| s.state == StepState::Pending));
    assert!(run.tool_calls.is_empty());
    assert!(f.logs(&id).await.is_empty());
});

/// Starts run `id` being carried out in a task of its own, as `who`.
fn execute_in_background(
    f: &Fixture,
    who: &Principal,
    id: &str,
) -> tokio::task::JoinHandle<Result<RunSummary, Error>> {
    let app = f.app.clone();
    let who = who.clone();
    let id = id.to_string();
    tokio::spawn(async move { app.runs().execute(&who, &id, Execution::default()).await })
}

/// Waits, woken by the run's changes only (the fallback is longer than the
/// limit), until the run is in a state `until` accepts; returns it.
async fn woken_until(
    f: &Fixture,
    changes: &mut smithers_store::RunChanges,
    id: &str,
    what: &str,
    until: impl Fn(RunState) -> bool,
) -> RunState {
    let wait = async {
        loop {
            let state = f.state(id).await;
            if until(state) {
                return state;
            }
            changes.changed().await;
        }
    };
    match tokio::time::timeout(WITHIN, wait).await {
        Ok(state) => state,
        Err(_) => panic!(
            "not woken for {what} within {WITHIN:?} (the fallback is {FALLBACK:?})\n{}",
            text(&f.logs(id).await)
        ),
    }
}

/// Starts a run of `gated` as carol in the background and waits, woken,
/// until it waits for a human; the run's id, the task and the follower.
async fn waiting_for_a_human(
    f: &Fixture,
) -> (
    String,
    tokio::task::JoinHandle<Result<RunSummary, Error>>,
    smithers_store::RunChanges,
) {
    let id = f.start(&f.carol, "gated").await.id;
    let mut changes = f.app.store().run_changes(&id, FALLBACK);
    let executing = execute_in_background(f, &f.carol, &id);
    let state = woken_until(f, &mut changes, &id, "the approval to be asked", |s| {
        s == RunState::WaitingApproval || s.is_finished()
    })
    .await;
    assert_eq!(
        state,
        RunState::WaitingApproval,
        "{}",
        text(&f.logs(&id).await)
    );
    (id, executing, changes)
}

/// The single approval run `id` waits for, checked as the service shows
/// it; its id.
async fn the_pending_approval(f: &Fixture, id: &str) -> String {
    let pending = f.app.approvals().of_run(&f.dave, id, true).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let a = &pending[0];
    assert_eq!(
        (
            a.run.as_str(),
            a.workflow.as_str(),
            a.position,
            a.kind,
            a.state,
            a.requested_by.as_str(),
            a.admin_only
        ),
        (
            id,
            "gated",
            0,
            ApprovalKind::Step,
            ApprovalState::Pending,
            "carol",
            false
        )
    );
    assert!(a.summary.contains("greet"), "{a:?}");
    assert_eq!(
        f.app.runs().show(&f.dave, id).await.unwrap().approvals,
        pending
    );
    // The run's starter may not decide; nor may another organization see it.
    let e = f
        .app
        .approvals()
        .decide(&f.carol, &a.id, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    let e = f
        .app
        .approvals()
        .decide(&f.eve, &a.id, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(
        f.app.approvals().show(&f.dave, &a.id).await.unwrap().state,
        ApprovalState::Pending
    );
    assert_eq!(f.state(id).await, RunState::WaitingApproval);
    a.id.clone()
}

on_both_backends!(
    a_step_waiting_for_a_human_runs_once_another_user_approves,
    |db| {
        let f = Fixture::new(db).await;
        let (id, executing, mut changes) = waiting_for_a_human(&f).await;
        let approval = the_pending_approval(&f, &id).await;
        // Nothing ran before the decision.
        assert!(
            f.app
                .runs()
                .show(&f.dave, &id)
                .await
                .unwrap()
                .tool_calls
                .is_empty()
        );

        let decided = f
            .app
            .approvals()
            .decide(&f.dave, &approval, true, Some("go"))
            .await
            .unwrap();
        assert_eq!(
            (decided.state, decided.decided_by.as_deref()),
            (ApprovalState::Approved, Some("dave"))
        );
        // The follower is woken by the run's end too.
        let state = woken_until(
            &f,
            &mut changes,
            &id,
            "the run to end",
            RunState::is_finished,
        )
        .await;
        assert_eq!(state, RunState::Succeeded, "{}", text(&f.logs(&id).await));
        let done = tokio::time::timeout(WITHIN, executing)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(done.state, RunState::Succeeded);

        let run = f.app.runs().show(&f.dave, &id).await.unwrap();
        assert_eq!(run.steps[0].state, StepState::Succeeded);
        assert_eq!(run.approvals.len(), 1);
        assert_eq!(
            (
                run.approvals[0].state,
                run.approvals[0].decided_by.as_deref(),
                run.approvals[0].comment.as_deref()
            ),
            (ApprovalState::Approved, Some("dave"), Some("go"))
        );
        let lines = f.logs(&id).await;
        assert!(
            lines
                .iter()
                .any(|l| l.stream == LogStream::Stdout && l.text == "hi"),
            "{}",
            text(&lines)
        );
        assert!(
            f.app
                .approvals()
                .of_run(&f.dave, &id, true)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

on_both_backends!(
    a_step_approved_while_nobody_carries_the_run_out_runs_when_resumed,
    |db| {
        let f = Fixture::new(db).await;
        let (id, executing, _changes) = waiting_for_a_human(&f).await;
        let approval = the_pending_approval(&f, &id).await;
        // The process carrying it out stops (a server's SIGTERM drops the
        // task where it waits), then a person approves.
        executing.abort();
        assert!(executing.await.unwrap_err().is_cancelled());
        f.app
            .approvals()
            .decide(&f.dave, &approval, true, None)
            .await
            .unwrap();
        assert_eq!(f.state(&id).await, RunState::WaitingApproval);
        // Carried on, the run takes the decision up and finishes.
        let done = tokio::time::timeout(
            WITHIN,
            f.app.runs().execute(&f.carol, &id, Execution::default()),
        )
        .await
        .unwrap()
        .unwrap();
        let lines = f.logs(&id).await;
        assert_eq!(done.state, RunState::Succeeded, "{}", text(&lines));
        assert!(
            lines
                .iter()
                .any(|l| l.stream == LogStream::Stdout && l.text == "hi"),
            "{}",
            text(&lines)
        );
    }
);

on_both_backends!(a_rejected_step_fails_the_run_with_the_reason, |db| {
    let f = Fixture::new(db).await;
    let (id, executing, mut changes) = waiting_for_a_human(&f).await;
    let approval = the_pending_approval(&f, &id).await;

    // A rejection needs a reason.
    let e = f
        .app
        .approvals()
        .decide(&f.dave, &approval, false, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert_eq!(f.state(&id).await, RunState::WaitingApproval);
    let decided = f
        .app
        .approvals()
        .decide(&f.dave, &approval, false, Some("not on a Friday"))
        .await
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Rejected);

    let state = woken_until(
        &f,
        &mut changes,
        &id,
        "the run to end",
        RunState::is_finished,
    )
    .await;
    assert_eq!(state, RunState::Failed, "{}", text(&f.logs(&id).await));
    let done = tokio::time::timeout(WITHIN, executing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.state, RunState::Failed);
    let error = done.error.unwrap_or_default();
    assert!(error.contains("not on a Friday"), "{error}");

    let run = f.app.runs().show(&f.dave, &id).await.unwrap();
    assert_eq!(run.steps[0].state, StepState::Failed);
    let step_error = run.steps[0].error.clone().unwrap_or_default();
    assert!(step_error.contains("not on a Friday"), "{step_error}");
    // The command never ran.
    assert!(run.tool_calls.is_empty(), "{:?}", run.tool_calls);
    let lines = f.logs(&id).await;
    assert!(
        !lines.iter().any(|l| l.stream == LogStream::Stdout),
        "{}",
        text(&lines)
    );
});

/// Takes the wake-ups a new follower gets while it starts listening to
/// other processes, until none comes for a second.
async fn settled(changes: &mut smithers_store::RunChanges) {
    for _ in 0..30 {
        if tokio::time::timeout(Duration::from_secs(1), changes.changed())
            .await
            .is_err()
        {
            return;
        }
    }
    panic!("a follower of a run nobody changes is woken again and again");
}

on_both_backends!(another_process_sees_a_runs_changes_at_once, |db| {
    let f = Fixture::new(db).await;
    let id = f.start(&f.carol, "hello").await.id;
    // Another process on the same database: the same data directory, the
    // same URL.
    let other = App::open(config(db)).await.unwrap();
    let carol = other
        .principal(DEFAULT_ORGANIZATION, "carol", Via::Cli)
        .await
        .unwrap();
    let mut changes = other.store().run_changes(&id, FALLBACK);
    settled(&mut changes).await;

    // A line of its log, written by the first.
    f.app
        .engine()
        .runs
        .log(
            &id,
            None,
            smithers_store::LogStream::Smithers,
            "written elsewhere",
        )
        .await
        .unwrap();
    tokio::time::timeout(WITHIN, changes.changed())
        .await
        .expect("the other process is woken by the log line, long before its fallback");
    let lines = other.runs().logs(&carol, &id, 0, 10).await.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["written elsewhere"]
    );
    settled(&mut changes).await;

    // Its cancel, by the first.
    f.app.runs().cancel(&f.dave, &id).await.unwrap();
    tokio::time::timeout(WITHIN, changes.changed())
        .await
        .expect("the other process is woken by the cancel, long before its fallback");
    assert_eq!(
        other.runs().summary(&carol, &id).await.unwrap().state,
        RunState::Cancelled
    );
    other.close().await;
});

on_both_backends!(a_run_nobody_carries_out_is_cancelled_once, |db| {
    let f = Fixture::new(db).await;
    let runs = f.app.runs();
    let id = f.start(&f.carol, "hello").await.id;
    // Any member may cancel; nobody carries the run out, so it is closed
    // here.
    let cancelled = runs.cancel(&f.dave, &id).await.unwrap();
    assert_eq!(
        cancelled,
        Cancelled {
            id: id.clone(),
            state: RunState::Cancelled,
            stopped_by_its_process: false,
        }
    );
    let summary = runs.summary(&f.carol, &id).await.unwrap();
    assert_eq!(
        (summary.state, summary.error.as_deref()),
        (RunState::Cancelled, Some("cancelled by dave"))
    );
    let steps = runs.steps(&f.carol, &id).await.unwrap();
    assert!(
        steps.iter().all(|s| s.state == StepState::Cancelled),
        "{steps:?}"
    );
    assert!(runs.list(&f.carol, false, 10).await.unwrap().is_empty());

    // Once: a second cancel is a conflict and changes nothing.
    let e = runs.cancel(&f.carol, &id).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    let again = runs.summary(&f.carol, &id).await.unwrap();
    assert_eq!(again, summary);

    // Carrying it out now does nothing.
    let done = runs
        .execute(&f.carol, &id, Execution::default())
        .await
        .unwrap();
    assert_eq!(done, summary);
    let run = runs.show(&f.carol, &id).await.unwrap();
    assert!(run.tool_calls.is_empty() && run.started_at.is_none());
    assert!(run.steps.iter().all(|s| s.state == StepState::Cancelled));
});

/// A launcher that records what it was asked to carry out, and starts
/// nothing.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<(String, String)>>,
}

impl Recorder {
    /// (who asked, which run), in order.
    fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap().clone()
    }
}

impl RunLauncher for Recorder {
    fn launch<'a>(
        &'a self,
        principal: &'a Principal,
        run: &'a RunSummary,
    ) -> BoxFuture<'a, Result<Launched, Error>> {
        Box::pin(async move {
            self.asked
                .lock()
                .unwrap()
                .push((principal.user.clone(), run.id.clone()));
            Ok(Launched {
                id: run.id.clone(),
                state: run.state,
                output: Some(format!("/logs/{}", run.id)),
            })
        })
    }
}

on_both_backends!(what_a_killed_process_left_is_handed_to_the_launcher, |db| {
    let f = Fixture::new(db).await;
    let runs = f.app.runs();
    // Not started by anyone: queued, not interrupted.
    let queued = f.start(&f.carol, "hello").await.id;
    // Carried out by this process, which lives.
    let live = f.start(&f.carol, "hello").await.id;
    f.carried_out_by(&live, &smithers_sandbox::owner::current())
        .await;
    // Finished.
    let finished = f.start(&f.carol, "hello").await.id;
    runs.cancel(&f.carol, &finished).await.unwrap();
    // Left by a killed process: mid-step, and waiting for a human.
    let lost = f.start(&f.carol, "hello").await.id;
    f.carried_out_by(&lost, &gone_owner()).await;
    let lost_waiting = f.start(&f.carol, "gated").await.id;
    f.carried_out_by(&lost_waiting, &gone_owner()).await;
    f.app
        .engine()
        .runs
        .transition(
            &lost_waiting,
            &[smithers_store::RunState::Running],
            smithers_store::RunState::WaitingApproval,
            None,
            None,
            json!(null),
        )
        .await
        .unwrap();
    // Another organization's, left by a killed process too.
    let theirs = f.start(&f.eve, "hello").await.id;
    f.carried_out_by(&theirs, &gone_owner()).await;

    let launcher = Recorder::default();
    let launched = runs.resume_interrupted(&f.dave, &launcher).await.unwrap();
    let mut asked = launcher.asked();
    asked.sort();
    let mut expected = vec![
        ("dave".to_string(), lost.clone()),
        ("dave".to_string(), lost_waiting.clone()),
    ];
    expected.sort();
    assert_eq!(asked, expected);
    let mut got: Vec<_> = launched
        .iter()
        .map(|(run, l)| {
            assert_eq!(
                (&l.id, l.state, l.output.clone()),
                (&run.id, run.state, Some(format!("/logs/{}", run.id)))
            );
            (run.id.clone(), run.state, run.requested_by.clone())
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (lost.clone(), RunState::Running, "carol".to_string()),
        (
            lost_waiting.clone(),
            RunState::WaitingApproval,
            "carol".to_string(),
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, expected);
    // Launching changes nothing by itself.
    assert_eq!(f.state(&lost).await, RunState::Running);
    assert_eq!(f.state(&queued).await, RunState::Queued);
    assert_eq!(f.state(&live).await, RunState::Running);

    // The other organization's resume hands over its own run only.
    let theirs_launcher = Recorder::default();
    let launched = runs
        .resume_interrupted(&f.eve, &theirs_launcher)
        .await
        .unwrap();
    assert_eq!(launched.len(), 1);
    assert_eq!(theirs_launcher.asked(), [("eve".to_string(), theirs)]);

    // `launch` hands over the run it names, of the caller's organization.
    let launcher = Recorder::default();
    let l = runs.launch(&f.carol, &queued, &launcher).await.unwrap();
    assert_eq!(
        (l.id.as_str(), l.state),
        (queued.as_str(), RunState::Queued)
    );
    assert_eq!(launcher.asked(), [("carol".to_string(), queued)]);
});

on_both_backends!(a_suspended_installations_runs_stay_paused, |db| {
    use smithers_store::{InstallationChange, InstallationRef, NewGithubRun};
    let f = Fixture::new(db).await;
    let store = f.app.store();
    let installation = InstallationRef {
        id: 42,
        account_login: "acme".into(),
        account_id: 900,
        account_type: "Organization".into(),
        permissions: json!({"contents": "write"}),
        repository_selection: "all".into(),
    };
    change(&f, InstallationChange::Created(installation, Vec::new())).await;
    // The App's run and a run of somebody's, both left by a killed
    // process.
    let github = f.start(&f.carol, "hello").await.id;
    f.carried_out_by(&github, &gone_owner()).await;
    store
        .github()
        .record_run(NewGithubRun {
            run_id: &github,
            organization_id: DEFAULT_ORGANIZATION,
            installation_id: 42,
            repository_id: 7,
            repository: "acme/api",
            pull_number: Some(1),
            head_sha: "0123456789abcdef0123456789abcdef01234567",
            workflow: "hello",
            delivery: "d-2",
            result_base: "fix",
            from_fork: false,
        })
        .await
        .unwrap();
    let theirs = f.start(&f.carol, "hello").await.id;
    f.carried_out_by(&theirs, &gone_owner()).await;

    change(&f, InstallationChange::Suspended(42)).await;
    assert_eq!(
        store.github().paused_runs().await.unwrap(),
        std::slice::from_ref(&github)
    );
    let launcher = Recorder::default();
    runs_resumed(&f, &launcher).await;
    assert_eq!(launcher.asked(), [("dave".to_string(), theirs.clone())]);
    // Nor does anyone carry it on by hand.
    let runs = f.app.runs();
    for refused in [
        runs.launch(&f.carol, &github, &launcher).await.unwrap_err(),
        runs.execute(&f.carol, &github, Execution::default())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.kind, smithers_api::ErrorKind::Conflict);
        assert!(refused.message.contains("is paused"), "{}", refused.message);
    }
    assert_eq!(launcher.asked().len(), 1);

    change(&f, InstallationChange::Unsuspended(42)).await;
    assert!(store.github().paused_runs().await.unwrap().is_empty());
    let launcher = Recorder::default();
    runs_resumed(&f, &launcher).await;
    let mut asked = launcher.asked();
    asked.sort();
    let mut expected = vec![("dave".to_string(), github), ("dave".to_string(), theirs)];
    expected.sort();
    assert_eq!(asked, expected);
});

/// Applies what an `installation` event says.
async fn change(f: &Fixture, change: smithers_store::InstallationChange) {
    let cause = smithers_store::Cause {
        delivery: "d-1",
        sender: Some("octocat"),
    };
    f.app
        .store()
        .github()
        .apply(f.app.signer(), DEFAULT_ORGANIZATION, &change, cause)
        .await
        .unwrap();
}

/// What `resume_interrupted` hands `launcher`, as dave.
async fn runs_resumed(f: &Fixture, launcher: &Recorder) {
    f.app
        .runs()
        .resume_interrupted(&f.dave, launcher)
        .await
        .unwrap();
}

on_both_backends!(pausing_needs_a_launcher_that_can_stop_the_run, |db| {
    let f = Fixture::new(db).await;
    let runs = f.app.runs();
    let id = f.start(&f.carol, "hello").await.id;
    // The command line's launcher hands runs to processes of their own:
    // it cannot pause them, and nothing is recorded.
    let refused = runs
        .pause(&f.dave, &id, &Recorder::default(), "a test")
        .await
        .unwrap_err();
    assert_eq!(refused.kind, smithers_api::ErrorKind::Unavailable);
    let paused = smithers_test_support::audit::all_events(f.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "run.paused")
        .count();
    assert_eq!(paused, 0);
    // A finished run is left as it is.
    runs.cancel(&f.carol, &id).await.unwrap();
    assert_eq!(
        runs.pause(&f.dave, &id, &Recorder::default(), "a test")
            .await
            .unwrap(),
        None
    );
});
