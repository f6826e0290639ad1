#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Runs pinned to commits, as a pull request's are: the workflow, policy
//! and scripts come from one commit (the default branch), the workspace
//! from another (the pull request's head), so the code under test cannot
//! rewrite the rules it is judged by; a run whose secrets are withheld
//! fails the step that needs them, saying why.

use smithers_engine::run::{Definition, Pinned, StartRun};
use smithers_store::RunState;
use smithers_test_support::engine::Fixture;
use smithers_test_support::git::git;

const HELPER: &str = env!("CARGO_BIN_EXE_smithers-engine-sandbox-helper");

/// The default branch's rules: the check runs the repository's test.
const RULES: &str = r#"
[workflows.check]
on = ["pull_request.opened", "manual"]
timeout = "5m"

[[workflows.check.steps]]
id = "test"
run = "sh test.sh"

[workflows.objects]
on = ["manual"]
timeout = "5m"

[[workflows.objects.steps]]
id = "list"
run = "git cat-file --batch-all-objects --batch-check"

[workflows.deploy]
on = ["manual"]
secrets = [{ name = "API_TOKEN", env = "dev" }]
timeout = "5m"

[[workflows.deploy.steps]]
id = "use"
run = "test -n \"$API_TOKEN\""
"#;

/// What a pull request would like the rules to be.
const FORGED: &str = r#"
[workflows.check]
on = ["pull_request.opened"]
timeout = "5m"

[[workflows.check.steps]]
id = "test"
run = "echo rules-from-the-pull-request"
"#;

/// The fixture, with a pull request's commit on branch `pr`: it fixes the
/// answer and rewrites `smithers.toml`. Answers (default branch's commit,
/// the pull request's).
async fn fixture() -> (Fixture, String, String) {
    let f = Fixture::new(HELPER, &[("smithers.toml", RULES)]).await;
    let repo = f.repo();
    let main = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "-b", "pr"]);
    std::fs::write(repo.join("src/answer.txt"), "42\n").unwrap();
    std::fs::write(repo.join("smithers.toml"), FORGED).unwrap();
    git(
        &repo,
        &["commit", "-q", "-am", "fix the answer, and the rules"],
    );
    let head = git(&repo, &["rev-parse", "HEAD"]);
    // Back on main: the working tree holds the default branch.
    git(&repo, &["checkout", "-q", "main"]);
    (f, main, head)
}

async fn start(
    f: &Fixture,
    workflow: &str,
    pinned: Pinned<'_>,
) -> Result<smithers_store::Run, smithers_engine::Error> {
    f.engine
        .start(StartRun {
            organization_id: "local",
            requested_by: "alice",
            repo: &f.repo(),
            workflow,
            trigger: "pull_request.opened",
            provider: None,
            image: None,
            pinned: Some(pinned),
        })
        .await
}

async fn log_text(f: &Fixture, run: &str) -> String {
    f.engine
        .runs
        .logs(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_come_from_one_commit_and_the_code_from_another() {
    let (f, main, head) = fixture().await;
    let run = start(
        &f,
        "check",
        Pinned {
            rules: &main,
            code: &head,
            secrets_withheld: None,
        },
    )
    .await
    .unwrap();
    let definition = Definition::from_json(&run.definition).unwrap();
    assert_eq!(definition.file, RULES, "the default branch's workflow file");
    assert_eq!(definition.base, head, "the pull request's code");
    let (ended, _) = f.execute_deciding(&f.provider, &run.id, true).await;
    let log = log_text(&f, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{log}");
    assert!(
        log.contains("ok"),
        "the pull request's fix was tested: {log}"
    );
    assert!(!log.contains("rules-from-the-pull-request"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_secrets_fail_the_step_that_needs_them() {
    let (f, main, head) = fixture().await;
    let run = start(
        &f,
        "deploy",
        Pinned {
            rules: &main,
            code: &head,
            secrets_withheld: Some("the pull request comes from a fork"),
        },
    )
    .await
    .unwrap();
    let ended = f.engine.execute(&f.provider, &run.id).await.unwrap();
    assert_eq!(ended.state, RunState::Failed);
    let error = ended.error.unwrap_or_default();
    assert!(
        error.contains("this run gets none: the pull request comes from a fork"),
        "{error}"
    );
    // No grant was even asked for.
    assert!(
        f.engine
            .runs
            .approvals("local", true, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_the_repository_lacks_are_refused() {
    let (f, main, _) = fixture().await;
    for bad in [
        "0123456789012345678901234567890123456789",
        "--output=/tmp/x",
        "main:smithers.toml",
    ] {
        let err = start(
            &f,
            "check",
            Pinned {
                rules: &main,
                code: bad,
                secrets_withheld: None,
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("is not a commit"), "{bad}: {err}");
    }
    // A workflow the default branch does not have, though the pull
    // request might add it, is not found.
    let err = start(
        &f,
        "added-by-the-pull-request",
        Pinned {
            rules: &main,
            code: &main,
            secrets_withheld: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("added-by-the-pull-request"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_holds_only_what_its_commit_reaches() {
    let (f, main, head) = fixture().await;
    let run = start(
        &f,
        "objects",
        Pinned {
            rules: &main,
            code: &main,
            secrets_withheld: None,
        },
    )
    .await
    .unwrap();
    let (ended, _) = f.execute_deciding(&f.provider, &run.id, true).await;
    let log = log_text(&f, &run.id).await;
    assert_eq!(ended.state, RunState::Succeeded, "{log}");
    assert!(log.contains(&main), "the commit itself is there: {log}");
    assert!(
        !log.contains(&head),
        "another branch's commit is not in the sandbox: {log}"
    );
}
