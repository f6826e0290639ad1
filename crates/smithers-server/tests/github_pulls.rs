#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Pull requests start runs, end to end on the GitHub stand-in with real
//! git and native sandboxes, on both backends: the run follows the
//! default branch's workflow and policy (a pull request that rewrites
//! them is judged by the originals) and tests the pull request's head;
//! its status goes pending, then success or failure, linking to the run;
//! a delivery sent twice starts one run; a newer push supersedes the run
//! of the older head; a fork's pull request gets no secrets; no token
//! ends up in the store, the run's log or the audit log.

mod common;

use std::time::Duration;

use common::github::{GithubFixture, PUBLIC_URL, actions, github_fixture, processed};
use smithers_github::ForkSecrets;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::audit::all_events;
use smithers_test_support::github::{Chaos, CommitStatus, MergeMethod, Pull};
use smithers_test_support::{TestDb, on_both_backends};

/// The default branch's rules.
const WORKFLOWS: &str = r#"
[workflows.check]
on = ["pull_request.opened", "pull_request.synchronize", "pull_request.reopened"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.check.steps]]
id = "test"
run = "sh test.sh"

[workflows.deploy]
on = ["pull_request.opened"]
timeout = "5m"
policy = ".smithers/policy"
secrets = [{ name = "DEPLOY_KEY", env = "prod" }]

[[workflows.deploy.steps]]
id = "deploy"
run = "sh deploy.sh"
"#;

const POLICY: &str = "workflow run_command \"sh *\" -> allow\n";

/// What a pull request would like the rules to be.
const FORGED: &str = r#"
[workflows.check]
on = ["pull_request.opened", "pull_request.synchronize"]
timeout = "5m"

[[workflows.check.steps]]
id = "test"
run = "echo rules-of-the-pull-request"
"#;

/// Passes when the answer is 42; takes a while when `slow` exists.
const TEST_SH: &str =
    "if [ -e slow ]; then sleep 20; fi\ntest \"$(cat answer.txt)\" = 42 && echo answer-is-right\n";

/// The stand-in's org `acme` with the App installed (its installation
/// created on the server) and repository `acme/api` whose default branch
/// holds the rules; the repository's id.
async fn repository(f: &GithubFixture, workflows: &str) -> u64 {
    let installation = f.api.add_installation(
        "acme",
        "Organization",
        &[
            ("contents", "write"),
            ("pull_requests", "write"),
            ("statuses", "write"),
        ],
    );
    let repo = f
        .api
        .add_repository(installation, "acme", "api", "main", true);
    f.api.commit(
        repo,
        "main",
        &[
            ("smithers.toml", workflows),
            (".smithers/policy", POLICY),
            ("test.sh", TEST_SH),
            ("deploy.sh", "test -n \"$DEPLOY_KEY\" && echo deployed\n"),
            ("answer.txt", "41\n"),
        ],
        "the rules",
    );
    f.api.installation_created(installation).await;
    processed(&f.app).await;
    repo
}

/// The statuses of `sha` with `context`, oldest first.
fn statuses(f: &GithubFixture, sha: &str, context: &str) -> Vec<CommitStatus> {
    f.api
        .statuses()
        .into_iter()
        .filter(|s| s.sha == sha && s.context == context)
        .collect()
}

/// Waits until `sha` has a status of `context` in `state`.
async fn status_reaches(f: &GithubFixture, sha: &str, context: &str, state: &str) -> CommitStatus {
    for _ in 0..600 {
        if let Some(s) = statuses(f, sha, context)
            .into_iter()
            .find(|s| s.state == state)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{context} on {sha} never became {state}: {:?}\n{}",
        statuses(f, sha, context),
        what_happened(f).await
    );
}

fn run_id_of(status: &CommitStatus) -> String {
    status
        .target_url
        .as_deref()
        .and_then(|u| u.strip_prefix(&format!("{PUBLIC_URL}/runs/")))
        .expect("the status links to the run")
        .to_string()
}

async fn log_of(f: &GithubFixture, run: &str) -> String {
    f.app
        .engine()
        .runs
        .logs(run, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// No token the stand-in minted is in the audit log's export, the run
/// logs, the server's log or any row of the database.
async fn no_token_anywhere(f: &GithubFixture, db: &TestDb, runs: &[String]) {
    let tokens = f.api.tokens_issued();
    assert!(!tokens.is_empty());
    let admin = common::github::admin(&f.app).await;
    let mut export = f.app.audit().export(&admin, 0).await.unwrap();
    let mut audit = String::new();
    while let Some(page) = export.next_page().await.unwrap() {
        for line in page {
            audit.push_str(&serde_json::to_string(&line).unwrap());
            audit.push('\n');
        }
    }
    assert!(audit.contains("github.repository_fetched"), "{audit}");
    let mut logs = String::new();
    for run in runs {
        logs.push_str(&log_of(f, run).await);
    }
    let server_log = common::github::server_log();
    assert!(!server_log.is_empty());
    let database = common::github::database_text(&f.app, db).await;
    assert!(database.contains("github.delivery_received"));
    for token in &tokens {
        assert!(!audit.contains(token), "a token is in the audit export");
        assert!(!logs.contains(token), "a token is in a run's log");
        assert!(
            !server_log.contains(token),
            "a token is in the server's log"
        );
        assert!(!database.contains(token), "a token is in the database");
    }
}

on_both_backends!(a_pull_request_runs_under_the_default_branchs_rules, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    // The pull request fixes the answer — and rewrites the rules.
    let head = f.api.commit(
        repo,
        "fix",
        &[
            ("answer.txt", "42\n"),
            ("smithers.toml", FORGED),
            (".smithers/policy", "workflow * * -> allow\n"),
        ],
        "fix the answer",
    );
    f.api.set_chaos(Chaos::Duplicate);
    f.api.open_pull_request(repo, "fix", "main", false).await;
    processed(&f.app).await;

    let pending = status_reaches(&f, &head, "smithers/check", "pending").await;
    let success = status_reaches(&f, &head, "smithers/check", "success").await;
    let run = run_id_of(&success);
    assert_eq!(run_id_of(&pending), run);
    assert!(
        success
            .description
            .as_deref()
            .unwrap_or("")
            .contains("Passed")
    );

    // One run of check however often the delivery came.
    let all = f
        .app
        .engine()
        .runs
        .find(
            DEFAULT_ORGANIZATION,
            &smithers_store::RunFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let checks: Vec<_> = all.iter().filter(|r| r.workflow == "check").collect();
    assert_eq!(checks.len(), 1, "the duplicated delivery started one run");
    let stored = f.app.engine().runs.get(&run).await.unwrap();
    assert_eq!(stored.trigger, "pull_request.opened");
    assert_eq!(stored.requested_by, "github");
    let definition = &stored.definition;
    assert_eq!(
        definition["file"], WORKFLOWS,
        "the default branch's workflow"
    );
    assert_eq!(definition["policy"], POLICY, "the default branch's policy");
    assert_eq!(definition["base"], head.as_str(), "the pull request's head");
    let log = log_of(&f, &run).await;
    assert!(log.contains("answer-is-right"), "{log}");
    assert!(!log.contains("rules-of-the-pull-request"), "{log}");

    let actions: Vec<String> = all_events(f.app.store())
        .await
        .into_iter()
        .map(|e| e.event.action)
        .collect();
    assert!(actions.iter().any(|a| a == "github.repository_fetched"));
    assert!(actions.iter().any(|a| a == "github.request"));

    let ids: Vec<String> = all.iter().map(|r| r.id.clone()).collect();
    no_token_anywhere(&f, db, &ids).await;
    f.api.assert_honest();
});

on_both_backends!(a_newer_push_supersedes_the_older_heads_run, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    let first = f.api.commit(
        repo,
        "fix",
        &[("answer.txt", "42\n"), ("slow", "")],
        "fix, slowly",
    );
    let number = f.api.open_pull_request(repo, "fix", "main", false).await;
    let pending = status_reaches(&f, &first, "smithers/check", "pending").await;
    let second = f
        .api
        .push_to_pull_request(repo, number, &[("slow", "no longer")], "still slow")
        .await;
    let superseded = status_reaches(&f, &first, "smithers/check", "error").await;
    assert!(
        superseded
            .description
            .as_deref()
            .unwrap_or("")
            .contains("Superseded by a newer push"),
        "{superseded:?}"
    );
    let old_run = f.app.engine().runs.get(&run_id_of(&pending)).await.unwrap();
    assert_eq!(old_run.state, smithers_store::RunState::Cancelled);
    let newer = status_reaches(&f, &second, "smithers/check", "pending").await;
    assert_ne!(run_id_of(&newer), old_run.id);
    f.api.assert_honest();
});

on_both_backends!(a_forks_pull_request_gets_no_secrets, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    let head = f
        .api
        .commit(repo, "contrib", &[("answer.txt", "42\n")], "a contribution");
    f.api.open_pull_request(repo, "contrib", "main", true).await;
    let failed = status_reaches(&f, &head, "smithers/deploy", "failure").await;
    let run = f.app.engine().runs.get(&run_id_of(&failed)).await.unwrap();
    let error = run.error.unwrap_or_default();
    assert!(error.contains("comes from a fork"), "{error}");
    // The check, which needs no secret, still runs and passes.
    status_reaches(&f, &head, "smithers/check", "success").await;
    // No grant was asked for.
    assert!(
        f.app
            .engine()
            .runs
            .approvals(DEFAULT_ORGANIZATION, true, 100)
            .await
            .unwrap()
            .is_empty()
    );
    f.api.assert_honest();
});

on_both_backends!(a_suspended_installation_starts_nothing, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    installation_event(&f, "suspend").await;
    f.api.commit(repo, "fix", &[("answer.txt", "42\n")], "fix");
    f.api.open_pull_request(repo, "fix", "main", false).await;
    processed(&f.app).await;
    let deliveries = f
        .app
        .store()
        .github()
        .recent_deliveries(DEFAULT_ORGANIZATION, 10)
        .await
        .unwrap();
    let pull = deliveries
        .iter()
        .find(|d| d.event == "pull_request")
        .unwrap();
    assert_eq!(pull.outcome.as_deref(), Some("ignored"));
    assert_eq!(
        pull.detail.as_deref(),
        Some("the installation is suspended")
    );
    assert!(f.api.statuses().is_empty());
});

/// Delivers an `installation` event of `action` (`suspend`, `unsuspend`)
/// for the organization's installation, as GitHub sends it, and waits
/// until it is carried out.
async fn installation_event(f: &GithubFixture, action: &str) {
    let id = f
        .app
        .store()
        .github()
        .installations(DEFAULT_ORGANIZATION)
        .await
        .unwrap()[0]
        .id;
    common::github::installation_event(f, id as u64, action).await;
    processed(&f.app).await;
}

/// The detail of the newest delivery of `event`.
async fn delivery_detail(f: &GithubFixture, event: &str) -> Option<String> {
    f.app
        .store()
        .github()
        .recent_deliveries(DEFAULT_ORGANIZATION, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.event == event)
        .and_then(|d| d.detail)
}

on_both_backends!(
    a_suspension_pauses_runs_under_way_until_it_is_lifted,
    |db| {
        let f = github_fixture(db, ForkSecrets::Withheld).await;
        let check_only = &WORKFLOWS[..WORKFLOWS.find("[workflows.deploy]").unwrap()];
        let repo = repository(&f, check_only).await;
        // The check's command needs a person's approval.
        f.api.commit(
            repo,
            "main",
            &[(".smithers/policy", "workflow run_command \"sh *\" -> ask\n")],
            "ask first",
        );
        f.api.commit(repo, "fix", &[("answer.txt", "42\n")], "fix");
        f.api.open_pull_request(repo, "fix", "main", false).await;
        processed(&f.app).await;
        let runs = &f.app.engine().runs;
        let mut asked = Vec::new();
        for _ in 0..600 {
            asked = runs
                .approvals(DEFAULT_ORGANIZATION, true, 100)
                .await
                .unwrap();
            if !asked.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let [approval] = asked.as_slice() else {
            panic!(
                "one approval is asked for: {asked:?}\n{}",
                what_happened(&f).await
            );
        };
        let run = approval.run_id.clone();

        installation_event(&f, "suspend").await;
        assert_eq!(
            delivery_detail(&f, "installation").await.as_deref(),
            Some("1 of 1 unfinished runs paused, 1 stopped where they stood")
        );
        // Nobody carries it on while the installation is suspended.
        let stop = tokio_util::sync::CancellationToken::new();
        let pool = smithers_server::RunPool::new(f.app.clone(), 1, stop.clone());
        let admin = common::github::admin(&f.app).await;
        let refused = f.app.runs().launch(&admin, &run, &*pool).await.unwrap_err();
        assert_eq!(refused.kind, smithers_api::ErrorKind::Conflict);
        assert!(refused.message.contains("is paused"), "{}", refused.message);
        stop.cancel();
        pool.stop().await;
        // Approved while paused: the decision is kept, the run does not go on.
        let admin = common::github::admin(&f.app).await;
        f.app
            .approvals()
            .decide(&admin, &approval.id, true, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let paused = runs.get(&run).await.unwrap();
        assert!(!paused.state.is_finished(), "{:?}", paused.state);
        assert!(
            f.api.statuses().iter().all(|s| s.state == "pending"),
            "{:?}",
            f.api.statuses()
        );

        installation_event(&f, "unsuspend").await;
        assert_eq!(
            delivery_detail(&f, "installation").await.as_deref(),
            Some("1 of 1 unfinished runs carried on")
        );
        let head = f.api.branch_sha(repo, "fix").unwrap();
        let success = status_reaches(&f, &head, "smithers/check", "success").await;
        assert_eq!(run_id_of(&success), run);
        assert!(log_of(&f, &run).await.contains("answer-is-right"));
        let of_run: Vec<(String, serde_json::Value)> = all_events(f.app.store())
            .await
            .into_iter()
            .filter(|e| e.event.resource_id == run && e.event.action.starts_with("run."))
            .map(|e| (e.event.action, e.event.details))
            .collect();
        let paused = of_run
            .iter()
            .position(|(a, _)| a == "run.paused")
            .expect("the pause is audited");
        let unpaused = of_run
            .iter()
            .position(|(a, _)| a == "run.unpaused")
            .expect("the end of the pause is audited");
        assert!(paused < unpaused, "{of_run:?}");
        assert!(
            of_run[paused].1["reason"]
                .as_str()
                .is_some_and(|r| r.contains("is suspended")),
            "{of_run:?}"
        );
        assert_eq!(of_run[paused].1["stopped"], true, "{of_run:?}");
        f.api.assert_honest();
    }
);

/// A nightly workflow beside the pull requests' check.
const SCHEDULED: &str = r#"
[workflows.nightly]
on = ["schedule"]
schedule = "0 3 * * *"
timeout = "5m"
policy = ".smithers/policy"

[[workflows.nightly.steps]]
id = "test"
run = "sh test.sh"

[workflows.check]
on = ["pull_request.opened"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.check.steps]]
id = "test"
run = "sh test.sh"
"#;

on_both_backends!(a_schedule_runs_the_default_branch_once_per_firing, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, SCHEDULED).await;
    let head = f
        .api
        .commit(repo, "main", &[("answer.txt", "42\n")], "the answer");
    let stop = tokio_util::sync::CancellationToken::new();
    let pool = smithers_server::RunPool::new(f.app.clone(), 2, stop.clone());
    let day = Duration::from_secs(24 * 3600);
    // Whatever the server's own loop saw first, the next 03:00 is at most
    // a day away.
    let first = std::time::SystemTime::now();
    let _ = f.github.fire_schedules(&*pool, first).await.unwrap();
    let later = first + day + Duration::from_secs(3600);
    let fired = f.github.fire_schedules(&*pool, later).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(
        fired[0].starts_with("acme/api: started nightly: run "),
        "{fired:?}"
    );
    let success = status_reaches(&f, &head, "smithers/nightly", "success").await;
    let run = run_id_of(&success);
    let recorded = f.app.store().github().run(&run).await.unwrap().unwrap();
    assert_eq!(recorded.pull_number, None);
    assert_eq!(recorded.result_base, "main");
    assert!(
        recorded.delivery.starts_with("schedule 20"),
        "{}",
        recorded.delivery
    );
    assert_eq!(
        f.app.engine().runs.get(&run).await.unwrap().trigger,
        "schedule"
    );
    // The same firing, or a minute on, starts nothing again.
    assert!(
        f.github
            .fire_schedules(&*pool, later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        f.github
            .fire_schedules(&*pool, later + Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    // Two days on, with nothing pushed: one run for the missed times, not
    // one each.
    let fired = f
        .github
        .fire_schedules(&*pool, later + 2 * day)
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let nightly: Vec<_> = f
        .api
        .statuses()
        .into_iter()
        .filter(|s| s.context == "smithers/nightly" && s.state == "pending")
        .filter_map(|s| s.target_url)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(nightly.len(), 2, "{nightly:?}");
    // The pull requests' workflow is not scheduled.
    assert!(
        f.api
            .statuses()
            .iter()
            .all(|s| s.context != "smithers/check")
    );
    stop.cancel();
    pool.stop().await;
    f.api.assert_honest();
});

on_both_backends!(a_schedule_never_piles_runs_up, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, SCHEDULED).await;
    // Every minute, and each run waits for a person.
    f.api.commit(
        repo,
        "main",
        &[
            (
                "smithers.toml",
                &SCHEDULED.replace("0 3 * * *", "* * * * *"),
            ),
            (".smithers/policy", "workflow run_command \"sh *\" -> ask\n"),
        ],
        "every minute",
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let pool = smithers_server::RunPool::new(f.app.clone(), 2, stop.clone());
    let first = std::time::SystemTime::now();
    let _ = f.github.fire_schedules(&*pool, first).await.unwrap();
    let minute = Duration::from_secs(60);
    // A minute on: not five minutes since the first look yet.
    let fired = f
        .github
        .fire_schedules(&*pool, first + minute)
        .await
        .unwrap();
    assert!(fired.is_empty(), "{fired:?}");
    let fired = f
        .github
        .fire_schedules(&*pool, first + 6 * minute)
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    // The run waits; the next firings are skipped, not queued.
    let fired = f
        .github
        .fire_schedules(&*pool, first + 12 * minute)
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].contains("has not ended, skipped"), "{fired:?}");
    let scheduled = f
        .app
        .engine()
        .runs
        .list(DEFAULT_ORGANIZATION, false, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.trigger == "schedule")
        .count();
    assert_eq!(scheduled, 1);
    stop.cancel();
    pool.stop().await;
});

on_both_backends!(a_pull_request_cannot_schedule_itself, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    // The pull request's copy of the file schedules a workflow every
    // minute; the default branch's schedules nothing.
    f.api.commit(
        repo,
        "fix",
        &[(
            "smithers.toml",
            &SCHEDULED.replace("0 3 * * *", "* * * * *"),
        )],
        "run me often",
    );
    f.api.open_pull_request(repo, "fix", "main", false).await;
    processed(&f.app).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let pool = smithers_server::RunPool::new(f.app.clone(), 2, stop.clone());
    let now = std::time::SystemTime::now();
    for minutes in [0, 5, 60 * 24] {
        let at = now + Duration::from_secs(60 * minutes);
        assert!(
            f.github
                .fire_schedules(&*pool, at)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert!(
        f.api
            .statuses()
            .iter()
            .all(|s| s.context != "smithers/nightly")
    );
    stop.cancel();
    pool.stop().await;
});

on_both_backends!(a_dropped_delivery_is_recovered_by_the_sweeper, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = repository(&f, WORKFLOWS).await;
    let since = std::time::SystemTime::now() - Duration::from_secs(60);
    let head = f.api.commit(repo, "fix", &[("answer.txt", "42\n")], "fix");
    f.api.set_chaos(Chaos::Drop);
    f.api.open_pull_request(repo, "fix", "main", false).await;
    f.api.set_chaos(Chaos::None);
    let dropped = f
        .api
        .deliveries()
        .into_iter()
        .find(|d| d.event == "pull_request")
        .unwrap();
    assert_eq!(dropped.status_code, 504);
    assert!(f.api.statuses().is_empty(), "nothing arrived");

    let swept = f.github.sweep(since).await.unwrap();
    assert_eq!(swept.redelivered, std::slice::from_ref(&dropped.guid));
    f.api.settle().await;
    processed(&f.app).await;
    status_reaches(&f, &head, "smithers/check", "success").await;
    // Delivered now: a second sweep asks for nothing.
    let again = f.github.sweep(since).await.unwrap();
    assert!(again.redelivered.is_empty(), "{again:?}");
    f.api.assert_honest();
});

/// The default branch's rules with a workflow whose agent fixes the answer,
/// committed to a `smithers/` branch.
const FIXING: &str = r#"
[workflows.fix]
on = ["pull_request.opened", "pull_request.synchronize"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.fix.steps]]
id = "edit"
agent = { role = "implementer", driver = "scripted", script = ".smithers/fix.json", prompt = "Fix the answer" }

[[workflows.fix.steps]]
id = "ship"
commit = { branch = "smithers/fix-answer", message = "Fix the answer\n\nFixes #1, thanks @octocat <img src=x onerror=alert(1)>" }
"#;

const FIXING_POLICY: &str = "workflow run_command \"sh *\" -> allow\n\
     workflow create_commit smithers/* -> allow\n\
     implementer read_file * -> allow\n\
     implementer apply_patch answer.txt -> allow\n";

/// The agent's work: read the answer, patch it.
const FIX_SCRIPT: &str = r#"{
  "calls": [
    {"tool": "read_file", "arguments": {"path": "answer.txt"}, "expect": "ok"},
    {"tool": "apply_patch", "arguments": {"patch": "--- a/answer.txt\n+++ b/answer.txt\n@@ -1 +1 @@\n-41\n+42\n"}, "expect": "ok"}
  ],
  "summary": "fixed the answer"
}"#;

/// The repository with the fixing workflow; its id.
async fn fixing_repository(f: &GithubFixture) -> u64 {
    let repo = repository(f, FIXING).await;
    f.api.commit(
        repo,
        "main",
        &[
            (".smithers/policy", FIXING_POLICY),
            (".smithers/fix.json", FIX_SCRIPT),
        ],
        "the fixer",
    );
    repo
}

/// Waits until the stand-in has `n` pull requests.
async fn pulls_reach(f: &GithubFixture, n: usize) -> Vec<smithers_test_support::github::Pull> {
    for _ in 0..600 {
        let pulls = f.api.pulls();
        if pulls.len() >= n {
            return pulls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never {n} pull requests: {:?}\n{}",
        f.api.pulls(),
        what_happened(f).await
    );
}

/// What the organization's deliveries and runs came to: a timed-out
/// wait's report.
async fn what_happened(f: &GithubFixture) -> String {
    let store = f.app.store();
    let mut report = String::new();
    for d in store
        .github()
        .recent_deliveries(DEFAULT_ORGANIZATION, 20)
        .await
        .unwrap()
    {
        report += &format!(
            "delivery {} {} {:?}: {:?} {:?}\n",
            d.guid, d.event, d.action, d.outcome, d.detail
        );
    }
    let runs = &f.app.engine().runs;
    for run in runs.list(DEFAULT_ORGANIZATION, false, 20).await.unwrap() {
        let github = store.github().run(&run.id).await.unwrap();
        report += &format!(
            "run {} {} {:?} {:?}; github: {:?}\n",
            run.id, run.workflow, run.state, run.error, github
        );
        for step in runs.steps(&run.id).await.unwrap() {
            report += &format!(
                "  step {} {:?} {:?}\n",
                step.step_id, step.state, step.error
            );
        }
    }
    report
}

/// Waits until run `id`'s work is settled; its result.
async fn settled(f: &GithubFixture, id: &str) -> smithers_store::GithubRun {
    for _ in 0..600 {
        let run = f.app.store().github().run(id).await.unwrap().unwrap();
        if run.result.is_some() {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "run {id}'s work was never settled\n{}",
        what_happened(f).await
    );
}

on_both_backends!(an_agents_fix_arrives_as_a_chained_pull_request, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = fixing_repository(&f).await;
    let head = f.api.commit(
        repo,
        "feature",
        &[("notes.txt", "wip\n")],
        "work in progress",
    );
    // The answer to "create a pull request" is lost once, after GitHub
    // made it: exactly one pull request all the same.
    f.api
        .fail_after_effect("POST", "/repos/{owner}/{repo}/pulls", 502, 1);
    let number = f
        .api
        .open_pull_request(repo, "feature", "main", false)
        .await;
    let success = status_reaches(&f, &head, "smithers/fix", "success").await;
    let run = settled(&f, &run_id_of(&success)).await;
    assert_eq!(
        run.result.as_deref(),
        Some("delivered"),
        "{:?}",
        run.result_detail
    );

    let ours: Vec<_> = f
        .api
        .pulls()
        .into_iter()
        .filter(|p| p.number != number)
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one pull request despite the lost answer: {ours:?}"
    );
    let pull = &ours[0];
    assert_eq!(pull.head_ref, "smithers/fix-answer");
    assert_eq!(
        pull.base_ref, "feature",
        "chained onto the triggering pull request"
    );
    assert_eq!(Some(pull.number as i64), run.result_pull);
    assert_eq!(
        f.api.branch_sha(repo, "smithers/fix-answer").as_deref(),
        Some(pull.head_sha.as_str())
    );
    // The commit is the run's: the answer fixed on the pull request's code.
    let answer = smithers_test_support::git::git(
        &f.api.repo_path(repo),
        &["show", &format!("{}:answer.txt", pull.head_sha)],
    );
    assert_eq!(answer, "42");
    // Zero-width spaces keep what GitHub would act on inert, and show
    // nothing.
    let body = pull
        .body
        .clone()
        .unwrap_or_default()
        .replace('\u{200B}', "");
    assert!(body.contains(&run.run_id), "{body}");
    assert!(body.contains(&format!("{PUBLIC_URL}/runs/")), "{body}");
    assert!(body.contains("Fix the answer"), "{body}");
    let raw = pull.body.clone().unwrap_or_default();
    assert!(!raw.contains("Fixes #1"), "no closing keyword: {raw}");
    assert!(!raw.contains("@octocat"), "no mention: {raw}");
    assert!(!body.contains("<img"), "no HTML: {body}");
    assert!(
        pull.title
            .replace('\u{200B}', "")
            .starts_with("smithers/fix: Fix the answer"),
        "{}",
        pull.title
    );

    // A new push runs again: the same pull request is updated, not another
    // opened, and Smithers' branch moves on (its lease holds).
    f.api
        .push_to_pull_request(repo, number, &[("notes.txt", "more\n")], "more work")
        .await;
    let second_head = f.api.branch_sha(repo, "feature").unwrap();
    let success = status_reaches(&f, &second_head, "smithers/fix", "success").await;
    let second = settled(&f, &run_id_of(&success)).await;
    assert_eq!(
        second.result.as_deref(),
        Some("delivered"),
        "{:?}",
        second.result_detail
    );
    let ours: Vec<_> = f
        .api
        .pulls()
        .into_iter()
        .filter(|p| p.number != number)
        .collect();
    assert_eq!(ours.len(), 1, "the same pull request: {ours:?}");
    assert!(
        ours[0]
            .body
            .clone()
            .unwrap_or_default()
            .contains(&second.run_id)
    );

    // GitHub announces Smithers' own pull request too: it starts nothing.
    let own = ours[0].number;
    f.api
        .pull_event(
            repo,
            own,
            "opened",
            ours[0].author.clone(),
            serde_json::json!({}),
        )
        .await;
    processed(&f.app).await;
    let deliveries = f
        .app
        .store()
        .github()
        .recent_deliveries(DEFAULT_ORGANIZATION, 50)
        .await
        .unwrap();
    assert!(
        deliveries.iter().any(|d| d
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("Smithers' own pull request")),
        "{deliveries:?}"
    );
    f.api.assert_honest();
});

on_both_backends!(a_forks_work_is_not_pushed_into_the_repository, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let repo = fixing_repository(&f).await;
    let head = f
        .api
        .commit(repo, "contrib", &[("notes.txt", "hi\n")], "a contribution");
    f.api.open_pull_request(repo, "contrib", "main", true).await;
    let success = status_reaches(&f, &head, "smithers/fix", "success").await;
    let run = settled(&f, &run_id_of(&success)).await;
    assert_eq!(run.result.as_deref(), Some("failed"));
    let why = run.result_detail.unwrap_or_default();
    assert!(why.contains("fork's code"), "{why}");
    assert_eq!(f.api.branch_sha(repo, "smithers/fix-answer"), None);
    assert_eq!(f.api.pulls().len(), 1, "no pull request but the fork's");
    f.api.assert_honest();
});

on_both_backends!(
    a_persons_push_onto_smithers_branch_is_not_overwritten,
    |db| {
        let f = github_fixture(db, ForkSecrets::Withheld).await;
        let repo = fixing_repository(&f).await;
        f.api
            .commit(repo, "feature", &[("notes.txt", "wip\n")], "wip");
        let number = f
            .api
            .open_pull_request(repo, "feature", "main", false)
            .await;
        pulls_reach(&f, 2).await;
        // A person pushes onto Smithers' branch.
        let theirs = f.api.commit(
            repo,
            "smithers/fix-answer",
            &[("mine.txt", "mine\n")],
            "a person's commit",
        );
        f.api
            .push_to_pull_request(repo, number, &[("notes.txt", "more\n")], "more")
            .await;
        let head = f.api.branch_sha(repo, "feature").unwrap();
        let success = status_reaches(&f, &head, "smithers/fix", "success").await;
        let run = settled(&f, &run_id_of(&success)).await;
        assert_eq!(run.result.as_deref(), Some("failed"));
        let why = run.result_detail.unwrap_or_default();
        assert!(why.contains("does not overwrite"), "{why}");
        assert_eq!(
            f.api.branch_sha(repo, "smithers/fix-answer").as_deref(),
            Some(theirs.as_str()),
            "the person's commit stays"
        );
        f.api.assert_honest();
    }
);

on_both_backends!(
    reordered_and_repeated_deliveries_run_only_the_current_head,
    |db| {
        let f = github_fixture(db, ForkSecrets::Withheld).await;
        let repo = repository(&f, WORKFLOWS).await;
        let first = f
            .api
            .commit(repo, "fix", &[("answer.txt", "40\n")], "not yet");
        // opened and synchronize arrive in the reverse order, each twice.
        f.api.set_chaos(Chaos::Reorder { batch: 2, seed: 0 });
        let number = f.api.open_pull_request(repo, "fix", "main", false).await;
        let second = f
            .api
            .push_to_pull_request(repo, number, &[("answer.txt", "42\n")], "fixed")
            .await;
        f.api.set_chaos(Chaos::Duplicate);
        f.api
            .pull_event(
                repo,
                number,
                "reopened",
                smithers_test_support::github::Account {
                    login: "octocat".into(),
                    id: 583231,
                    kind: "User".into(),
                },
                serde_json::json!({}),
            )
            .await;
        processed(&f.app).await;
        status_reaches(&f, &second, "smithers/check", "success").await;
        assert!(
            statuses(&f, &first, "smithers/check").is_empty(),
            "the stale head was never run"
        );
        let checks: Vec<_> = f
            .app
            .engine()
            .runs
            .find(
                DEFAULT_ORGANIZATION,
                &smithers_store::RunFilter {
                    workflow: Some("check"),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(checks.len(), 1, "one run of the current head");
        let deliveries = f
            .app
            .store()
            .github()
            .recent_deliveries(DEFAULT_ORGANIZATION, 20)
            .await
            .unwrap();
        let stale = deliveries
            .iter()
            .find(|d| d.action.as_deref() == Some("opened"))
            .unwrap();
        assert!(
            stale.detail.as_deref().unwrap_or("").starts_with("stale"),
            "{stale:?}"
        );
        f.api.assert_honest();
    }
);

on_both_backends!(a_push_runs_the_workflows_on_push, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let on_push = WORKFLOWS.replace(
        "on = [\"pull_request.opened\", \"pull_request.synchronize\", \"pull_request.reopened\"]",
        "on = [\"push\"]",
    );
    let repo = repository(&f, &on_push).await;
    let sha = f
        .api
        .commit(repo, "dev", &[("answer.txt", "42\n")], "fixed on dev");
    let push = |branch: &str, after: &str| {
        serde_json::json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "0000000000000000000000000000000000000000",
            "after": after,
            "created": true,
            "deleted": false,
            "forced": false,
        })
    };
    f.api
        .deliver("push", None, Some(repo), push("dev", &sha))
        .await;
    let ours = f.api.commit(
        repo,
        "smithers/elsewhere",
        &[("answer.txt", "42\n")],
        "ours",
    );
    f.api
        .deliver("push", None, Some(repo), push("smithers/elsewhere", &ours))
        .await;
    processed(&f.app).await;
    status_reaches(&f, &sha, "smithers/check", "success").await;
    assert!(statuses(&f, &ours, "smithers/check").is_empty());
    let deliveries = f
        .app
        .store()
        .github()
        .recent_deliveries(DEFAULT_ORGANIZATION, 20)
        .await
        .unwrap();
    let own = deliveries
        .iter()
        .find(|d| d.event == "push" && d.detail.as_deref().unwrap_or("").contains("Smithers' own"))
        .expect("the push of a smithers/ branch is ignored");
    assert_eq!(own.outcome.as_deref(), Some("ignored"));
    f.api.assert_honest();
});

/// A workflow that delivers three commits, each on its own branch: a
/// chain of three pull requests.
const STACKING: &str = r#"
[workflows.parts]
on = ["pull_request.opened", "pull_request.synchronize"]
timeout = "5m"
policy = ".smithers/policy"

[[workflows.parts.steps]]
id = "write-a"
run = "sh part.sh a"

[[workflows.parts.steps]]
id = "commit-a"
commit = { branch = "smithers/parts/1", message = "Add part a" }

[[workflows.parts.steps]]
id = "write-b"
run = "sh part.sh b"

[[workflows.parts.steps]]
id = "commit-b"
commit = { branch = "smithers/parts/2", message = "Add part b" }

[[workflows.parts.steps]]
id = "write-c"
run = "sh part.sh c"

[[workflows.parts.steps]]
id = "commit-c"
commit = { branch = "smithers/parts/3", message = "Add part c" }
"#;

const STACKING_POLICY: &str = "workflow run_command \"sh *\" -> allow\n\
     workflow create_commit smithers/parts/* -> allow\n";

/// A stack as a test sees it: the repository, the pull request that
/// started the run, and Smithers' three, bottom first.
struct Stacked {
    repo: u64,
    run: smithers_store::GithubRun,
    pulls: Vec<Pull>,
}

/// The files `to` changes against `from`, sorted.
fn changed_files(f: &GithubFixture, repo: u64, from: &str, to: &str) -> Vec<String> {
    let names =
        smithers_test_support::git::git(&f.api.repo_path(repo), &["diff", "--name-only", from, to]);
    let mut names: Vec<String> = names.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// The pull request numbered `n`, as the stand-in holds it now.
fn pull_now(f: &GithubFixture, n: u64) -> Pull {
    f.api
        .pulls()
        .into_iter()
        .find(|p| p.number == n)
        .expect("the pull request exists")
}

/// Waits until `check` holds of the stand-in; panics with `what` and the
/// pull requests when it never does.
async fn until(f: &GithubFixture, what: &str, check: impl Fn(&GithubFixture) -> bool) {
    for _ in 0..900 {
        if check(f) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what}: never\npulls: {:#?}\ncomments: {:?}\nstack events: {:#?}\n{}",
        f.api.pulls(),
        stack_events(f).await,
        f.api.comments(),
        what_happened(f).await
    );
}

/// The audit log's stack events, each its action and details.
async fn stack_events(f: &GithubFixture) -> Vec<String> {
    all_events(f.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action.starts_with("github.stack"))
        .map(|e| format!("{} {}", e.event.action, e.event.details))
        .collect()
}

/// A run of the stacking workflow on a pull request from `feature`,
/// delivered and reconciled once.
async fn stacked(f: &GithubFixture) -> Stacked {
    stacked_with(f, false).await
}

/// [`stacked`], the repository having GitHub's native stacks if `native`.
async fn stacked_with(f: &GithubFixture, native: bool) -> Stacked {
    let repo = repository(f, STACKING).await;
    if native {
        f.api.enable_native_stacks(repo);
    }
    f.api.commit(
        repo,
        "main",
        &[
            (".smithers/policy", STACKING_POLICY),
            // Each part says what the pull request's notes were, so a run
            // on a later push changes every part again.
            ("part.sh", "echo \"$1 $(cat notes.txt)\" > \"$1.txt\"\n"),
        ],
        "the parts",
    );
    let head = f
        .api
        .commit(repo, "feature", &[("notes.txt", "wip\n")], "work");
    f.api
        .open_pull_request(repo, "feature", "main", false)
        .await;
    let success = status_reaches(f, &head, "smithers/parts", "success").await;
    let run = settled(f, &run_id_of(&success)).await;
    assert_eq!(
        run.result.as_deref(),
        Some("delivered"),
        "{:?}",
        run.result_detail
    );
    let mut pulls: Vec<Pull> = f
        .api
        .pulls()
        .into_iter()
        .filter(|p| p.head_ref.starts_with("smithers/parts/"))
        .collect();
    pulls.sort_by(|a, b| a.head_ref.cmp(&b.head_ref));
    assert_eq!(pulls.len(), 3, "{pulls:#?}");
    Stacked { repo, run, pulls }
}

/// Where `branch` is now (a pull request's `head_sha` is where it was
/// when opened).
fn tip(f: &GithubFixture, repo: u64, branch: &str) -> String {
    f.api.branch_sha(repo, branch).unwrap_or_default()
}

/// The run's stack as recorded.
async fn stack_of(f: &GithubFixture, run: &str) -> smithers_store::GithubStack {
    f.app
        .store()
        .github()
        .stack_of_run(run)
        .await
        .unwrap()
        .expect("the run's stack is recorded")
}

on_both_backends!(
    a_three_commit_run_becomes_three_chained_pull_requests,
    |db| {
        let f = github_fixture(db, ForkSecrets::Withheld).await;
        let s = stacked(&f).await;
        let bases: Vec<(&str, &str)> = s
            .pulls
            .iter()
            .map(|p| (p.head_ref.as_str(), p.base_ref.as_str()))
            .collect();
        assert_eq!(
            bases,
            [
                ("smithers/parts/1", "feature"),
                ("smithers/parts/2", "smithers/parts/1"),
                ("smithers/parts/3", "smithers/parts/2"),
            ]
        );
        // Each pull request holds its own commit only.
        for (p, file) in s.pulls.iter().zip(["a.txt", "b.txt", "c.txt"]) {
            assert_eq!(
                changed_files(&f, s.repo, &p.base_sha, &p.head_sha),
                [file],
                "{}",
                p.head_ref
            );
            assert!(
                p.title
                    .replace('\u{200B}', "")
                    .ends_with(&format!("Add part {}", file.trim_end_matches(".txt"))),
                "{}",
                p.title
            );
        }
        // Every body carries the whole stack, its own pull request marked.
        let numbers: Vec<u64> = s.pulls.iter().map(|p| p.number).collect();
        until(&f, "every body carries the stack", |f| {
            numbers.iter().all(|n| {
                let body = pull_now(f, *n).body.unwrap_or_default();
                body.contains("<!-- smithers-stack v1 ")
                    && body.contains(&format!("#{n} "))
                    && numbers.iter().all(|m| body.contains(&format!("#{m} ")))
                    && body.lines().any(|l| {
                        l.starts_with(&format!("- #{n} ")) && l.ends_with("← this pull request")
                    })
            })
        })
        .await;
        // Only the bottom is next to merge; the others wait for the one below.
        let bottom = status_reaches(&f, &s.pulls[0].head_sha, "smithers/stack", "success").await;
        assert_eq!(
            bottom.description.as_deref(),
            Some("Next to merge: the bottom of its stack")
        );
        for i in 1..3 {
            let waiting =
                status_reaches(&f, &s.pulls[i].head_sha, "smithers/stack", "pending").await;
            assert_eq!(
                waiting.description,
                Some(format!(
                    "Waiting for #{} below it to be merged",
                    s.pulls[i - 1].number
                ))
            );
        }
        let stack = stack_of(&f, &s.run.run_id).await;
        assert_eq!(stack.base, "feature");
        assert_eq!(stack.state, smithers_store::StackState::Active);
        let recorded: Vec<Option<i64>> = stack.members.iter().map(|m| m.pull_number).collect();
        assert_eq!(
            recorded,
            numbers.iter().map(|n| Some(*n as i64)).collect::<Vec<_>>()
        );
        // The repository has no native stacks (GitHub answers 404):
        // Smithers' own block and statuses are the stack.
        let created: Vec<serde_json::Value> = all_events(f.app.store())
            .await
            .into_iter()
            .filter(|e| e.event.action == "github.stack_created")
            .map(|e| e.event.details)
            .collect();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["native_stack"], serde_json::Value::Null);
        assert!(f.api.native_stacks().is_empty());
        f.api.assert_honest();
    }
);

on_both_backends!(a_repository_with_native_stacks_gets_one, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let s = stacked_with(&f, true).await;
    let native = f.api.native_stacks();
    assert_eq!(native.len(), 1, "{native:?}");
    assert_eq!(
        native[0].pulls,
        s.pulls.iter().map(|p| p.number).collect::<Vec<_>>(),
        "bottom first"
    );
    let created: Vec<serde_json::Value> = all_events(f.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "github.stack_created")
        .map(|e| e.event.details)
        .collect();
    assert_eq!(created[0]["native_stack"], native[0].number);
    f.api.assert_honest();
});

/// Merges the bottom of a fresh stack by `method` and checks the chain is
/// right afterwards: the middle on `feature` with its own diff, the top
/// still on the middle, nothing paused, the merged branch deleted.
async fn merged_bottom(db: &TestDb, method: MergeMethod) {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let s = stacked(&f).await;
    let (bottom, middle, top) = (&s.pulls[0], &s.pulls[1], &s.pulls[2]);
    let middle_head = middle.head_sha.clone();
    until(&f, "the stack is presented", |f| {
        !statuses(f, &top.head_sha, "smithers/stack").is_empty()
    })
    .await;
    f.api.merge_pull(s.repo, bottom.number, method);
    let feature = f.api.branch_sha(s.repo, "feature").unwrap();

    until(
        &f,
        "the middle is retargeted onto feature, showing its own change only",
        |f| {
            let m = pull_now(f, middle.number);
            m.state == "open"
                && m.base_ref == "feature"
                && f.api.branch_sha(s.repo, "smithers/parts/1").is_none()
                && changed_files(f, s.repo, &feature, &tip(f, s.repo, &m.head_ref)) == ["b.txt"]
        },
    )
    .await;
    let m = pull_now(&f, middle.number);
    assert_eq!(
        changed_files(&f, s.repo, &feature, &tip(&f, s.repo, &m.head_ref)),
        ["b.txt"],
        "the middle's diff is unchanged"
    );
    if method == MergeMethod::Merge {
        assert_eq!(
            tip(&f, s.repo, &m.head_ref),
            middle_head,
            "a merge commit keeps the middle's commits: nothing rewritten"
        );
    }
    until(&f, "the top rests on the middle", |f| {
        let t = pull_now(f, top.number);
        let m = pull_now(f, middle.number);
        t.state == "open"
            && t.base_ref == "smithers/parts/2"
            && smithers_test_support::git::is_ancestor(
                &f.api.repo_path(s.repo),
                &tip(f, s.repo, &m.head_ref),
                &tip(f, s.repo, &t.head_ref),
            )
    })
    .await;
    let t = pull_now(&f, top.number);
    let m = pull_now(&f, middle.number);
    assert_eq!(
        changed_files(
            &f,
            s.repo,
            &tip(&f, s.repo, &m.head_ref),
            &tip(&f, s.repo, &t.head_ref)
        ),
        ["c.txt"]
    );
    // The middle is now next to merge.
    status_reaches(
        &f,
        &tip(&f, s.repo, &m.head_ref),
        "smithers/stack",
        "success",
    )
    .await;
    until(&f, "the middle's body shows the bottom merged", |f| {
        pull_now(f, middle.number)
            .body
            .unwrap_or_default()
            .contains(&format!("#{} ", bottom.number))
            && pull_now(f, middle.number)
                .body
                .unwrap_or_default()
                .contains("(merged)")
    })
    .await;
    let stack = stack_of(&f, &s.run.run_id).await;
    assert_eq!(
        stack.state,
        smithers_store::StackState::Active,
        "{:?}",
        stack.paused_reason
    );
    let done = actions(&f.app).await;
    assert!(!done.iter().any(|a| a == "github.stack_paused"), "{done:?}");
    assert!(done.iter().any(|a| a == "github.stack_member_merged"));
    assert!(f.api.comments().is_empty(), "{:?}", f.api.comments());
    f.api.assert_honest();
}

on_both_backends!(a_squash_merged_bottom_leaves_the_chain_right, |db| {
    merged_bottom(db, MergeMethod::Squash).await;
});

on_both_backends!(a_merge_commit_merged_bottom_leaves_the_chain_right, |db| {
    merged_bottom(db, MergeMethod::Merge).await;
});

on_both_backends!(a_rebase_merged_bottom_leaves_the_chain_right, |db| {
    merged_bottom(db, MergeMethod::Rebase).await;
});

on_both_backends!(a_child_closed_with_its_deleted_base_is_recreated, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let s = stacked(&f).await;
    let (bottom, middle) = (&s.pulls[0], &s.pulls[1]);
    // Merged and its branch deleted through the API at once, before
    // Smithers can retarget: GitHub closes the middle for good.
    f.api.merge_pull(s.repo, bottom.number, MergeMethod::Squash);
    f.api.delete_branch(s.repo, "smithers/parts/1");
    assert_eq!(pull_now(&f, middle.number).state, "closed");

    until(&f, "the middle is opened again onto feature", |f| {
        f.api.pulls().iter().any(|p| {
            p.number > middle.number
                && p.head_ref == "smithers/parts/2"
                && p.base_ref == "feature"
                && p.state == "open"
        })
    })
    .await;
    let again = f
        .api
        .pulls()
        .into_iter()
        .find(|p| p.number > middle.number && p.head_ref == "smithers/parts/2")
        .unwrap();
    let feature = f.api.branch_sha(s.repo, "feature").unwrap();
    until(&f, "the new one rests on feature", |f| {
        let p = pull_now(f, again.number);
        smithers_test_support::git::is_ancestor(
            &f.api.repo_path(s.repo),
            &feature,
            &tip(f, s.repo, &p.head_ref),
        )
    })
    .await;
    let p = pull_now(&f, again.number);
    assert_eq!(
        changed_files(&f, s.repo, &feature, &tip(&f, s.repo, &p.head_ref)),
        ["b.txt"]
    );
    let body = p.body.unwrap_or_default();
    assert!(
        body.contains(&format!("in place of #{}", middle.number)),
        "{body}"
    );
    // The old body's words, not its stack block: one block, this one's.
    until(&f, "the new one carries one stack block, its own", |f| {
        let body = pull_now(f, again.number).body.unwrap_or_default();
        body.matches("<!-- smithers-stack v1 ").count() == 1
            && body.contains(&format!(" {} ", again.number))
            && body.contains("Add part b")
    })
    .await;
    until(&f, "the closed one links to the new one", |f| {
        f.api
            .comments()
            .iter()
            .any(|c| c.number == middle.number && c.body.contains(&format!("#{}", again.number)))
    })
    .await;
    // Audited right after the link.
    for _ in 0..100 {
        if stack_events(&f)
            .await
            .iter()
            .any(|e| e.starts_with("github.stack_pull_recreated"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stack = stack_of(&f, &s.run.run_id).await;
    assert_eq!(stack.members[1].pull_number, Some(again.number as i64));
    let recreated: Vec<serde_json::Value> = all_events(f.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "github.stack_pull_recreated")
        .map(|e| e.event.details)
        .collect();
    assert_eq!(recreated.len(), 1, "{:#?}", stack_events(&f).await);
    assert_eq!(recreated[0]["replaces"], middle.number);
    assert_eq!(recreated[0]["pull"], again.number);
    // The top stays on the middle's branch, which never went away.
    assert_eq!(pull_now(&f, s.pulls[2].number).state, "open");
    f.api.assert_honest();
});

on_both_backends!(
    a_persons_push_onto_a_stack_branch_pauses_it_until_synced,
    |db| {
        let f = github_fixture(db, ForkSecrets::Withheld).await;
        let s = stacked(&f).await;
        let (bottom, middle, top) = (&s.pulls[0], &s.pulls[1], &s.pulls[2]);
        let theirs = f.api.commit(
            s.repo,
            "smithers/parts/2",
            &[("b.txt", "b, said better\n")],
            "a reviewer's suggestion",
        );
        f.api.merge_pull(s.repo, bottom.number, MergeMethod::Squash);

        until(&f, "the middle's pull request says the stack waits", |f| {
            f.api.comments().iter().any(|c| {
                c.number == middle.number && c.body.contains("stopped keeping this stack current")
            })
        })
        .await;
        let stack = stack_of(&f, &s.run.run_id).await;
        assert_eq!(stack.state, smithers_store::StackState::Paused);
        let reason = stack.paused_reason.clone().unwrap_or_default();
        assert!(reason.contains("smithers/parts/2"), "{reason}");
        assert_eq!(
            f.api.branch_sha(s.repo, "smithers/parts/2").as_deref(),
            Some(theirs.as_str()),
            "their push is never overwritten"
        );
        assert!(
            actions(&f.app)
                .await
                .iter()
                .any(|a| a == "github.stack_paused")
        );
        // Said once, however many passes find it so.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let said = f
            .api
            .comments()
            .iter()
            .filter(|c| c.body.contains("stopped keeping this stack current"))
            .count();
        assert_eq!(said, 1, "{:?}", f.api.comments());

        // A person takes the branches as they are: their commit is the
        // middle's now, the chain is restacked onto it.
        f.app
            .store()
            .github()
            .request_stack_sync(&stack.id, true)
            .await
            .unwrap();
        let feature = f.api.branch_sha(s.repo, "feature").unwrap();
        until(&f, "the chain goes on from their commit", |f| {
            let m = pull_now(f, middle.number);
            let t = pull_now(f, top.number);
            let dir = f.api.repo_path(s.repo);
            m.base_ref == "feature"
                && smithers_test_support::git::is_ancestor(
                    &dir,
                    &feature,
                    &tip(f, s.repo, &m.head_ref),
                )
                && smithers_test_support::git::is_ancestor(
                    &dir,
                    &tip(f, s.repo, &m.head_ref),
                    &tip(f, s.repo, &t.head_ref),
                )
        })
        .await;
        let m = pull_now(&f, middle.number);
        let shown = smithers_test_support::git::git(
            &f.api.repo_path(s.repo),
            &["show", &format!("{}:b.txt", tip(&f, s.repo, &m.head_ref))],
        );
        assert_eq!(shown, "b, said better", "their change is kept");
        // Resumed at the end of the pass that restacked it.
        let mut stack = stack_of(&f, &s.run.run_id).await;
        for _ in 0..100 {
            if stack.state == smithers_store::StackState::Active {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            stack = stack_of(&f, &s.run.run_id).await;
        }
        assert_eq!(stack.state, smithers_store::StackState::Active);
        let done = actions(&f.app).await;
        assert!(done.iter().any(|a| a == "github.stack_synced"), "{done:?}");
        assert!(done.iter().any(|a| a == "github.stack_resumed"), "{done:?}");
        f.api.assert_honest();
    }
);

on_both_backends!(a_later_run_takes_over_a_restacked_stacks_branches, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let s = stacked(&f).await;
    let (bottom, middle) = (&s.pulls[0], &s.pulls[1]);
    f.api.merge_pull(s.repo, bottom.number, MergeMethod::Squash);
    let feature = f.api.branch_sha(s.repo, "feature").unwrap();
    until(&f, "the middle is restacked onto feature", |f| {
        smithers_test_support::git::is_ancestor(
            &f.api.repo_path(s.repo),
            &feature,
            &tip(f, s.repo, &middle.head_ref),
        ) && f.api.branch_sha(s.repo, "smithers/parts/1").is_none()
    })
    .await;

    // A new push to the pull request runs the work again: its branches
    // are the ones Smithers restacked and deleted, and its pushes are
    // leased on exactly that, so nothing is refused as someone else's.
    let feature_pull = s.run.pull_number.unwrap() as u64;
    f.api
        .push_to_pull_request(s.repo, feature_pull, &[("notes.txt", "more\n")], "more")
        .await;
    let head = f.api.branch_sha(s.repo, "feature").unwrap();
    let success = status_reaches(&f, &head, "smithers/parts", "success").await;
    let again = settled(&f, &run_id_of(&success)).await;
    assert_eq!(
        again.result.as_deref(),
        Some("delivered"),
        "{:?}",
        again.result_detail
    );
    let old = stack_of(&f, &s.run.run_id).await;
    assert_eq!(old.state, smithers_store::StackState::Superseded);
    let new = stack_of(&f, &again.run_id).await;
    assert_eq!(new.members.len(), 3);
    for (i, m) in new.members.iter().enumerate() {
        assert_eq!(
            f.api.branch_sha(s.repo, &m.branch).as_deref(),
            Some(m.head.as_str()),
            "member {i} pushed"
        );
    }
    assert!(smithers_test_support::git::is_ancestor(
        &f.api.repo_path(s.repo),
        &head,
        &new.members[0].head,
    ));
    f.api.assert_honest();
});

on_both_backends!(a_restack_github_refuses_pauses_the_stack_once, |db| {
    let f = github_fixture(db, ForkSecrets::Withheld).await;
    let s = stacked(&f).await;
    let (bottom, middle) = (&s.pulls[0], &s.pulls[1]);
    // A rule on GitHub refuses every push to the middle's branch.
    f.api.protect_branch(s.repo, "smithers/parts/2");
    let before = tip(&f, s.repo, &middle.head_ref);
    f.api.merge_pull(s.repo, bottom.number, MergeMethod::Squash);

    until(
        &f,
        "the middle's pull request says GitHub refused the restack",
        |f| {
            f.api.comments().iter().any(|c| {
                c.number == middle.number && c.body.contains("GitHub refused Smithers' restack")
            })
        },
    )
    .await;
    let stack = stack_of(&f, &s.run.run_id).await;
    assert_eq!(stack.state, smithers_store::StackState::Paused);
    // It is not tried again every pass, and said once.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let tries = all_events(f.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "github.stack_restacked")
        .count();
    assert_eq!(tries, 1, "{:#?}", stack_events(&f).await);
    let said = f
        .api
        .comments()
        .iter()
        .filter(|c| c.body.contains("GitHub refused"))
        .count();
    assert_eq!(said, 1, "{:?}", f.api.comments());
    assert_eq!(tip(&f, s.repo, &middle.head_ref), before);
    f.api.assert_honest();
});
