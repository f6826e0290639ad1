//! The `smithers` command line: parses arguments, calls a crate, prints.

mod audit_cmd;
mod context;
mod policy_cmd;
mod render;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd, &cli.state),
        Command::Audit(cmd) => audit_cmd::run(cmd, &cli.state),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
