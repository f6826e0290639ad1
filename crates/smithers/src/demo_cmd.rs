//! `smithers demo`: everything at once on a sample repository, in a
//! directory of its own (its own store, its own throwaway keyring): a
//! scripted agent reads files and proposes a patch (a human approves), the
//! tests run in the native sandbox with a secret in their environment
//! (redacted in the output), a push to `main` is denied, the work is
//! committed to a `smithers/…` branch of a bare remote, and the audit log
//! is verified.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use clap::Args;
use smithers_api::{ApprovalState, Role, RunState, ToolCallState};
use smithers_app::{App, Execution, NewRun, Principal, Via};
use smithers_secrets::SecretValue;
use smithers_store::DEFAULT_ORGANIZATION;

use crate::context::{self, StateArgs};

/// Marks a directory as the demo's, so that running it again may replace it.
const MARKER: &str = ".smithers-demo";
const STARTER: &str = "developer";
const REVIEWER: &str = "admin";

#[derive(Debug, Args)]
#[command(after_help = "\
Everything lives in DIR: the sample repository, a bare remote, and the demo's own store
(look around with `smithers --data-dir DIR/state runs show ID` or `audit log`).
Exit status: 0 the run went as the demo expects, 1 it did not, 2 error.")]
pub struct DemoArgs {
    /// Where the demo puts everything (replaced if an earlier demo made it).
    #[arg(long, default_value = "smithers-demo")]
    dir: PathBuf,
    /// Approve what the run asks without prompting (as the demo's reviewer).
    #[arg(long, short)]
    yes: bool,
}

const WORKFLOW: &str = r#"# The demo's workflow: an agent fixes a bug, the tests run, the fix is committed.
[workflows.fix-answer]
description = "Fix the answer and ship it on a smithers/ branch"
on = ["manual"]
secrets = [{ name = "API_TOKEN", env = "dev" }]   # the tests' environment gets it; the log never shows it
timeout = "10m"
policy = ".smithers/policy"

[[workflows.fix-answer.steps]]
id = "fix"
agent = { role = "implementer", driver = "scripted", script = ".smithers/agents/fix.json", prompt = "Make the tests pass" }

[[workflows.fix-answer.steps]]
id = "test"
run = "sh test.sh"
if = "fix.succeeded"

[[workflows.fix-answer.steps]]
id = "ship"
commit = { branch = "smithers/fix-answer", message = "Fix the answer to 42" }
"#;

const POLICY: &str = "\
# Who may do what in this repository.
implementer read_file * -> allow
implementer list_directory * -> allow
implementer apply_patch * -> ask           # a human reads every patch
implementer push_branch * -> ask           # and main is refused whatever the rules say
workflow run_command \"sh test.sh\" -> allow
workflow create_commit smithers/* -> allow
workflow push_branch smithers/* -> allow
";

const SCRIPT: &str = r#"{
  "calls": [
    {"tool": "list_directory", "arguments": {"path": "src"}, "expect": "ok"},
    {"tool": "read_file", "arguments": {"path": "src/answer.txt"}, "expect": "ok"},
    {"tool": "apply_patch", "arguments": {"patch": "--- a/src/answer.txt\n+++ b/src/answer.txt\n@@ -1 +1 @@\n-41\n+42\n"}, "expect": "ok"},
    {"tool": "push_branch", "arguments": {"branch": "main"}, "expect": "denied"}
  ],
  "summary": "patched src/answer.txt; pushing to main was refused, as it should be"
}
"#;

const TEST: &str = "\
#!/bin/sh
# The sample project's tests. They use an API token from the environment.
echo \"calling the API with token $API_TOKEN\"
answer=$(cat src/answer.txt)
if [ \"$answer\" != 42 ]; then echo \"expected 42, got $answer\" >&2; exit 1; fi
echo 'all tests passed'
";

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=Demo", "-c", "user.email=demo@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run git (install it: apt-get install git)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The sample repository (committed on main, pushed to a bare remote).
fn prepare(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    if dir.exists() {
        if !dir.join(MARKER).exists() && std::fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} exists and is not a demo directory: choose another with --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    std::fs::write(dir.join(MARKER), "made by `smithers demo`\n")?;
    let repo = dir.join("repo");
    for (path, text) in [
        (
            "README.md",
            "# answer\n\nA tiny project whose test fails.\n",
        ),
        ("src/answer.txt", "41\n"),
        ("test.sh", TEST),
        ("smithers.toml", WORKFLOW),
        (".smithers/policy", POLICY),
        (".smithers/agents/fix.json", SCRIPT),
    ] {
        let path = repo.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["add", "-A"])?;
    git(&repo, &["commit", "-q", "-m", "A project whose test fails"])?;
    let remote = dir.join("remote.git");
    git(&dir, &["init", "-q", "--bare", "-b", "main", "remote.git"])?;
    git(
        &repo,
        &["remote", "add", "origin", &remote.display().to_string()],
    )?;
    git(&repo, &["push", "-q", "origin", "main"])?;
    Ok((repo, remote))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes)
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!("the demo asks for approvals and there is no terminal to ask on: pass --yes");
    }
    let (repo, remote) = prepare(&args.dir)?;
    let dir = repo.parent().unwrap_or(&repo).to_path_buf();
    let state = StateArgs {
        data_dir: Some(dir.join("state")),
        database_url: None,
    };
    say(&format!("sample repository: {}", repo.display()));
    say(&format!("bare remote:       {}", remote.display()));
    context::runtime()?.block_on(async {
        // A throwaway key for the demo's one secret, never written anywhere.
        let key = base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()?);
        let mut config = context::app_config(&state);
        config.database_url = None;
        config.keyring = Some(format!("demo:{key}"));
        let app = Arc::new(context::open_config(config).await?);
        let reviewer = app
            .principal(DEFAULT_ORGANIZATION, REVIEWER, Via::Cli)
            .await?;
        app.users().add(&reviewer, STARTER, Role::Member).await?;
        let starter = app
            .principal(DEFAULT_ORGANIZATION, STARTER, Via::Cli)
            .await?;
        let token = format!(
            "demo-{}",
            hex::encode(random_bytes::<12>()?)
        );
        app.secrets()
            .set(
                &reviewer,
                "dev",
                "API_TOKEN",
                &SecretValue::from(token.as_str()),
                None,
            )
            .await?;
        say("stored the secret API_TOKEN (dev), envelope-encrypted");
        let run = app
            .runs()
            .start(
                &starter,
                NewRun {
                    repo: &repo,
                    workflow: "fix-answer",
                    trigger: "manual",
                    provider: None,
                    image: None,
                    roots: None,
                    pinned: None,
                },
            )
            .await?;
        say(&format!(
            "run {} of workflow fix-answer, started by {STARTER}; approvals go to {REVIEWER}",
            run.id
        ));
        let decider = {
            let (app, reviewer) = (app.clone(), reviewer.clone());
            let id = run.id.clone();
            let yes = args.yes;
            tokio::spawn(async move { decide_all(&app, &reviewer, &id, yes).await })
        };
        let follower = {
            let (app, reviewer) = (app.clone(), reviewer.clone());
            let id = run.id.clone();
            tokio::spawn(async move { crate::run_cmd::follow_log(&app, &reviewer, &id, false).await })
        };
        let done = app
            .runs()
            .execute(&starter, &run.id, Execution::default())
            .await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
        decider.abort();

        let shown = app.runs().show(&reviewer, &done.id).await?;
        let (calls, approvals) = (&shown.tool_calls, &shown.approvals);
        let denied: Vec<String> = calls
            .iter()
            .filter(|c| c.state == ToolCallState::Denied)
            .map(|c| format!("{} {}", c.tool, c.arguments))
            .collect();
        let logs = app.runs().logs(&reviewer, &done.id, 0, 100_000).await?;
        let leaked = logs.iter().any(|l| l.text.contains(&token));
        let masked = logs.iter().any(|l| l.text.contains("with token ***"));
        let pushed = git(&remote, &["rev-parse", "--verify", "-q", "smithers/fix-answer"]).ok();
        let main_file = git(&remote, &["show", "main:src/answer.txt"])?;
        let report = app.audit().verify(&reviewer, &[]).await?;
        if let Ok(app) = Arc::try_unwrap(app) {
            app.close().await;
        }

        outln!();
        outln!("What happened");
        outln!("  run:        {} {}", done.id, done.state);
        outln!(
            "  tool calls: {} decided by the kernel, {} denied ({})",
            calls.len(),
            denied.len(),
            denied.join("; ")
        );
        outln!(
            "  approvals:  {}",
            approvals
                .iter()
                .map(|a| format!(
                    "{} by {}",
                    a.state.as_str(),
                    a.decided_by.as_deref().unwrap_or("nobody")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        outln!(
            "  secret:     in the tests' environment; {} in the run log",
            if leaked { "LEAKED" } else if masked { "masked as ***" } else { "not seen" }
        );
        outln!(
            "  remote:     smithers/fix-answer at {}; main untouched (src/answer.txt is still {main_file})",
            pushed.as_deref().unwrap_or("(not pushed)")
        );
        outln!(
            "  sandbox:    {}",
            match shown.purge.as_ref().and_then(|p| p["clean"].as_bool()) {
                Some(true) => "destroyed, purge checked clean",
                _ => "purge NOT clean",
            }
        );
        for log in &report.organizations {
            match (log.intact, log.events) {
                (true, Some(events)) => {
                    outln!("  audit log:  {events} events verified, chain intact")
                }
                _ => outln!(
                    "  audit log:  verification FAILED at event {}: {}",
                    log.seq.unwrap_or_default(),
                    log.problem.as_deref().unwrap_or("?")
                ),
            }
        }
        outln!();
        outln!("Where to look");
        let state_dir = dir.join("state");
        outln!("  smithers --data-dir {} runs show {}", state_dir.display(), done.id);
        outln!("  smithers --data-dir {} runs logs {}", state_dir.display(), done.id);
        outln!("  smithers --data-dir {} audit log", state_dir.display());
        outln!("  git -C {} log --oneline smithers/fix-answer", remote.display());
        let as_expected = done.state == RunState::Succeeded
            && !leaked
            && masked
            && pushed.is_some()
            && main_file == "41"
            && denied.len() == 1
            && report.intact
            && approvals.iter().all(|a| a.state == ApprovalState::Approved);
        Ok(if as_expected { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

fn say(text: &str) {
    eprintln!("smithers demo: {text}");
}

/// Decides what the run asks, as the reviewer: with --yes at once, else
/// after asking on the terminal; woken when the run changes.
async fn decide_all(app: &App, reviewer: &Principal, run: &str, yes: bool) -> Result<()> {
    let mut changes = app.run_changes(run);
    loop {
        for approval in app.approvals().of_run(reviewer, run, true).await? {
            let approve = if yes {
                say(&format!("approving {} as {REVIEWER} (--yes)", approval.id));
                true
            } else {
                let answer = crate::run_cmd::ask_line(format!(
                    "\n{}\napprove as {REVIEWER}? [y/N] ",
                    approval.summary
                ))
                .await?;
                matches!(answer.trim(), "y" | "Y" | "yes")
            };
            let comment = (!approve).then_some("rejected at the demo's prompt");
            app.approvals()
                .decide(reviewer, &approval.id, approve, comment)
                .await?;
        }
        changes.changed().await;
    }
}
