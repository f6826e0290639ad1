//! `smithers org retention` (how long an organization keeps run logs,
//! tool-call outputs and audit events) and `smithers retention run` (the
//! pass that drops what is older, which `smithers serve` also runs by
//! itself every hour).

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{Error, Retention, RetentionPass};
use smithers_app::{Via, parse_retention};

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json_of, rfc3339};

#[derive(Debug, Args)]
pub struct OrgArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: OrgCommand,
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// How long run logs, tool-call outputs and audit events are kept; set it with --logs.
    #[command(after_help = "\
Run logs, tool-call outputs and audit events older than the retention are dropped for good by
the next retention pass (`smithers retention run`, or hourly in `smithers serve`). The audit
log stays verifiable: its dropped prefix is replaced by a prune base signed by the audit key.
What models generated for a run, and its workspace with the repository's source, are never kept
past the run: they are destroyed when it ends, whatever the retention.
Exit status: 0 done, 2 error, 3 not allowed.")]
    Retention {
        /// Keep logs this long: 30d, 90d, 2y… or `forever` (changing it needs an admin; audited).
        #[arg(long, value_name = "DURATION")]
        logs: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Drop the organization's run logs, tool-call outputs and audit events older than its retention.
    #[command(after_help = "\
The audit log is verified first, and nothing of it is dropped unless it verifies; events not yet
delivered to NATS are kept until they are. Needs an admin. --dry-run says what would go.
Exit status: 0 done, 2 error, 3 not allowed.")]
    Run {
        /// Say what would be dropped; drop nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

pub fn org(args: OrgArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(async move {
        let app = context::open_app(state).await?;
        let principal = app
            .principal(&args.actor.org, &args.actor.user, Via::Cli)
            .await?;
        let OrgCommand::Retention { logs, json } = args.command;
        let retention = match logs {
            Some(text) => {
                let secs = parse_retention(&text)?;
                app.retention().set(&principal, secs).await?
            }
            None => app.retention().get(&principal).await?,
        };
        if json {
            print_json_of(&retention);
        } else {
            render_retention(&retention);
        }
        app.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(args: RetentionArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(async move {
        let app = context::open_app(state).await?;
        let principal = app
            .principal(&args.actor.org, &args.actor.user, Via::Cli)
            .await?;
        let RetentionCommand::Run { dry_run, json } = args.command;
        let pass: Result<RetentionPass, Error> = app.retention().run(&principal, dry_run).await;
        app.close().await;
        let pass = pass?;
        if json {
            print_json_of(&pass);
        } else {
            render_pass(&pass);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn render_retention(r: &Retention) {
    outln!("organization {}", r.organization);
    outln!(
        "  run logs, tool-call outputs, audit events: kept {}",
        kept(&r.logs)
    );
    outln!("  what models generated for a run: {}", r.model_history);
    outln!("  workspaces and source: {}", r.workspaces);
}

fn kept(logs: &str) -> String {
    if logs == "forever" {
        "forever".into()
    } else {
        format!("for {logs}")
    }
}

fn render_pass(p: &RetentionPass) {
    if p.histories_destroyed > 0 {
        outln!(
            "{}: destroyed the model history of {} run(s) that ended before history keys existed",
            p.organization,
            p.histories_destroyed
        );
    }
    let Some(before) = p.before else {
        outln!(
            "{} keeps its logs forever: nothing to drop (`smithers org retention --logs 30d` sets a retention)",
            p.organization
        );
        return;
    };
    let verb = if p.dry_run { "would drop" } else { "dropped" };
    outln!(
        "{}: logs kept for {}, so what is older than {} goes",
        p.organization,
        p.logs,
        rfc3339(before.0)
    );
    outln!(
        "  {verb} the logs of {} finished run(s): {} line(s), {} tool-call output(s)",
        p.runs,
        p.lines,
        p.outputs
    );
    match &p.audit {
        None => outln!("  audit log: nothing due"),
        Some(a) => {
            outln!(
                "  audit log: {verb} events {}..={} ({}) behind a signed prune base{}",
                a.first,
                a.through,
                a.events,
                a.recorded_at
                    .map(|s| format!(", recorded as audit.pruned (sequence {s})"))
                    .unwrap_or_default()
            );
            if let Some(from) = a.held_back_from {
                outln!(
                    "  events {}..={} are due too but NATS has not had them yet: kept until it has",
                    a.through + 1,
                    from
                );
            }
        }
    }
}
