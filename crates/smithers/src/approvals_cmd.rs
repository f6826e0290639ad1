//! `smithers approvals`: what runs wait for a human to decide, shown and
//! decided (never by the run's starter; admin-only by an admin), and the
//! inline prompt `smithers run --approver` asks at a terminal.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use smithers_engine::run::Engine;
use smithers_store::Approval;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render;
use crate::run_cmd::{ask_line, open, time};

#[derive(Debug, Args)]
#[command(after_help = "\
An approver cannot decide what their own run asks; admin-only approvals need an admin.
Exit status: 0 done, 2 error, 3 not allowed to decide, 4 already decided or expired.")]
pub struct ApprovalsArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Debug, Subcommand)]
enum ApprovalsCommand {
    /// Pending approvals (all of them with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// What is asked, by which run and role: the exact command or diff.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject, with the reason the run fails with.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn approvals(args: ApprovalsArgs, state: &StateArgs) -> Result<ExitCode> {
    let outcome = context::runtime()?.block_on(async {
        let opened = open(state).await?;
        let engine = &opened.engine;
        let org = &args.actor.org;
        let outcome: Result<ExitCode> = async {
            match args.command {
                ApprovalsCommand::List { all, json } => {
                    let list = engine.runs.approvals(org, !all, 500).await?;
                    if json {
                        render::print_json(&Value::Array(list.iter().map(approval_json).collect()));
                    } else if list.is_empty() {
                        eprintln!("no {}approvals", if all { "" } else { "pending " });
                    } else {
                        for a in list {
                            outln!(
                                "{}  {:<8} run {}  {}{}",
                                a.id,
                                a.state.as_str(),
                                a.run_id,
                                a.summary.lines().next().unwrap_or_default(),
                                if a.admin_only { "  [admin-only]" } else { "" }
                            );
                        }
                    }
                }
                ApprovalsCommand::Show { id, json } => {
                    let a = engine.runs.approval(&id).await?;
                    if a.organization_id != *org {
                        bail!("no approval {id} in {org}");
                    }
                    if json {
                        render::print_json(&approval_json(&a));
                    } else {
                        let run = engine.runs.get(&a.run_id).await?;
                        outln!(
                            "approval {}  {}{}",
                            a.id,
                            a.state.as_str(),
                            if a.admin_only { "  (admin-only)" } else { "" }
                        );
                        outln!(
                            "  run:     {} (workflow {}, started by {})",
                            a.run_id,
                            run.workflow,
                            a.requested_by
                        );
                        outln!("  step:    {}", a.position);
                        if let Some(role) = &a.role {
                            outln!("  role:    {role}");
                        }
                        if let Some(reason) = a.details["reason"].as_str() {
                            outln!("  kernel:  {reason}");
                        }
                        if let Some(by) = &a.decided_by {
                            outln!(
                                "  decided: by {by}{}",
                                a.comment
                                    .as_deref()
                                    .map(|c| format!(": {c}"))
                                    .unwrap_or_default()
                            );
                        }
                        outln!("asked:\n{}", a.summary);
                    }
                }
                ApprovalsCommand::Approve { id, comment } => {
                    let a = engine
                        .decide(org, &args.actor.user, &id, true, comment.as_deref())
                        .await?;
                    eprintln!("approved {} (run {})", a.id, a.run_id);
                }
                ApprovalsCommand::Reject { id, reason } => {
                    let a = engine
                        .decide(org, &args.actor.user, &id, false, Some(&reason))
                        .await?;
                    eprintln!("rejected {} (run {}): {reason}", a.id, a.run_id);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        .await;
        opened.close().await;
        outcome
    });
    context::refusal_exit(outcome)
}

pub fn approval_json(a: &Approval) -> Value {
    json!({
        "id": a.id,
        "run": a.run_id,
        "position": a.position,
        "kind": a.kind.as_str(),
        "admin_only": a.admin_only,
        "role": a.role,
        "requested_by": a.requested_by,
        "summary": a.summary,
        "details": a.details,
        "state": a.state.as_str(),
        "decided_by": a.decided_by,
        "comment": a.comment,
        "created_at": time(Some(a.created_at)),
        "expires_at": time(a.expires_at),
    })
}

/// Asks at the terminal whether `user` approves; a reply other than yes
/// is a rejection, with the reply as its reason.
pub async fn prompt(engine: &Engine, org: &str, user: &str, approval: &Approval) -> Result<()> {
    let answer = ask_line(format!(
        "\napproval {}: {}\napprove as {user}? [y/N, or type a reason to reject] ",
        approval.id, approval.summary
    ))
    .await?;
    let answer = answer.trim();
    let decided = if answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes") {
        engine.decide(org, user, &approval.id, true, None).await
    } else {
        let reason = if answer.is_empty() || answer.eq_ignore_ascii_case("n") {
            "rejected at the terminal"
        } else {
            answer
        };
        engine
            .decide(org, user, &approval.id, false, Some(reason))
            .await
    };
    if let Err(e) = decided {
        eprintln!("could not decide {}: {e}", approval.id);
    }
    Ok(())
}
