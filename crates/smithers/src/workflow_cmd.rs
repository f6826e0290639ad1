//! `smithers workflow check` and `smithers init`: the workflow file of a
//! repository, validated and started.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_engine::workflow::{self, CheckContext, StepKind, Workflow};
use smithers_policy::render_diagnostics;

use crate::context::{self, StateArgs};
use crate::render::print_json;

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Validate smithers.toml and the files it names; exit 1 on any problem.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Every problem is reported at its line and column: unknown keys (with the key meant), values of
the wrong type, bad cron, egress host syntax, step ids used twice, `if` naming a step that is
not an earlier one, commits outside smithers/, a policy file that does not parse (at its own
lines), a scripted agent's missing script, and secrets that do not exist in the store (when
there is one: SMITHERS_DATABASE_URL, or the data directory's SQLite store).
Exit status: 0 valid, 1 problems found, 2 the check itself failed.")]
pub struct CheckArgs {
    /// The repository (default: the current directory).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The organization whose secrets are looked up.
    #[command(flatten)]
    actor: context::ActorArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Writes smithers.toml (a `test` workflow running the test command the repository's files suggest,
and a commented agent workflow) and .smithers/policy (the built-in policy, to edit). Refuses,
writing nothing, if either exists, unless --force.")]
pub struct InitArgs {
    /// The repository (default: the current directory).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(command: WorkflowCommand, state: &StateArgs) -> Result<ExitCode> {
    match command {
        WorkflowCommand::Check(args) => check(&args, state),
    }
}

/// The secrets that exist, if there is a store to ask (a check never
/// creates one), as the acting user of the organization sees them.
fn known_secrets(
    state: &StateArgs,
    actor: &context::ActorArgs,
) -> Result<Option<std::collections::BTreeSet<(String, String)>>, smithers_api::Error> {
    let has_url = state.database_url.as_deref().is_some_and(|u| !u.is_empty());
    let sqlite = state
        .data_dir()
        .map_err(|e| smithers_api::Error::invalid(format!("{e:#}")))?
        .path()
        .join(smithers_store::SQLITE_FILE);
    if !has_url && !sqlite.exists() {
        return Ok(None);
    }
    context::runtime()
        .map_err(|e| smithers_api::Error::internal(format!("{e:#}")))?
        .block_on(async {
            let app = context::open_app(state).await?;
            let principal = app
                .principal(&actor.org, &actor.user, smithers_app::Via::Cli)
                .await?;
            let known = app.secrets().readable_names(&principal).await;
            app.close().await;
            Ok(Some(known?))
        })
}

fn summary(w: &Workflow) -> serde_json::Value {
    serde_json::json!({
        "name": w.name,
        "on": w.triggers.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "schedule": w.schedule,
        "egress": w.egress,
        "secrets": w.secrets.iter().map(|s| serde_json::json!({"name": s.name, "env": s.env})).collect::<Vec<_>>(),
        "timeout_seconds": w.timeout.as_secs(),
        "provider": w.provider.as_str(),
        "policy": w.policy,
        "steps": w.steps.iter().map(|s| serde_json::json!({
            "id": s.id,
            "kind": s.kind.as_str(),
            "needs_approval": s.needs_approval,
            "if": s.condition.as_ref().map(|c| format!("{}.{}", c.step, c.outcome.as_str())),
        })).collect::<Vec<_>>(),
    })
}

fn check(args: &CheckArgs, state: &StateArgs) -> Result<ExitCode> {
    let known = match known_secrets(state, &args.actor) {
        Ok(known) => known,
        Err(e) => return Ok(context::exit(Err(e))),
    };
    let secrets_checked = known.is_some();
    let context = CheckContext {
        known_secrets: known,
    };
    let result = workflow::check(&args.dir, &context);
    let diagnostic_json = |d: &smithers_policy::Diagnostic| {
        serde_json::json!({
            "file": d.file,
            "line": d.line,
            "column": d.column,
            "severity": d.severity.as_str(),
            "message": d.message,
        })
    };
    if args.json {
        let (workflows, diagnostics): (Vec<serde_json::Value>, Vec<serde_json::Value>) =
            match &result {
                Ok(file) => (
                    file.workflows.iter().map(summary).collect(),
                    file.warnings.iter().map(diagnostic_json).collect(),
                ),
                Err(found) => (Vec::new(), found.iter().map(diagnostic_json).collect()),
            };
        print_json(&serde_json::json!({
            "valid": result.is_ok(),
            "workflows": workflows,
            "diagnostics": diagnostics,
            "secrets_checked": secrets_checked,
        }));
    } else {
        match &result {
            Ok(file) => {
                if !file.warnings.is_empty() {
                    eprintln!("{}", render_diagnostics(&file.warnings));
                }
                for w in &file.workflows {
                    let kinds: Vec<String> = w
                        .steps
                        .iter()
                        .map(|s| match &s.kind {
                            StepKind::Agent(a) => format!("{}:agent({})", s.id, a.driver.as_str()),
                            other => format!("{}:{}", s.id, other.as_str()),
                        })
                        .collect();
                    let on: Vec<&str> = w.triggers.iter().map(|t| t.as_str()).collect();
                    outln!(
                        "{}: on {}; {} step{} ({}); {} sandbox, {}",
                        w.name,
                        on.join(", "),
                        w.steps.len(),
                        if w.steps.len() == 1 { "" } else { "s" },
                        kinds.join(", "),
                        w.provider.as_str(),
                        if w.egress.is_empty() {
                            "no network".to_string()
                        } else {
                            format!("egress to {}", w.egress.join(", "))
                        }
                    );
                }
                outln!(
                    "{} is valid{}",
                    workflow::FILE_NAME,
                    if secrets_checked {
                        ""
                    } else {
                        " (secrets not checked: no store here)"
                    }
                );
            }
            Err(found) => {
                eprintln!("{}", render_diagnostics(found));
                eprintln!(
                    "{} problem{} in {}",
                    found.len(),
                    if found.len() == 1 { "" } else { "s" },
                    args.dir.join(workflow::FILE_NAME).display()
                );
            }
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn init(args: &InitArgs) -> Result<ExitCode> {
    let written = match smithers_engine::init::write_starter(&args.dir, args.force) {
        Err(e @ smithers_engine::Error::Exists(_)) => {
            anyhow::bail!("{e} (use --force to overwrite)")
        }
        other => other?,
    };
    if args.json {
        print_json(&serde_json::json!({
            "written": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }));
    } else {
        for path in &written {
            outln!("wrote {}", path.display());
        }
        outln!(
            "next: edit them, then `smithers workflow check {}`",
            args.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
