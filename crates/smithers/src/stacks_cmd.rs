//! `smithers stacks`: the chains of pull requests the GitHub App opened —
//! listed, shown member by member, and synced when a person's push has
//! paused one.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{Error, Stack};
use smithers_app::Via;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json_of, rfc3339};

#[derive(Debug, Args)]
#[command(after_help = "\
A run that commits to several smithers/ branches, each on the one before, delivers them as a
chain of pull requests, each based on the one below. The App keeps each chain current: when the
bottom is merged the next is retargeted and restacked, and only the bottom is marked next to
merge. A push by someone else onto one of its branches is never overwritten: the stack pauses
and the pull request says why. `sync` takes the branches as they are on GitHub (that push
becomes its pull request's) and the stack goes on from there.
Exit status: 0 done, 2 error, 3 not allowed, 4 the stack is finished or superseded.")]
pub struct StacksArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: StacksCommand,
}

#[derive(Debug, Subcommand)]
enum StacksCommand {
    /// Stacks kept current (active or paused); every one with --all. Newest first.
    List {
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(smithers_app::MAX_STACKS)))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One stack: its members bottom first, their pull requests, branches and states.
    Show {
        /// The stack's id (stk_…).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Take the stack's branches as they are on GitHub and go on from there.
    Sync {
        /// The stack's id (stk_…).
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: StacksArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(act(args, state))
}

async fn act(args: StacksArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let stacks = app.stacks();
    match args.command {
        StacksCommand::List { all, limit, json } => {
            let list = stacks.list(&principal, all, limit).await?;
            if json {
                print_json_of(&list);
            } else if list.is_empty() {
                eprintln!("no {}stacks", if all { "" } else { "active or paused " });
            } else {
                for s in &list {
                    let pulls: Vec<String> = s
                        .members
                        .iter()
                        .map(|m| match m.pull {
                            Some(n) if m.state == "merged" => format!("#{n}✓"),
                            Some(n) => format!("#{n}"),
                            None => "(none)".into(),
                        })
                        .collect();
                    outln!(
                        "{}  {:<10} {}  onto {}  {}{}",
                        s.id,
                        s.state,
                        s.repository,
                        s.base,
                        pulls.join(" ← "),
                        s.paused_reason
                            .as_deref()
                            .map(|r| format!("  ({r})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        StacksCommand::Show { id, json } => {
            let stack = stacks.show(&principal, &id).await?;
            if json {
                print_json_of(&stack);
            } else {
                render(&stack);
            }
        }
        StacksCommand::Sync { id, json } => {
            let stack = stacks.sync(&principal, &id).await?;
            if json {
                print_json_of(&stack);
            } else {
                outln!(
                    "stack {} will be taken as its branches are on GitHub at the App's next pass \
                     (a few seconds while `smithers serve` runs)",
                    stack.id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(stack: &Stack) {
    outln!(
        "stack {} of {} ({})",
        stack.id,
        stack.repository,
        stack.state
    );
    outln!("run {}, onto {}", stack.run, stack.base);
    outln!(
        "created {}, updated {}",
        rfc3339(stack.created_at.0),
        rfc3339(stack.updated_at.0)
    );
    if let Some(reason) = &stack.paused_reason {
        outln!("paused: {reason}");
        outln!("  once it should go on: smithers stacks sync {}", stack.id);
    }
    if stack.sync_requested {
        outln!("a sync is asked for: the App's next pass carries it out");
    }
    for (i, m) in stack.members.iter().enumerate() {
        outln!(
            "{}. {} {} ({}){}",
            i + 1,
            m.pull
                .map(|n| format!("#{n}"))
                .unwrap_or_else(|| "(no pull request)".into()),
            m.branch,
            m.state,
            m.based_on
                .as_deref()
                .map(|b| format!(" onto {b}"))
                .unwrap_or_default()
        );
        outln!("   {}", m.title);
        outln!(
            "   head {}, its own commits on {}",
            short(&m.head),
            short(&m.built_on)
        );
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
