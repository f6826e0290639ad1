//! `smithers run`, `runs`, `approvals` and `demo` as a user runs them:
//! the demo end to end, a run killed with SIGKILL mid-step and resumed to
//! the same end without repeating a finished call, approvals decided from
//! another shell (not by the run's starter), a model-driven run killed
//! mid-call and resumed without asking the model again, and a malformed
//! smithers.toml.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use smithers_test_support::git::git;
use smithers_test_support::model_server::{Api, ModelServer, Say};

/// A keyring for the tests that hold secrets (never a real key).
const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn smithers_command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smithers"));
    command
        .args(args)
        .env("SMITHERS_HOME", home)
        .env_remove("SECRET_ENCRYPTION_KEYS")
        .env_remove("SMITHERS_DATABASE_URL")
        .env_remove("SMITHERS_AUDIT_SIGNING_KEY")
        .env_remove("SMITHERS_USER")
        .env_remove("SMITHERS_NATS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn smithers(home: &Path, args: &[&str]) -> Output {
    smithers_command(home, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A repository with `workflows` and `policy`, pushed to a bare remote.
fn repository(root: &Path, workflows: &str, policy: &str) -> (String, std::path::PathBuf) {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join(".smithers")).unwrap();
    std::fs::write(repo.join("smithers.toml"), workflows).unwrap();
    std::fs::write(repo.join(".smithers/policy"), policy).unwrap();
    std::fs::write(repo.join("README.md"), "# r\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let remote = root.join("remote.git");
    git(root, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&repo, &["push", "-q", "origin", "main"]);
    (repo.to_str().unwrap().to_string(), remote)
}

fn show(home: &Path, id: &str) -> serde_json::Value {
    let out = smithers(home, &["runs", "show", id, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The id of the newest run, once there is one.
fn newest_run(home: &Path) -> Option<String> {
    let out = smithers(home, &["runs", "list", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Some(runs.as_array()?.first()?["id"].as_str()?.to_string())
}

/// The audit log's events `action` about resource `id`.
fn events_of(home: &Path, action: &str, id: &str) -> Vec<serde_json::Value> {
    let out = smithers(home, &["audit", "log", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action && e["resource_id"] == id)
        .cloned()
        .collect()
}

/// Polls until `check` holds (a run moves on its own time).
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_shows_everything_and_ends_well() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("demo");
    let out = smithers(
        home.path(),
        &["demo", "--yes", "--dir", dir.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "implementer push_branch → deny",
        "calling the API with token ***",
        "masked as *** in the run log",
        "main untouched (src/answer.txt is still 41)",
        "purge checked clean",
        "chain intact",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
    assert_eq!(
        git(
            &dir.join("remote.git"),
            &["show", "smithers/fix-answer:src/answer.txt"]
        ),
        "42"
    );
    // Without a terminal and without --yes it refuses before doing anything.
    let other = home.path().join("demo2");
    let out = smithers(home.path(), &["demo", "--dir", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass --yes"));
    assert!(!other.exists());
}

const KILL_WORKFLOW: &str = r#"
[workflows.long]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.long.steps]]
id = "first"
run = "echo once >> trail.txt"

[[workflows.long.steps]]
id = "slow"
run = "echo slow-started; sleep 4; echo twice-not >> slow.txt"

[[workflows.long.steps]]
id = "ship"
commit = { branch = "smithers/long", message = "After a crash" }

[workflows.quick]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.quick.steps]]
id = "hi"
run = "echo hi"

[workflows.reach]
on = ["manual"]
policy = ".smithers/policy"
egress = ["localhost"]

[[workflows.reach.steps]]
id = "fetch"
run = "curl -sS -o /dev/null -w 'status %{http_code}\\n' http://example.org/"
"#;

const ALLOW_ALL: &str = "\
workflow run_command * -> allow
workflow write_file * -> allow
workflow create_commit smithers/* -> allow
workflow push_branch smithers/* -> allow
";

#[test]
fn a_run_killed_mid_step_is_resumed_by_the_next_run_without_repeating_a_call() {
    let home = tempfile::tempdir().unwrap();
    let (repo, remote) = repository(home.path(), KILL_WORKFLOW, ALLOW_ALL);
    let mut child = smithers_command(home.path(), &["run", "long", "--repo", &repo])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut id = String::new();
    until("the slow step to start", || {
        let Some(newest) = newest_run(home.path()) else {
            return false;
        };
        id = newest;
        let logs = smithers(home.path(), &["runs", "logs", &id]);
        // Its own output, not the kernel's decision that names it.
        text(&logs.stdout).contains("| slow-started")
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = show(home.path(), &id);
    assert_eq!(before["state"], "running", "{before:#}");
    assert_eq!(before["steps"][0]["state"], "succeeded");
    assert_eq!(before["steps"][1]["state"], "running");

    // The next `smithers run` takes the killed run up again, in the
    // background, and carries on with its own.
    let out = smithers(home.path(), &["run", "quick", "--repo", &repo]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(&format!(
            "resuming interrupted run {id} (long) in the background"
        )),
        "{}",
        text(&out.stderr)
    );
    until("the interrupted run to finish", || {
        show(home.path(), &id)["state"] == "succeeded"
    });
    let after = show(home.path(), &id);
    // The first step's call ran once: the resumed run started from the
    // snapshot it left, and the commit shows exactly one line from it.
    let firsts: Vec<_> = after["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["position"] == 0)
        .collect();
    assert_eq!(firsts.len(), 1, "{after:#}");
    assert_eq!(git(&remote, &["show", "smithers/long:trail.txt"]), "once");
    assert_eq!(
        git(&remote, &["show", "smithers/long:slow.txt"]),
        "twice-not"
    );
    assert_eq!(after["purge"]["clean"], true);
    // The audit log tells the whole story and verifies.
    let out = smithers(home.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(home.path(), &["audit", "log", "--json"]);
    let log = text(&out.stdout);
    assert!(log.contains("run.resumed"), "{log}");
    let created = events_of(home.path(), "workspace.created", &id);
    assert_eq!(created.len(), 2, "{log}");
    // A finished run does not resume again.
    let out = smithers(home.path(), &["runs", "resume", &id]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("succeeded"));
}

const MODEL_KEY: &str = "sk-cli-model-3b7e";

fn model_workflow(server: &ModelServer) -> String {
    format!(
        r#"
[workflows.agent]
on = ["manual"]
secrets = [{{ name = "OPENAI_API_KEY", env = "dev" }}]
policy = ".smithers/policy"

[[workflows.agent.steps]]
id = "work"
agent = {{ role = "implementer", driver = "openai", model = "test-model-1", base_url = "{}", prompt = "Leave a trail" }}

[[workflows.agent.steps]]
id = "ship"
commit = {{ branch = "smithers/agent", message = "The agent's trail" }}
"#,
        server.base_url()
    )
}

const MODEL_POLICY: &str = "\
implementer run_command * -> allow
implementer write_file * -> allow
workflow create_commit smithers/* -> allow
workflow push_branch smithers/* -> allow
";

/// `smithers` with the tests' keyring.
fn keyed(home: &Path, args: &[&str]) -> Command {
    let mut command = smithers_command(home, args);
    command.env("SECRET_ENCRYPTION_KEYS", KEYRING);
    command
}

#[test]
fn a_model_run_killed_mid_call_resumes_without_asking_the_model_again() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(ModelServer::start(
        Api::OpenAi,
        MODEL_KEY,
        vec![
            Say::Calls(vec![(
                "run_command",
                json!({"command": "echo once >> trail.txt"}),
            )]),
            Say::Calls(vec![(
                "run_command",
                json!({"command": "echo slow-started; sleep 4; echo after >> slow.txt"}),
            )]),
            Say::Text("left a trail"),
        ],
    ));
    let home = tempfile::tempdir().unwrap();
    let (repo, remote) = repository(home.path(), &model_workflow(&server), MODEL_POLICY);
    let out = smithers(home.path(), &["users", "add", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut set = keyed(
        home.path(),
        &["secrets", "set", "OPENAI_API_KEY", "--env", "dev"],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(MODEL_KEY.as_bytes())
        .unwrap();
    assert!(set.wait().unwrap().success());

    let mut child = keyed(
        home.path(),
        &["run", "agent", "--repo", &repo, "--as", "alice"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    // The key's release is an admin's to approve, from another shell.
    until("the secret's release to be asked", || {
        let out = smithers(home.path(), &["approvals", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        match list.as_array().and_then(|l| l.first()) {
            Some(a) => {
                let id = a["id"].as_str().unwrap();
                let out = keyed(home.path(), &["approvals", "approve", id])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", text(&out.stderr));
                true
            }
            None => false,
        }
    });
    let mut id = String::new();
    until("the model's slow command to start", || {
        let Some(newest) = newest_run(home.path()) else {
            return false;
        };
        id = newest;
        let calls = show(home.path(), &id)["tool_calls"].clone();
        calls[1]["state"] == "running"
    });
    // Well inside the command's four seconds.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(server.requests().len(), 2);

    let out = keyed(home.path(), &["runs", "resume", &id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let after = show(home.path(), &id);
    assert_eq!(after["state"], "succeeded", "{after:#}");
    // The two answers given before the kill were replayed from the store;
    // only the last one was asked for after it.
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.left(), 0);
    let turns = after["model_turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "{after:#}");
    // Replayed under the run's history key, which went when it ended.
    assert!(after["history_destroyed_at"].is_string(), "{after:#}");
    // The finished call ran once; the interrupted one ran again from the
    // snapshot taken before it.
    assert_eq!(git(&remote, &["show", "smithers/agent:trail.txt"]), "once");
    assert_eq!(git(&remote, &["show", "smithers/agent:slow.txt"]), "after");
    let logs = text(&smithers(home.path(), &["runs", "logs", &id]).stdout);
    assert!(
        logs.contains("replaying 2 recorded model answer(s)"),
        "{logs}"
    );
    // Its output streamed live both times: before the kill, and again.
    assert_eq!(logs.matches("| slow-started").count(), 2, "{logs}");
    assert!(!logs.contains(MODEL_KEY), "{logs}");
    let out = smithers(home.path(), &["runs", "show", &id]);
    assert!(
        text(&out.stdout).contains("model answers: 3")
            && text(&out.stdout).contains("their key was destroyed at"),
        "{}",
        text(&out.stdout)
    );
    let out = smithers(home.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_detached_run_keeps_the_sandbox_it_was_started_with() {
    let home = tempfile::tempdir().unwrap();
    let (repo, _) = repository(home.path(), KILL_WORKFLOW, ALLOW_ALL);
    let image = "smithers-run-cli-test:latest";
    let out = smithers(home.path(), &["sandbox", "image", "build", "--tag", image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(
        home.path(),
        &[
            "run",
            "quick",
            "--repo",
            &repo,
            "--detach",
            "--provider",
            "docker",
            "--image",
            image,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let sandbox = show(home.path(), &id)["sandbox"].clone();
    assert_eq!(sandbox["provider"], "docker");
    assert_eq!(sandbox["image"], image);
    until("the detached run to finish", || {
        show(home.path(), &id)["state"]
            .as_str()
            .is_some_and(|s| s != "queued" && s != "running")
    });
    let after = show(home.path(), &id);
    assert_eq!(after["state"], "succeeded", "{after:#}");
    // The process in the background carried it out on Docker, as asked,
    // not on the workflow's native provider.
    let created = events_of(home.path(), "workspace.created", &id);
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0]["details"]["provider"], "docker",
        "{:#}",
        created[0]
    );

    // An image without what a run needs is refused up front, plainly.
    let bare = "smithers-run-cli-test-bare:latest";
    let out = smithers(
        home.path(),
        &[
            "sandbox",
            "image",
            "build",
            "--tag",
            bare,
            "--no-defaults",
            "--program",
            "sh",
            "--program",
            "git",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(
        home.path(),
        &[
            "run",
            "quick",
            "--repo",
            &repo,
            "--provider",
            "docker",
            "--image",
            bare,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the sandbox (docker) has no tar")
            && stderr.contains("sandbox image build"),
        "{stderr}"
    );
}

#[test]
fn a_workflow_sandboxs_connections_are_audited() {
    let home = tempfile::tempdir().unwrap();
    let (repo, _) = repository(home.path(), KILL_WORKFLOW, ALLOW_ALL);
    let out = smithers(home.path(), &["run", "reach", "--repo", &repo, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let logs = text(&smithers(home.path(), &["runs", "logs", run["id"].as_str().unwrap()]).stdout);
    // The proxy refused a host the workflow does not name...
    assert!(logs.contains("| status 403"), "{logs}");
    assert!(
        text(&out.stderr).contains("egress REFUSED example.org:80"),
        "{}",
        text(&out.stderr)
    );
    // ...and the refusal is in the audit log, which verifies.
    let out = smithers(home.path(), &["audit", "log", "--json"]);
    let log = text(&out.stdout);
    assert_eq!(log.matches("sandbox.egress.refused").count(), 1, "{log}");
    assert!(log.contains("example.org:80"), "{log}");
    let out = smithers(home.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

const GATE_WORKFLOW: &str = r#"
[workflows.gated]
on = ["manual"]
policy = ".smithers/policy"

[[workflows.gated.steps]]
id = "ask"
approval = { message = "Deploy the thing?" }

[[workflows.gated.steps]]
id = "after"
run = "echo approved-and-ran"
"#;

#[test]
fn approvals_are_decided_from_another_shell_and_never_by_the_starter() {
    let home = tempfile::tempdir().unwrap();
    let (repo, _) = repository(home.path(), GATE_WORKFLOW, ALLOW_ALL);
    let out = smithers(home.path(), &["users", "add", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(
        home.path(),
        &["run", "gated", "--repo", &repo, "--detach", "--as", "alice"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let mut approval = String::new();
    until("the approval to be asked", || {
        let out = smithers(home.path(), &["approvals", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        match list.as_array().and_then(|l| l.first()) {
            Some(a) => {
                approval = a["id"].as_str().unwrap().to_string();
                true
            }
            None => false,
        }
    });
    let out = smithers(home.path(), &["approvals", "show", &approval]);
    assert!(text(&out.stdout).contains("Deploy the thing?"));
    assert!(text(&out.stdout).contains(&id));
    // The starter cannot approve their own run.
    let out = smithers(
        home.path(),
        &["approvals", "approve", &approval, "--as", "alice"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // A rejection needs a reason.
    let out = smithers(home.path(), &["approvals", "reject", &approval]);
    assert_eq!(out.status.code(), Some(2));
    let out = smithers(
        home.path(),
        &["approvals", "approve", &approval, "--comment", "go"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = smithers(home.path(), &["approvals", "approve", &approval]);
    assert_eq!(out.status.code(), Some(4), "decided once");
    let out = smithers(home.path(), &["runs", "logs", &id, "--follow"]);
    let log = text(&out.stdout);
    assert!(log.contains("approved-and-ran"), "{log}");
    assert!(log.contains("approved by admin"), "{log}");
    assert_eq!(show(home.path(), &id)["state"], "succeeded");

    // A second run waiting for its approval is cancelled: its process
    // stops, and the approval is withdrawn.
    let out = smithers(
        home.path(),
        &["run", "gated", "--repo", &repo, "--detach", "--as", "alice"],
    );
    let second = text(&out.stdout).trim().to_string();
    until("the second run to wait", || {
        show(home.path(), &second)["state"] == "waiting_approval"
    });
    let out = smithers(home.path(), &["runs", "cancel", &second, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cancelled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["stopped_by_its_process"], true);
    until("the run's process to settle it", || {
        show(home.path(), &second)["steps"][0]["state"] == "cancelled"
    });
    let after = show(home.path(), &second);
    assert_eq!(after["approvals"][0]["state"], "expired", "{after:#}");
    assert_eq!(after["purge"]["clean"], true, "{after:#}");
    let out = smithers(home.path(), &["approvals", "list", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}

#[test]
fn a_malformed_workflow_file_starts_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (repo, _) = repository(
        home.path(),
        "[workflows.bad]\non = [\"manual\"]\n\n[[workflows.bad.steps]]\nid = \"x\"\nrun = \"true\"\nretires = 2\n",
        ALLOW_ALL,
    );
    let out = smithers(home.path(), &["run", "bad", "--repo", &repo]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("smithers.toml:7:1"), "{stderr}");
    assert!(stderr.contains("retries"), "{stderr}");
    let out = smithers(home.path(), &["runs", "list", "--all", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");
}
