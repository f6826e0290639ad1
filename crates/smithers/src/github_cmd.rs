//! `smithers github …`: the GitHub App's setup.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

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
}

pub fn run(args: GithubArgs) -> Result<ExitCode> {
    match args.command {
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
