//! `smithers github …`: the GitHub App's setup.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{Error, GithubStatus};
use smithers_app::Via;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json_of, rfc3339};

#[derive(Debug, Args)]
#[command(after_help = "\
Create the App with GitHub's manifest flow: post the manifest to
https://github.com/organizations/ORG/settings/apps/new (or, for a personal account,
https://github.com/settings/apps/new) as the form field `manifest`; docs/github-app.md walks
through it and explains each permission. Then store the App's private key and webhook secret as
Smithers secrets and start `smithers serve --github-app-id ID`.")]
pub struct GithubArgs {
    #[command(subcommand)]
    command: GithubCommand,
}

#[derive(Debug, Subcommand)]
enum GithubCommand {
    /// Print the App's manifest (JSON): its webhook URL, callback URL, permissions and events.
    Manifest {
        /// The origin GitHub and people reach `smithers serve` at.
        #[arg(
            long,
            env = "SMITHERS_PUBLIC_URL",
            value_name = "URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        /// The App's name on GitHub (unique across GitHub).
        #[arg(long, default_value = "Smithers")]
        name: String,
    },
    /// The App's installations, the repositories they connect (is each default branch
    /// protected on GitHub?), the latest webhook deliveries, and what needs attention.
    Status {
        #[command(flatten)]
        actor: ActorArgs,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: GithubArgs, state: &StateArgs) -> Result<ExitCode> {
    match args.command {
        GithubCommand::Status { actor, json } => context::serve(status(actor, json, state)),
        GithubCommand::Manifest { url, name } => {
            let parsed =
                url::Url::parse(&url).map_err(|e| anyhow::anyhow!("--url {url:?}: {e}"))?;
            if !matches!(parsed.scheme(), "https" | "http") || parsed.host().is_none() {
                anyhow::bail!("--url {url:?}: not an http(s) origin");
            }
            if name.trim().is_empty() {
                anyhow::bail!("--name: the App needs a name");
            }
            let manifest = smithers_github::manifest::manifest(&url, &name);
            crate::render::print_json(&manifest);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(actor: ActorArgs, json: bool, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app.principal(&actor.org, &actor.user, Via::Cli).await?;
    let status = app.github_status(&principal).await?;
    if json {
        print_json_of(&status);
    } else {
        render(&status);
    }
    // Something needs a person: exit 1, as other findings do.
    Ok(if status.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(status: &GithubStatus) {
    if status.installations.is_empty() {
        outln!("no installation of the GitHub App yet (see `smithers github manifest`)");
    }
    for i in &status.installations {
        let state = if i.deleted {
            "deleted"
        } else if i.suspended {
            "suspended"
        } else {
            "active"
        };
        outln!(
            "installation {} on {} ({}, {} repositories): {state}",
            i.id,
            i.account,
            i.account_type,
            i.repository_selection
        );
    }
    for r in status.repositories.iter().filter(|r| r.connected) {
        let protection = match r.default_branch_protected {
            Some(true) => "protected".to_string(),
            Some(false) => "NOT protected".to_string(),
            None => "not checked yet".to_string(),
        };
        outln!(
            "  {} (default branch {}: {protection})",
            r.full_name,
            r.default_branch.as_deref().unwrap_or("?")
        );
    }
    if !status.deliveries.is_empty() {
        outln!("latest deliveries:");
    }
    for d in &status.deliveries {
        outln!(
            "  {} {}{} {}: {}{}",
            rfc3339(d.received_at.0),
            d.event,
            d.action
                .as_deref()
                .map(|a| format!(".{a}"))
                .unwrap_or_default(),
            d.guid,
            d.outcome.as_deref().unwrap_or("pending"),
            d.detail
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        );
    }
    for w in &status.warnings {
        outln!("warning: {w}");
    }
}
