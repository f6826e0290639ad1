//! `smithers approvals`: what runs wait for a human to decide, shown and
//! decided (never by the run's starter; admin-only by an admin), and the
//! inline prompt `smithers run --approver` asks at a terminal.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{Approval, Error};
use smithers_app::Via;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::print_json_of;
use crate::run_cmd::ask_line;

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
    context::serve(decide_or_show(args, state))
}

async fn decide_or_show(args: ApprovalsArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let approvals = app.approvals();
    match args.command {
        ApprovalsCommand::List { all, json } => {
            let list = approvals.list(&principal, all).await?;
            if json {
                print_json_of(&list);
            } else if list.is_empty() {
                eprintln!("no {}approvals", if all { "" } else { "pending " });
            } else {
                for a in &list {
                    outln!(
                        "{}  {:<8} run {}  {}{}",
                        a.id,
                        a.state.as_str(),
                        a.run,
                        a.summary.lines().next().unwrap_or_default(),
                        if a.admin_only { "  [admin-only]" } else { "" }
                    );
                }
            }
        }
        ApprovalsCommand::Show { id, json } => {
            let a = approvals.show(&principal, &id).await?;
            if json {
                print_json_of(&a);
            } else {
                show_text(&a);
            }
        }
        ApprovalsCommand::Approve { id, comment } => {
            let a = approvals
                .decide(&principal, &id, true, comment.as_deref())
                .await?;
            eprintln!("approved {} (run {})", a.id, a.run);
        }
        ApprovalsCommand::Reject { id, reason } => {
            let a = approvals
                .decide(&principal, &id, false, Some(&reason))
                .await?;
            eprintln!("rejected {} (run {}): {reason}", a.id, a.run);
        }
    }
    app.close().await;
    Ok(ExitCode::SUCCESS)
}

fn show_text(a: &Approval) {
    outln!(
        "approval {}  {}{}",
        a.id,
        a.state.as_str(),
        if a.admin_only { "  (admin-only)" } else { "" }
    );
    outln!(
        "  run:     {} (workflow {}, started by {})",
        a.run,
        a.workflow,
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

/// Asks at the terminal whether `approver` approves; a reply other than
/// yes is a rejection, with the reply as its reason. Decided by the
/// service layer, as `approvals approve|reject` are.
pub async fn prompt(
    app: &smithers_app::App,
    approver: &smithers_app::Principal,
    approval: &Approval,
) -> Result<()> {
    let answer = ask_line(format!(
        "\napproval {}: {}\napprove as {}? [y/N, or type a reason to reject] ",
        approval.id, approval.summary, approver.user
    ))
    .await?;
    let answer = answer.trim();
    let approvals = app.approvals();
    let decided = if answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes") {
        approvals.decide(approver, &approval.id, true, None).await
    } else {
        let reason = if answer.is_empty() || answer.eq_ignore_ascii_case("n") {
            "rejected at the terminal"
        } else {
            answer
        };
        approvals
            .decide(approver, &approval.id, false, Some(reason))
            .await
    };
    if let Err(e) = decided {
        eprintln!("could not decide {}: {e}", approval.id);
    }
    Ok(())
}
