//! `smithers users …`: the users of an organization and their roles.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use smithers_api::{Error, Role, User};
use smithers_app::Via;
use smithers_store::DEFAULT_ORGANIZATION;

use crate::context::{self, StateArgs};
use crate::render::print_json_of;

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// The organization.
    #[arg(long, global = true, default_value = DEFAULT_ORGANIZATION)]
    org: String,
    /// Act as this user of the organization (adding, changing and removing
    /// users needs an admin).
    #[arg(
        long = "as",
        global = true,
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    by: String,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user to the organization (an admin's to do; recorded in the audit log).
    Add(AddArgs),
    /// The organization's users.
    List(ListArgs),
    /// Give a user another role (an admin's to do; never the last admin's
    /// own demotion). Their sessions end: they sign in again.
    Role(RoleArgs),
    /// Remove a user from the organization (an admin's to do; never the
    /// last admin). Their sessions end and their API tokens go; what they
    /// did stays in the audit log.
    Remove(RemoveArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Member,
}

#[derive(Debug, Args)]
struct AddArgs {
    name: String,
    #[arg(long, value_enum, default_value = "member")]
    role: RoleArg,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RoleArgs {
    name: String,
    #[arg(value_enum)]
    role: RoleArg,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RemoveArgs {
    name: String,
    #[arg(long)]
    json: bool,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Admin => Role::Admin,
            RoleArg::Member => Role::Member,
        }
    }
}

pub fn run(args: UsersArgs, state: &StateArgs) -> Result<ExitCode> {
    context::serve(users(args, state))
}

async fn users(args: UsersArgs, state: &StateArgs) -> Result<ExitCode, Error> {
    let app = context::open_app(state).await?;
    let principal = app.principal(&args.org, &args.by, Via::Cli).await?;
    match args.command {
        UsersCommand::Add(add) => {
            let user = app
                .users()
                .add(&principal, &add.name, add.role.role())
                .await?;
            if add.json {
                print_json_of(&user);
            } else {
                outln!(
                    "added {} to {:?} as {}",
                    user.name,
                    user.organization,
                    user.role.as_str()
                );
            }
        }
        UsersCommand::Role(change) => {
            let user = app
                .users()
                .set_role(&principal, &change.name, change.role.role())
                .await?;
            if change.json {
                print_json_of(&user);
            } else {
                outln!(
                    "{} is now {} in {:?}; their sessions have ended",
                    user.name,
                    user.role.as_str(),
                    user.organization
                );
            }
        }
        UsersCommand::Remove(remove) => {
            let user = app.users().remove(&principal, &remove.name).await?;
            if remove.json {
                print_json_of(&user);
            } else {
                outln!(
                    "removed {} from {:?}; their sessions have ended and their API tokens are gone",
                    user.name,
                    user.organization
                );
            }
        }
        UsersCommand::List(list) => {
            let users = app.users().list(&principal).await?;
            if list.json {
                print_json_of(&users);
            } else {
                for u in &users {
                    print_user(u);
                }
            }
        }
    }
    app.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_user(u: &User) {
    outln!("{:<24} {:<7} {}", u.name, u.role.as_str(), u.created_at);
}
