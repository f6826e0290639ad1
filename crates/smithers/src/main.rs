//! The `smithers` command line: parses arguments, calls a crate, prints.

mod audit_cmd;
mod context;
mod policy_cmd;
mod redact_cmd;
mod render;
mod secrets_cmd;
mod users_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "smithers",
    version,
    about = "Run AI coding agents and untrusted workflows against your repositories, safely.",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    state: context::StateArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check, evaluate, explain, analyse and test capability policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Read, verify, export and prove the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Store, rotate and rewrap secrets; read values under approved grants.
    Secrets(secrets_cmd::SecretsArgs),
    /// Mask secret values (and their encoded forms) in a stream: stdin to stdout.
    Redact(redact_cmd::RedactArgs),
    /// The users of an organization and their roles.
    Users(users_cmd::UsersArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd, &cli.state),
        Command::Audit(cmd) => audit_cmd::run(cmd, &cli.state),
        Command::Secrets(args) => secrets_cmd::run(args, &cli.state),
        Command::Redact(args) => redact_cmd::run(args),
        Command::Users(args) => users_cmd::run(args, &cli.state),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
