//! `smithers run`, `smithers runs …` and `smithers approvals …`: start a
//! workflow and follow it, look at runs, resume and cancel them, and
//! decide what they wait for.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use smithers_api::{Error, Launched, LogLine, LogStream, Run, RunState, RunSummary};
use smithers_app::{App, BoxFuture, Execution, NewRun, Principal, RunLauncher, Via};
use smithers_engine::workflow::ProviderKind;

use crate::context::{self, ActorArgs, StateArgs};
use crate::progress::RunProgress;
use crate::render::{print_json_of, rfc3339};
use crate::{approvals_cmd, sandbox_cmd};

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

/// Where this command's run is carried out: the provider and image asked
/// for, and each egress decision printed on stderr.
pub fn execution(choice: &ProviderArgs) -> Execution {
    Execution {
        provider: choice.kind(),
        image: choice.image.clone(),
        egress_observer: Some(sandbox_cmd::print_egress()),
    }
}

fn exit_for(run: &RunSummary) -> ExitCode {
    if run.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Launches runs the way the command line does: `smithers runs resume ID`
/// started in the background as the same user, its output in the run's
/// directory.
struct BackgroundProcess {
    data_dir: PathBuf,
    database_url: Option<String>,
}

impl RunLauncher for BackgroundProcess {
    fn launch<'a>(
        &'a self,
        principal: &'a Principal,
        run: &'a RunSummary,
    ) -> BoxFuture<'a, Result<Launched, Error>> {
        Box::pin(async move {
            let unavailable =
                |e: std::io::Error| Error::unavailable(format!("cannot start run {}: {e}", run.id));
            let exe = std::env::current_exe().map_err(unavailable)?;
            let logs = self.data_dir.join("runs");
            tokio::fs::create_dir_all(&logs)
                .await
                .map_err(unavailable)?;
            let out_path = logs.join(format!("{}.out", run.id));
            let out = tokio::fs::File::create(&out_path)
                .await
                .map_err(unavailable)?
                .into_std()
                .await;
            let mut command = tokio::process::Command::new(exe);
            command.arg("--data-dir").arg(&self.data_dir);
            if let Some(url) = &self.database_url {
                command.env("SMITHERS_DATABASE_URL", url);
            }
            command
                .args([
                    "runs",
                    "--org",
                    &principal.organization,
                    "--as",
                    &principal.user,
                    "resume",
                    &run.id,
                ])
                .stdin(std::process::Stdio::null())
                .stdout(out.try_clone().map_err(unavailable)?)
                .stderr(out)
                .process_group(0)
                .kill_on_drop(false)
                .spawn()
                .map_err(unavailable)?;
            Ok(Launched {
                id: run.id.clone(),
                state: run.state,
                output: Some(out_path.display().to_string()),
            })
        })
    }
}

fn launcher(app: &App, state: &StateArgs) -> BackgroundProcess {
    BackgroundProcess {
        data_dir: app.data_dir().to_path_buf(),
        database_url: state.database_url.clone().filter(|u| !u.is_empty()),
    }
}

pub fn run(args: RunArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(start(args, state))
}

async fn start(args: RunArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = Arc::new(context::open_app(state).await?);
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let runs = app.runs();
    let launcher = launcher(&app, state);
    // Runs a killed process left behind carry on, in the background.
    for (lost, launched) in runs.resume_interrupted(&principal, &launcher).await? {
        eprintln!(
            "resuming interrupted run {} ({}) in the background; output in {}",
            lost.id,
            lost.workflow,
            launched.output.as_deref().unwrap_or("its run directory")
        );
    }
    // Who decides inline: a user of the organization (known before the run
    // is created), decided on by the service layer like any other approver.
    let approver = match &args.approver {
        Some(user) => Some(app.principal(&args.actor.org, user, Via::Cli).await?),
        None => None,
    };
    let run = runs
        .start(
            &principal,
            NewRun {
                repo: &args.repo,
                workflow: &args.workflow,
                trigger: "manual",
                provider: args.provider.kind(),
                image: args.provider.image.as_deref(),
                roots: None,
                pinned: None,
            },
        )
        .await?;
    if args.detach {
        let launched = runs.launch(&principal, &run.id, &launcher).await?;
        if args.json {
            print_json_of(&launched);
        } else {
            outln!("{}", run.id);
            eprintln!(
                "run {} of {} started in the background; follow it with `smithers runs logs {} --follow`",
                run.id, run.workflow, run.id
            );
        }
        close(app).await;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        let shown = runs.show(&principal, &run.id).await?;
        eprintln!(
            "run {} of workflow {} ({})",
            run.id, run.workflow, shown.repository
        );
    }
    let follower = (!args.json).then(|| {
        let app = app.clone();
        let (principal, id) = (principal.clone(), run.id.clone());
        tokio::spawn(async move { follow(&app, &principal, &id, approver.as_ref()).await })
    });
    let done = runs
        .execute(&principal, &run.id, execution(&args.provider))
        .await;
    if let Some(follower) = follower {
        // The follower stops on its own once it has printed the end.
        let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
    }
    let done = done?;
    if args.json {
        print_json_of(&runs.show(&principal, &done.id).await?);
    } else {
        summary(&done);
    }
    close(app).await;
    Ok(exit_for(&done))
}

/// Closes the application once the tasks sharing it are done.
async fn close(app: Arc<App>) {
    app.deliver_audit().await;
    if let Ok(app) = Arc::try_unwrap(app) {
        app.close().await;
    }
}

fn summary(run: &RunSummary) {
    match &run.error {
        None => eprintln!("run {} {}", run.id, run.state),
        Some(e) => eprintln!("run {} {}: {e}", run.id, run.state),
    }
}

/// Prints the run's log as it grows until the run ends, under a live
/// progress line on a terminal; with an approver and a terminal, asks
/// inline for what the run waits for.
async fn follow(
    app: &App,
    reader: &Principal,
    id: &str,
    approver: Option<&Principal>,
) -> Result<(), Error> {
    let progress = RunProgress::new();
    let followed = follow_with(app, reader, id, approver, &progress).await;
    progress.finish();
    followed
}

async fn follow_with(
    app: &App,
    reader: &Principal,
    id: &str,
    approver: Option<&Principal>,
    progress: &RunProgress,
) -> Result<(), Error> {
    let runs = app.runs();
    let mut changes = app.run_changes(id);
    let mut tail = LogTail::new(false);
    let inline = approver.is_some() && std::io::stdin().is_terminal();
    let mut told = false;
    loop {
        // The state before the lines: a run seen finished has logged all.
        let run = runs.summary(reader, id).await?;
        let printed = tail
            .print_new_above(app, reader, id, Some(progress))
            .await?;
        if run.state.is_finished() && printed == 0 {
            return Ok(());
        }
        // The steps are read only for a line someone sees.
        if progress.is_drawn() {
            progress.show(&run, &runs.steps(reader, id).await?);
        }
        if run.state == RunState::WaitingApproval {
            let pending = app.approvals().of_run(reader, id, true).await?;
            match (inline, approver) {
                (true, Some(approver)) => {
                    progress.pause();
                    for approval in &pending {
                        approvals_cmd::prompt(app, approver, approval)
                            .await
                            .map_err(|e| Error::internal(format!("{e:#}")))?;
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
            changes.changed().await;
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
    pub async fn print_new(
        &mut self,
        app: &App,
        reader: &Principal,
        id: &str,
    ) -> Result<usize, Error> {
        self.print_new_above(app, reader, id, None).await
    }

    /// [`Self::print_new`], above a live progress line if there is one.
    async fn print_new_above(
        &mut self,
        app: &App,
        reader: &Principal,
        id: &str,
        progress: Option<&RunProgress>,
    ) -> Result<usize, Error> {
        const PAGE: u32 = 1000;
        let mut printed = 0;
        loop {
            let lines = app.runs().logs(reader, id, self.after, PAGE).await?;
            let print = || {
                for line in &lines {
                    if self.json {
                        match serde_json::to_string(line) {
                            Ok(text) => outln!("{text}"),
                            Err(e) => eprintln!("error: log line {}: {e}", line.seq),
                        }
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
pub async fn follow_log(app: &App, reader: &Principal, id: &str, json: bool) -> Result<(), Error> {
    let mut tail = LogTail::new(json);
    let mut changes = app.run_changes(id);
    loop {
        let finished = app.runs().summary(reader, id).await?.state.is_finished();
        if tail.print_new(app, reader, id).await? == 0 {
            if finished {
                return Ok(());
            }
            changes.changed().await;
        }
    }
}

fn print_line(line: &LogLine) {
    match line.stream {
        LogStream::Smithers => outln!("» {}", line.text),
        LogStream::Stderr => outln!("  ! {}", line.text),
        LogStream::Stdout => outln!("  | {}", line.text),
    }
}

fn show_text(run: &Run) {
    outln!("run {}  {}  {}", run.id, run.workflow, run.state);
    outln!("  repository: {}", run.repository);
    outln!("  started by: {}", run.requested_by);
    outln!(
        "  policy:     {}{}",
        run.policies.repository,
        run.policies
            .organization_version
            .map(|v| format!(", bounded by the organization's policy version {v}"))
            .unwrap_or_default()
    );
    if let Some(e) = &run.error {
        outln!("  error:      {e}");
    }
    outln!("steps:");
    for s in &run.steps {
        outln!(
            "  {:<16} {:<9} {:<17} attempts {}{}",
            s.id,
            s.kind,
            s.state.as_str(),
            s.attempts,
            s.error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    outln!("tool calls:");
    for c in &run.tool_calls {
        outln!(
            "  step {} #{}  {} {} → {} ({}){}",
            c.position,
            c.seq,
            c.subject,
            c.tool,
            c.decision.decision,
            c.state.as_str(),
            c.decision
                .rule
                .as_ref()
                .map(|r| format!("  rule: {}", r.text))
                .unwrap_or_default()
        );
    }
    if !run.model_turns.is_empty() {
        let turns = &run.model_turns;
        let input: u64 = turns.iter().filter_map(|t| t.input_tokens).sum();
        let output: u64 = turns.iter().filter_map(|t| t.output_tokens).sum();
        let kept = match run.history_destroyed_at {
            Some(at) => format!("sealed; their key was destroyed at {at}: unreadable"),
            None => "sealed under the run's key, replayed on resume".to_string(),
        };
        outln!(
            "model answers: {} ({input} tokens in, {output} out; {kept})",
            turns.len()
        );
        for t in turns {
            outln!(
                "  step {} answer {}  {} {}  {} call(s)",
                t.position,
                t.turn + 1,
                t.driver,
                t.model,
                t.calls
            );
        }
    }
    outln!("approvals:");
    for a in &run.approvals {
        outln!(
            "  {}  {}  {}{}",
            a.id,
            a.state.as_str(),
            a.summary.lines().next().unwrap_or_default(),
            a.decided_by
                .as_deref()
                .map(|d| format!("  (by {d})"))
                .unwrap_or_default()
        );
    }
    if let Some(purge) = &run.purge {
        outln!(
            "sandbox purge: {}",
            if purge["clean"] == serde_json::Value::Bool(true) {
                "clean"
            } else {
                "NOT clean"
            }
        );
    }
}

pub fn runs(args: RunsArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(runs_command(args, state))
}

async fn runs_command(args: RunsArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let runs = app.runs();
    let code = match args.command {
        RunsCommand::List { all, limit, json } => {
            let list = runs.list(&principal, all, limit).await?;
            if json {
                print_json_of(&list);
            } else if list.is_empty() {
                eprintln!("no {}runs", if all { "" } else { "active " });
            } else {
                for r in list {
                    outln!(
                        "{}  {:<16} {:<17} {}  {}",
                        r.id,
                        r.workflow,
                        r.state.as_str(),
                        rfc3339(r.created_at.0),
                        r.requested_by
                    );
                }
            }
            ExitCode::SUCCESS
        }
        RunsCommand::Show { id, json } => {
            let run = runs.show(&principal, &id).await?;
            if json {
                print_json_of(&run);
            } else {
                show_text(&run);
            }
            ExitCode::SUCCESS
        }
        RunsCommand::Logs {
            id,
            follow: keep,
            json,
        } => {
            if keep {
                follow_log(&app, &principal, &id, json).await?;
            } else {
                LogTail::new(json).print_new(&app, &principal, &id).await?;
            }
            ExitCode::SUCCESS
        }
        RunsCommand::Resume { id, provider } => {
            let done = runs.execute(&principal, &id, execution(&provider)).await?;
            summary(&done);
            exit_for(&done)
        }
        RunsCommand::Cancel { id, json } => {
            let cancelled = runs.cancel(&principal, &id).await?;
            if json {
                print_json_of(&cancelled);
            } else if cancelled.stopped_by_its_process {
                eprintln!(
                    "run {} cancelled; the process carrying it out stops it and destroys its sandbox",
                    cancelled.id
                );
            } else {
                eprintln!(
                    "run {} cancelled; nothing was carrying it out, so its steps and approvals are closed here",
                    cancelled.id
                );
            }
            ExitCode::SUCCESS
        }
    };
    app.deliver_audit().await;
    app.close().await;
    Ok(code)
}
