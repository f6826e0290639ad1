//! `smithers policy publish | show | history | unpublish`: an
//! organization's policy, which bounds every repository's policy in its
//! runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use smithers_api::{Error, PolicyState, PolicyVersion};
use smithers_app::{App, Principal, Via};
use smithers_store::DEFAULT_ORGANIZATION;

use crate::context::{self, StateArgs};
use crate::render::print_json_of;

/// Who acts, in which organization, and how to print.
#[derive(Debug, Args)]
pub struct OrgArgs {
    /// The organization.
    #[arg(long, default_value = DEFAULT_ORGANIZATION)]
    pub org: String,
    /// Act as this user of the organization (changing its policy needs an admin).
    #[arg(
        long = "as",
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    pub user: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The policy file: checked as `policy check` does (valid, inline tests pass) first.
    pub file: PathBuf,
    #[command(flatten)]
    pub who: OrgArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// This version instead of the policy in force.
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
    #[command(flatten)]
    pub who: OrgArgs,
}

async fn open(state: &StateArgs, who: &OrgArgs) -> Result<(App, Principal), Error> {
    let app = context::open_app(state).await?;
    let principal = app.principal(&who.org, &who.user, Via::Cli).await?;
    Ok((app, principal))
}

pub fn publish(args: PublishArgs, state: &StateArgs) -> anyhow::Result<ExitCode> {
    context::serve(async move {
        let text = tokio::fs::read_to_string(&args.file).await.map_err(|e| {
            Error::invalid(format!(
                "cannot read the policy file {}: {e}",
                args.file.display()
            ))
        })?;
        let (app, principal) = open(state, &args.who).await?;
        let version = app
            .policies()
            .publish(&principal, &args.file.display().to_string(), &text)
            .await?;
        if args.who.json {
            print_json_of(&version);
        } else {
            outln!(
                "published version {} of the policy of {:?} (sha256 {}); it bounds every repository's policy in its runs",
                version.version,
                version.organization,
                version.sha256.as_deref().unwrap_or_default()
            );
        }
        app.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn show(args: ShowArgs, state: &StateArgs) -> anyhow::Result<ExitCode> {
    context::serve(async move {
        let (app, principal) = open(state, &args.who).await?;
        let version = app.policies().show(&principal, args.version).await?;
        if args.who.json {
            print_json_of(&version);
        } else {
            match &version.text {
                // The text as published, so that `show > FILE` gives it back.
                Some(text) => out!("{text}"),
                None => eprintln!(
                    "version {} unpublished the policy of {:?}",
                    version.version, version.organization
                ),
            }
        }
        app.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn history(who: OrgArgs, state: &StateArgs) -> anyhow::Result<ExitCode> {
    context::serve(async move {
        let (app, principal) = open(state, &who).await?;
        let versions = app.policies().history(&principal).await?;
        if who.json {
            print_json_of(&versions);
        } else if versions.is_empty() {
            eprintln!("{:?} has never published a policy", who.org);
        } else {
            for v in &versions {
                print_version(v);
            }
        }
        app.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn unpublish(who: OrgArgs, state: &StateArgs) -> anyhow::Result<ExitCode> {
    context::serve(async move {
        let (app, principal) = open(state, &who).await?;
        let version = app.policies().unpublish(&principal).await?;
        if who.json {
            print_json_of(&version);
        } else {
            outln!(
                "unpublished the policy of {:?} (version {}); repositories' policies decide alone",
                version.organization,
                version.version
            );
        }
        app.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_version(v: &PolicyVersion) {
    let state = match v.state {
        PolicyState::Published => "published",
        PolicyState::Unpublished => "unpublished",
    };
    let digest = v.sha256.as_deref().map_or("-", |d| &d[..d.len().min(16)]);
    outln!(
        "{:>4}  {state:<11}  {}  {:<16}  {digest}",
        v.version,
        v.created_at,
        v.created_by
    );
}
