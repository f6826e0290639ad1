//! `smithers tokens …`: API tokens for scripts and CI, each acting as the
//! user who made it, narrowed to scopes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use smithers_api::{ApiToken, Error, Scope};
use smithers_app::Via;

use crate::context::{self, ActorArgs, StateArgs};
use crate::render::{print_json_of, rfc3339};

#[derive(Debug, Args)]
#[command(after_help = "\
A token acts as the user who made it, within its scopes (and never beyond that user's role);
it is shown once and only its SHA-256 is kept. Scopes: runs:read, runs:write, approvals:read,
approvals:write, secrets:read, secrets:write, secrets:reveal, audit:read, audit:write,
users:read, users:write, policy:read, policy:write.
Exit status: 0 done, 2 error, 3 not allowed, 4 already revoked.")]
pub struct TokensArgs {
    #[command(flatten)]
    actor: ActorArgs,
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Make a token acting as you; prints it once.
    Create {
        /// What to call it (`ci-deploy`).
        name: String,
        /// What it may do, comma-separated (runs:read,approvals:write,…).
        #[arg(long, value_delimiter = ',', required = true, value_parser = parse_scope)]
        scope: Vec<Scope>,
        /// How long it lives (e.g. 12h, 30d; at most 366d).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Your tokens (an admin: the organization's), newest first; never their secrets.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: yours, or (an admin) any of the organization's.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text.trim()).ok_or_else(|| {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        format!("{text:?} is not a scope (one of {})", known.join(", "))
    })
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (e.g. 12h, 30d)"))
}

pub fn run(args: TokensArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(tokens(args, state))
}

async fn tokens(args: TokensArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app
        .principal(&args.actor.org, &args.actor.user, Via::Cli)
        .await?;
    let tokens = app.tokens();
    match args.command {
        TokensCommand::Create {
            name,
            scope,
            ttl,
            json,
        } => {
            let made = tokens.create(&principal, &name, &scope, ttl).await?;
            if json {
                print_json_of(&made);
            } else {
                outln!("{}", made.secret);
                eprintln!(
                    "token {} ({}) acts as {} with {}, until {}; it is shown only now",
                    made.token.id,
                    made.token.name,
                    made.token.user,
                    scopes(&made.token),
                    rfc3339(made.token.expires_at.0)
                );
            }
        }
        TokensCommand::List { json } => {
            let list = tokens.list(&principal).await?;
            if json {
                print_json_of(&list);
            } else if list.is_empty() {
                eprintln!("no tokens");
            } else {
                let now = smithers_store::now_micros();
                for t in &list {
                    let state = match (t.revoked_at, t.expires_at.0 <= now) {
                        (Some(_), _) => "revoked",
                        (None, true) => "expired",
                        (None, false) => "active",
                    };
                    outln!(
                        "{}  {:<16} {:<8} {:<12} until {}  {}",
                        t.id,
                        t.name,
                        state,
                        t.user,
                        rfc3339(t.expires_at.0),
                        scopes(t)
                    );
                }
            }
        }
        TokensCommand::Revoke { id, json } => {
            let revoked = tokens.revoke(&principal, &id).await?;
            if json {
                print_json_of(&revoked);
            } else {
                eprintln!("revoked token {} ({})", revoked.id, revoked.name);
            }
        }
    }
    app.close().await;
    Ok(ExitCode::SUCCESS)
}

fn scopes(token: &ApiToken) -> String {
    token
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
