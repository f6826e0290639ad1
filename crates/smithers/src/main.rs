//! The `smithers` command line: parses arguments, calls a crate, prints.

// First, so that its `out!` and `outln!` are in scope in every module.
#[macro_use]
mod render;

mod approvals_cmd;
mod audit_cmd;
mod context;
mod demo_cmd;
mod destinations_cmd;
mod github_cmd;
mod org_policy_cmd;
mod policy_cmd;
mod progress;
mod redact_cmd;
mod retention_cmd;
mod run_cmd;
mod sandbox_cmd;
mod secrets_cmd;
mod serve_cmd;
mod stacks_cmd;
mod tokens_cmd;
mod users_cmd;
mod workflow_cmd;

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
    #[command(flatten)]
    log: LogArgs,
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
    /// API tokens for scripts and CI: create (shown once), list, revoke.
    Tokens(tokens_cmd::TokensArgs),
    /// The GitHub App: print its manifest; its installations, repositories and deliveries.
    Github(github_cmd::GithubArgs),
    /// Chains of pull requests the GitHub App opened: list, show, sync.
    Stacks(stacks_cmd::StacksArgs),
    /// The organization's settings: how long its logs are kept (retention).
    Org(retention_cmd::OrgArgs),
    /// Drop run logs, tool-call outputs and audit events older than the retention.
    Retention(retention_cmd::RetentionArgs),
    /// Serve the HTTP API (/api/v1, API tokens) until SIGINT or SIGTERM.
    Serve(Box<serve_cmd::ServeArgs>),
    /// Run commands in a disposable sandbox; check what this host can enforce.
    #[command(subcommand)]
    Sandbox(sandbox_cmd::SandboxCommand),
    /// Validate a repository's workflow file (smithers.toml).
    #[command(subcommand)]
    Workflow(workflow_cmd::WorkflowCommand),
    /// Write a commented starter smithers.toml and policy into a repository.
    Init(workflow_cmd::InitArgs),
    /// Run a workflow of smithers.toml in a disposable sandbox, following its progress.
    Run(run_cmd::RunArgs),
    /// List, show, follow, resume and cancel workflow runs.
    Runs(run_cmd::RunsArgs),
    /// What runs wait for a human to decide: list, show, approve, reject.
    Approvals(approvals_cmd::ApprovalsArgs),
    /// The whole thing on a sample repository: an agent under the kernel, an approval,
    /// a redacted secret, a denied push to main, a smithers/ branch, a verified audit log.
    Demo(demo_cmd::DemoArgs),
}

/// How the crates' own events (`tracing`) reach standard error.
#[derive(Debug, clap::Args)]
struct LogArgs {
    /// The events' format on standard error: `human` (coloured on a
    /// terminal) or `json` (one object a line). Which events: RUST_LOG
    /// (`warn` by default; e.g. `RUST_LOG=smithers_store=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "SMITHERS_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Installs the subscriber every library event goes to: warnings and
/// errors by default (a failed audit checkpoint, a sandbox left behind),
/// what RUST_LOG names otherwise.
fn install_logging(format: LogFormat) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env()
        .unwrap_or_else(|e| {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "warning: RUST_LOG is not a filter ({e}); logging warnings and errors"
            );
            EnvFilter::new("warn")
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Installing fails only when a subscriber is already installed.
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn main() -> ExitCode {
    // The sandbox helper's two jobs run in this same binary, reached by a
    // hidden first argument (see smithers_sandbox::helper).
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == sandbox_cmd::HELPER_ARG) {
        smithers_sandbox::helper::main(args.collect());
    }
    let cli = Cli::parse();
    install_logging(cli.log.log_format);
    let result = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd, &cli.state),
        Command::Audit(cmd) => audit_cmd::run(cmd, &cli.state),
        Command::Secrets(args) => secrets_cmd::run(args, &cli.state),
        Command::Redact(args) => redact_cmd::run(args),
        Command::Users(args) => users_cmd::run(args, &cli.state),
        Command::Tokens(args) => tokens_cmd::run(args, &cli.state),
        Command::Serve(args) => serve_cmd::run(*args, &cli.state),
        Command::Github(args) => github_cmd::run(args, &cli.state),
        Command::Stacks(args) => stacks_cmd::run(args, &cli.state),
        Command::Org(args) => retention_cmd::org(args, &cli.state),
        Command::Retention(args) => retention_cmd::run(args, &cli.state),
        Command::Sandbox(cmd) => sandbox_cmd::run(cmd, &cli.state),
        Command::Workflow(cmd) => workflow_cmd::run(cmd, &cli.state),
        Command::Init(args) => workflow_cmd::init(&args),
        Command::Run(args) => run_cmd::run(args, &cli.state),
        Command::Runs(args) => run_cmd::runs(args, &cli.state),
        Command::Approvals(args) => approvals_cmd::approvals(args, &cli.state),
        Command::Demo(args) => demo_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            // A closed standard error must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
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
