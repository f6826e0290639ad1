//! `smithers users …`: the users of an organization and their roles.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use smithers_audit::ActorType;
use smithers_store::{DEFAULT_ORGANIZATION, Role, User};

use crate::context::{self, StateArgs};
use crate::render::{print_json, rfc3339};

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// The organization.
    #[arg(long, global = true, default_value = DEFAULT_ORGANIZATION)]
    org: String,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user to the organization (recorded in the audit log).
    Add(AddArgs),
    /// The organization's users.
    List(ListArgs),
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
    /// Who is adding the user, for the audit log.
    #[arg(
        long = "as",
        env = "SMITHERS_USER",
        default_value = "admin",
        value_name = "USER"
    )]
    by: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[arg(long)]
    json: bool,
}

fn user_json(u: &User) -> Value {
    json!({
        "organization": u.organization_id,
        "name": u.name,
        "role": u.role.as_str(),
        "created_at": rfc3339(u.created_at),
    })
}

pub fn run(args: UsersArgs, state: &StateArgs) -> Result<ExitCode> {
    context::runtime()?.block_on(async {
        let (dir, store) = state.open().await?;
        match args.command {
            UsersCommand::Add(add) => {
                let role = match add.role {
                    RoleArg::Admin => Role::Admin,
                    RoleArg::Member => Role::Member,
                };
                let (log, writer) = context::audit_log(&store, context::signer(&dir)?);
                let user = store
                    .organizations()
                    .add_user(&args.org, &add.name, role)
                    .await?;
                let recorded = log
                    .append(context::event(
                        &args.org,
                        ActorType::User,
                        add.by.clone(),
                        "user.add",
                        ("user", user.name.clone()),
                        json!({"name": user.name, "role": role.as_str()}),
                    ))
                    .await;
                drop(log);
                writer.join().await;
                recorded.context("the user was added but the audit event could not be recorded")?;
                context::deliver_to_nats(&store).await;
                if add.json {
                    print_json(&user_json(&user));
                } else {
                    outln!("added {} to {:?} as {}", user.name, args.org, role.as_str());
                }
            }
            UsersCommand::List(list) => {
                let users = store.organizations().users(&args.org).await?;
                if list.json {
                    print_json(&Value::Array(users.iter().map(user_json).collect()));
                } else {
                    for u in &users {
                        outln!(
                            "{:<24} {:<7} {}",
                            u.name,
                            u.role.as_str(),
                            rfc3339(u.created_at)
                        );
                    }
                }
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}
