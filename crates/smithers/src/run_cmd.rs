//! `smithers run`, `smithers runs …` and `smithers approvals …`: start a
//! workflow and follow it, look at runs, resume and cancel them, and
//! decide what they wait for.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use smithers_app::Principal;
use smithers_engine::run::{Definition, Engine, StartRun};
use smithers_engine::workflow::ProviderKind;
use smithers_store::{Approval, ApprovalState, DataDir, Run, RunState};

use crate::context::{self, ActorArgs, StateArgs};
use crate::progress::RunProgress;
use crate::{approvals_cmd, render, sandbox_cmd};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    Native,
    Docker,
}

/// Where a run's sandbox comes from (default: the workflow's `provider`).
#[derive(Debug, Clone, Args)]
pub struct ProviderArgs {
    /// Override the workflow's sandbox provider (a run keeps the one it started with).
    #[arg(long, value_enum)]
    provider: Option<ProviderArg>,
    /// The Docker image (default: smithers-sandbox:latest).
    #[arg(long)]
    image: Option<String>,
}

impl ProviderArgs {
    fn kind(&self) -> Option<ProviderKind> {
        self.provider.map(|p| match p {
            ProviderArg::Native => ProviderKind::Native,
            ProviderArg::Docker => ProviderKind::Docker,
        })
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 the run succeeded (or was detached), 1 it failed, timed out or was cancelled, 2 error.
Secrets named by the workflow need SECRET_ENCRYPTION_KEYS and an admin's approval of the run.")]
pub struct RunArgs {
    /// The workflow's name in smithers.toml.
    workflow: String,
    /// The repository (default: the current directory).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Start the run in the background and return its id.
    #[arg(long)]
    detach: bool,
    /// On a terminal, ask inline for approvals and decide them as this user
    /// (who must not be the one starting the run).
    #[arg(long, value_name = "USER")]
    approver: Option<String>,
    /// Print the finished run as JSON instead of following it.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    provider: ProviderArgs,
    #[command(flatten)]
    actor: ActorArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Runs, newest first (active ones only unless --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// A run: its steps, tool calls (with the kernel's decisions) and approvals.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A run's log (redacted); --follow waits for more until the run ends.
    Logs {
        id: String,
        #[arg(long, short)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Carry on an interrupted run from its last finished call.
    Resume {
        id: String,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Cancel a run that has not finished: its process stops it at once and destroys its
    /// sandbox; a run nobody is carrying out is closed here (steps cancelled, approvals withdrawn).
    Cancel {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// The store, the runs and (with a keyring) the secrets of one command.
/// The application, shared with the task that follows a run's log.
pub struct Opened {
    app: Arc<smithers_app::App>,
}

/// Opens the application (the store, the signing key, the engine with the
/// secrets service when `SECRET_ENCRYPTION_KEYS` is set).
pub async fn open(state: &StateArgs) -> Result<Opened> {
    Ok(Opened {
        app: Arc::new(context::open_app(state).await?),
    })
}

impl Opened {
    pub fn engine(&self) -> &Engine {
        self.app.engine()
    }

    pub async fn close(self) {
        self.app.deliver_audit().await;
        self.app.store().close().await;
    }
}

/// Carries out a run in the sandbox its workflow names (or `choice`).
/// Carries out run `id` in the sandbox chosen when it started (or the
/// workflow's), unless `choice` names another. A workflow that names
/// hosts has each of its sandbox's connections audited, as `sandbox run`
/// does.
pub async fn execute(opened: &Opened, id: &str, choice: &ProviderArgs) -> Result<Run> {
    let engine = opened.engine();
    let run = engine.runs.get(id).await?;
    let definition = Definition::from_json(&run.definition)?;
    let workflow = definition.workflow()?;
    let kind = choice
        .kind()
        .unwrap_or_else(|| definition.provider_for(&workflow));
    let image = choice.image.as_deref().or(definition.image.as_deref());
    let audit = if workflow.egress.is_empty() {
        None
    } else {
        Some(context::audit_log(
            opened.app.store(),
            context::signer(opened.app.dir())?,
        ))
    };
    let recorder = audit
        .as_ref()
        .map(|(log, _)| sandbox_cmd::audited_egress(log.clone(), &run.organization_id));
    let done = match kind {
        ProviderKind::Native => {
            let provider = sandbox_cmd::native_provider(recorder)?;
            engine.execute(&provider, id).await
        }
        ProviderKind::Docker => {
            let provider = sandbox_cmd::docker_provider(recorder, image).await?;
            engine.execute(&provider, id).await
        }
    };
    if let Some((log, writer)) = audit {
        drop(log);
        writer.join().await;
    }
    Ok(done?)
}

fn exit_for(run: &Run) -> ExitCode {
    if run.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Starts `smithers runs resume ID` in the background, its output in the
/// run's directory.
fn spawn_resume(dir: &DataDir, state: &StateArgs, actor: &ActorArgs, id: &str) -> Result<PathBuf> {
    use std::os::unix::process::CommandExt as _;
    let exe = std::env::current_exe().context("cannot find the smithers binary")?;
    let logs = dir.path().join("runs");
    std::fs::create_dir_all(&logs)?;
    let out_path = logs.join(format!("{id}.out"));
    let out = std::fs::File::create(&out_path)?;
    let mut command = std::process::Command::new(exe);
    command.arg("--data-dir").arg(dir.path());
    if let Some(url) = &state.database_url {
        command.env("SMITHERS_DATABASE_URL", url);
    }
    command
        .args([
            "runs",
            "--org",
            &actor.org,
            "--as",
            &actor.user,
            "resume",
            id,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context("cannot start the run in the background")?;
    Ok(out_path)
}

pub fn run(args: RunArgs, state: &StateArgs) -> Result<ExitCode> {
    context::runtime()?.block_on(async {
        let opened = open(state).await?;
        let engine = opened.engine().clone();
        // Runs a killed process left behind carry on, in the background.
        for lost in engine.interrupted(&args.actor.org).await? {
            let out = spawn_resume(opened.app.dir(), state, &args.actor, &lost.id)?;
            eprintln!(
                "resuming interrupted run {} ({}) in the background; output in {}",
                lost.id,
                lost.workflow,
                out.display()
            );
        }
        // Who decides inline: a user of the organization (known before the
        // run is created), decided on by the service layer like any other
        // approver.
        let approver = match &args.approver {
            Some(user) => Some(
                opened
                    .app
                    .principal(&args.actor.org, user, smithers_app::Via::Cli)
                    .await?,
            ),
            None => None,
        };
        let run = engine
            .start(StartRun {
                organization_id: &args.actor.org,
                requested_by: &args.actor.user,
                repo: &args.repo,
                workflow: &args.workflow,
                trigger: "manual",
                provider: args.provider.kind(),
                image: args.provider.image.as_deref(),
            })
            .await?;
        if args.detach {
            let out = spawn_resume(opened.app.dir(), state, &args.actor, &run.id)?;
            if args.json {
                render::print_json(&json!({"id": run.id, "state": "queued", "output": out}));
            } else {
                outln!("{}", run.id);
                eprintln!(
                    "run {} of {} started in the background; follow it with `smithers runs logs {} --follow`",
                    run.id, run.workflow, run.id
                );
            }
            opened.close().await;
            return Ok(ExitCode::SUCCESS);
        }
        if !args.json {
            eprintln!("run {} of workflow {} ({})", run.id, run.workflow, run.repository);
        }
        let follower = (!args.json).then(|| {
            let app = opened.app.clone();
            let id = run.id.clone();
            tokio::spawn(async move { follow(&app, &id, approver.as_ref()).await })
        });
        let done = execute(&opened, &run.id, &args.provider).await;
        if let Some(follower) = follower {
            // The follower stops on its own once it has printed the end.
            let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
        }
        let done = done?;
        if args.json {
            render::print_json(&run_json(&engine, &done).await?);
        } else {
            summary(&done);
        }
        opened.close().await;
        Ok(exit_for(&done))
    })
}

fn summary(run: &Run) {
    match &run.error {
        None => eprintln!("run {} {}", run.id, run.state),
        Some(e) => eprintln!("run {} {}: {e}", run.id, run.state),
    }
}

/// Prints the run's log as it grows until the run ends, under a live
/// progress line on a terminal; with an approver and a terminal, asks
/// inline for what the run waits for.
async fn follow(app: &smithers_app::App, id: &str, approver: Option<&Principal>) -> Result<()> {
    let progress = RunProgress::new();
    let followed = follow_with(app, id, approver, &progress).await;
    progress.finish();
    followed
}

async fn follow_with(
    app: &smithers_app::App,
    id: &str,
    approver: Option<&Principal>,
    progress: &RunProgress,
) -> Result<()> {
    let engine = app.engine();
    let mut tail = LogTail::new(false);
    let inline = approver.is_some() && std::io::stdin().is_terminal();
    let mut told = false;
    loop {
        // The state before the lines: a run seen finished has logged all.
        let run = engine.runs.get(id).await?;
        let printed = tail.print_new_above(engine, id, Some(progress)).await?;
        if run.state.is_finished() && printed == 0 {
            return Ok(());
        }
        // The steps are read only for a line someone sees.
        if progress.is_drawn() {
            progress.show(&run, &engine.runs.steps(id).await?);
        }
        if run.state == RunState::WaitingApproval {
            let pending: Vec<Approval> = engine
                .runs
                .approvals_of_run(id)
                .await?
                .into_iter()
                .filter(|a| a.state == ApprovalState::Pending)
                .collect();
            match (inline, approver) {
                (true, Some(approver)) => {
                    progress.pause();
                    for approval in pending {
                        approvals_cmd::prompt(app, approver, &approval).await?;
                    }
                    progress.resume();
                }
                _ if !told && !pending.is_empty() => {
                    progress.print(|| {
                        eprintln!(
                            "waiting: approve from another shell with `smithers approvals approve ID --as USER` (a user other than {})",
                            run.requested_by
                        );
                    });
                    told = true;
                }
                _ => {}
            }
        }
        if printed == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Asks `question` on stderr and reads one line from stdin.
pub async fn ask_line(question: String) -> Result<String> {
    Ok(tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??)
}

/// Prints a run's log from where it last stopped.
pub struct LogTail {
    after: u64,
    json: bool,
}

impl LogTail {
    pub fn new(json: bool) -> LogTail {
        LogTail { after: 0, json }
    }

    /// Prints every line logged since the last call; returns how many.
    pub async fn print_new(&mut self, engine: &Engine, id: &str) -> Result<usize> {
        self.print_new_above(engine, id, None).await
    }

    /// [`Self::print_new`], above a live progress line if there is one.
    async fn print_new_above(
        &mut self,
        engine: &Engine,
        id: &str,
        progress: Option<&RunProgress>,
    ) -> Result<usize> {
        const PAGE: u32 = 1000;
        let mut printed = 0;
        loop {
            let lines = engine.runs.logs(id, self.after, PAGE).await?;
            let print = || {
                for line in &lines {
                    if self.json {
                        outln!(
                            "{}",
                            json!({"seq": line.seq, "position": line.position, "stream": line.stream.as_str(), "at": line.at, "text": line.text})
                        );
                    } else {
                        print_line(line);
                    }
                }
            };
            match progress {
                Some(progress) if !lines.is_empty() => progress.print(print),
                _ => print(),
            }
            if let Some(last) = lines.last() {
                self.after = last.seq;
            }
            printed += lines.len();
            if lines.len() < PAGE as usize {
                return Ok(printed);
            }
        }
    }
}

/// Prints a run's log as it grows, until the run has ended.
pub async fn follow_log(engine: &Engine, id: &str, json: bool) -> Result<()> {
    let mut tail = LogTail::new(json);
    loop {
        let finished = engine.runs.state(id).await?.is_finished();
        if tail.print_new(engine, id).await? == 0 {
            if finished {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn print_line(line: &smithers_store::LogLine) {
    match line.stream {
        smithers_store::LogStream::Smithers => outln!("» {}", line.text),
        smithers_store::LogStream::Stderr => outln!("  ! {}", line.text),
        smithers_store::LogStream::Stdout => outln!("  | {}", line.text),
    }
}

pub fn time(micros: Option<i64>) -> Value {
    micros.map_or(Value::Null, |t| render::rfc3339(t).into())
}

async fn run_json(engine: &Engine, run: &Run) -> Result<Value> {
    let steps = engine.runs.steps(&run.id).await?;
    let calls = engine.runs.tool_calls(&run.id).await?;
    let approvals = engine.runs.approvals_of_run(&run.id).await?;
    let turns = engine.runs.all_model_turns(&run.id).await?;
    let definition = Definition::from_json(&run.definition)?;
    Ok(json!({
        "id": run.id,
        "workflow": run.workflow,
        "repository": run.repository,
        "trigger": run.trigger,
        "requested_by": run.requested_by,
        "state": run.state.as_str(),
        "error": run.error,
        "created_at": time(Some(run.created_at)),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "sandbox": {
            "provider": definition.provider_for(&definition.workflow()?).as_str(),
            "image": definition.image,
        },
        "policies": {
            "repository": definition.policy_name,
            "organization_version": definition.org_policy.as_ref().map(|o| o.version),
        },
        "purge": run.purge,
        "steps": steps.iter().map(|s| json!({
            "position": s.position,
            "id": s.step_id,
            "kind": s.kind,
            "state": s.state.as_str(),
            "attempts": s.attempts,
            "exit_code": s.exit_code,
            "error": s.error,
        })).collect::<Vec<_>>(),
        "tool_calls": calls.iter().map(|c| json!({
            "position": c.key.position,
            "attempt": c.key.attempt,
            "seq": c.key.seq,
            "tool": c.tool,
            "subject": c.subject,
            "arguments": c.arguments,
            "decision": c.decision,
            "state": c.state.as_str(),
            "approval": c.approval_id,
            "ok": c.result.as_ref().map(|r| r.ok),
        })).collect::<Vec<_>>(),
        "model_turns": turns.iter().map(|t| json!({
            "position": t.position,
            "attempt": t.attempt,
            "turn": t.turn,
            "driver": t.driver,
            "model": t.model,
            "calls": t.calls,
            "input_tokens": t.input_tokens,
            "output_tokens": t.output_tokens,
            "at": time(Some(t.created_at)),
        })).collect::<Vec<_>>(),
        "approvals": approvals.iter().map(|a| approvals_cmd::approval_json(a, &run.workflow)).collect::<Vec<_>>(),
    }))
}

fn show_text(run: &Value) {
    outln!(
        "run {}  {}  {}",
        run["id"].as_str().unwrap_or_default(),
        run["workflow"].as_str().unwrap_or_default(),
        run["state"].as_str().unwrap_or_default()
    );
    outln!(
        "  repository: {}",
        run["repository"].as_str().unwrap_or_default()
    );
    outln!(
        "  started by: {}",
        run["requested_by"].as_str().unwrap_or_default()
    );
    let policies = &run["policies"];
    outln!(
        "  policy:     {}{}",
        policies["repository"].as_str().unwrap_or_default(),
        policies["organization_version"]
            .as_u64()
            .map(|v| format!(", bounded by the organization's policy version {v}"))
            .unwrap_or_default()
    );
    if let Some(e) = run["error"].as_str() {
        outln!("  error:      {e}");
    }
    outln!("steps:");
    for s in run["steps"].as_array().into_iter().flatten() {
        outln!(
            "  {:<16} {:<9} {:<17} attempts {}{}",
            s["id"].as_str().unwrap_or_default(),
            s["kind"].as_str().unwrap_or_default(),
            s["state"].as_str().unwrap_or_default(),
            s["attempts"],
            s["error"]
                .as_str()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    outln!("tool calls:");
    for c in run["tool_calls"].as_array().into_iter().flatten() {
        outln!(
            "  step {} #{}  {} {} → {} ({}){}",
            c["position"],
            c["seq"],
            c["subject"].as_str().unwrap_or_default(),
            c["tool"].as_str().unwrap_or_default(),
            c["decision"]["decision"].as_str().unwrap_or_default(),
            c["state"].as_str().unwrap_or_default(),
            c["decision"]["rule"]["text"]
                .as_str()
                .map(|r| format!("  rule: {r}"))
                .unwrap_or_default()
        );
    }
    let turns = run["model_turns"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !turns.is_empty() {
        let tokens = |name: &str| -> u64 { turns.iter().filter_map(|t| t[name].as_u64()).sum() };
        outln!(
            "model answers: {} ({} tokens in, {} out; recorded, replayed on resume)",
            turns.len(),
            tokens("input_tokens"),
            tokens("output_tokens")
        );
        for t in turns {
            outln!(
                "  step {} answer {}  {} {}  {} call(s)",
                t["position"],
                t["turn"].as_u64().unwrap_or_default() + 1,
                t["driver"].as_str().unwrap_or_default(),
                t["model"].as_str().unwrap_or_default(),
                t["calls"]
            );
        }
    }
    outln!("approvals:");
    for a in run["approvals"].as_array().into_iter().flatten() {
        outln!(
            "  {}  {}  {}{}",
            a["id"].as_str().unwrap_or_default(),
            a["state"].as_str().unwrap_or_default(),
            a["summary"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default(),
            a["decided_by"]
                .as_str()
                .map(|d| format!("  (by {d})"))
                .unwrap_or_default()
        );
    }
    if let Some(purge) = run["purge"].as_object() {
        outln!(
            "sandbox purge: {}",
            if purge.get("clean") == Some(&Value::Bool(true)) {
                "clean"
            } else {
                "NOT clean"
            }
        );
    }
}

pub fn runs(args: RunsArgs, state: &StateArgs) -> Result<ExitCode> {
    context::runtime()?.block_on(async {
        let opened = open(state).await?;
        let engine = opened.engine();
        let org = &args.actor.org;
        let code = match args.command {
            RunsCommand::List { all, limit, json } => {
                let runs = engine.runs.list(org, !all, limit).await?;
                if json {
                    render::print_json(&Value::Array(
                        runs.iter()
                            .map(|r| json!({
                                "id": r.id, "workflow": r.workflow, "state": r.state.as_str(),
                                "requested_by": r.requested_by, "created_at": time(Some(r.created_at)),
                                "error": r.error,
                            }))
                            .collect(),
                    ));
                } else if runs.is_empty() {
                    eprintln!("no {}runs", if all { "" } else { "active " });
                } else {
                    for r in runs {
                        outln!(
                            "{}  {:<16} {:<17} {}  {}",
                            r.id,
                            r.workflow,
                            r.state.as_str(),
                            render::rfc3339(r.created_at),
                            r.requested_by
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            RunsCommand::Show { id, json } => {
                let run = in_org(engine, org, &id).await?;
                let shown = run_json(engine, &run).await?;
                if json {
                    render::print_json(&shown);
                } else {
                    show_text(&shown);
                }
                ExitCode::SUCCESS
            }
            RunsCommand::Logs { id, follow: keep, json } => {
                in_org(engine, org, &id).await?;
                if keep {
                    follow_log(engine, &id, json).await?;
                } else {
                    LogTail::new(json).print_new(engine, &id).await?;
                }
                ExitCode::SUCCESS
            }
            RunsCommand::Resume { id, provider } => {
                in_org(engine, org, &id).await?;
                let done = execute(&opened, &id, &provider).await?;
                summary(&done);
                exit_for(&done)
            }
            RunsCommand::Cancel { id, json } => {
                in_org(engine, org, &id).await?;
                let run = engine.cancel(&id, &args.actor.user).await?;
                let live = run
                    .owner
                    .as_deref()
                    .is_some_and(|o| !smithers_sandbox::owner::is_gone(o));
                if json {
                    render::print_json(&json!({"id": run.id, "state": run.state.as_str(), "stopped_by_its_process": live}));
                } else if live {
                    eprintln!("run {} cancelled; the process carrying it out stops it and destroys its sandbox", run.id);
                } else {
                    eprintln!("run {} cancelled; nothing was carrying it out, so its steps and approvals are closed here", run.id);
                }
                ExitCode::SUCCESS
            }
        };
        opened.close().await;
        Ok(code)
    })
}

async fn in_org(engine: &Engine, org: &str, id: &str) -> Result<Run> {
    let run = engine.runs.get(id).await?;
    if run.organization_id != org {
        bail!("no run {id} in {org}");
    }
    Ok(run)
}
