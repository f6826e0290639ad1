//! `smithers sandbox run|check|rootfs|image`: one command in a fresh
//! sandbox, what this host can enforce, and the roots and images sandboxes
//! run on.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::sync::Arc;

use smithers_app::{EgressObserver, ProviderKind, SandboxRun, SandboxRunOutcome};
use smithers_sandbox::docker::DEFAULT_IMAGE;
use smithers_sandbox::egress::EgressEvent;
use smithers_sandbox::rootfs::DEFAULT_PROGRAMS;
use smithers_sandbox::{
    Limits, OutputChunk, Root, SandboxSpec, Stream, check_host, parse_duration, parse_memory,
};
use tokio::sync::mpsc;

use crate::context::{self, StateArgs};
use crate::render::print_json;

/// The hidden first argument that makes this binary the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox-helper";

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run a command in a fresh sandbox over a copy of a directory, then destroy it.
    Run(RunArgs),
    /// Report what this host can enforce; exit 1 if the native provider cannot give its guarantees.
    Check(CheckArgs),
    /// Assemble a minimal root filesystem from this host's programs and their libraries.
    Rootfs(RootfsArgs),
    /// The Docker provider's image.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Remove what sandboxes of a killed Smithers left (directories, cgroups, containers, volumes).
    Purge(PurgeArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
A sandbox belongs to the Smithers process that made it. When that process is gone (killed),
its sandboxes are purged: the native provider's directories and cgroups (its processes died
with it), the Docker provider's containers (killed) and volumes. Sandboxes of running
Smithers processes are left alone. Providers also do this when they start.
Exit status: 0, or 1 when something could not be removed (listed).")]
pub struct PurgeArgs {
    /// Also look at the Docker engine (an unreachable engine is reported, not an error).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    docker: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the sandbox image from this host's own programs and libraries (nothing is pulled).
    Build(ImageBuildArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
The image holds the programs (the defaults: a shell, coreutils, grep, sed, find, diff, git, …),
every library they load, a generated /etc with no host accounts, /workspace and /tmp owned by
the sandbox user (uid 1000), and the mount points of Smithers' helper. Nothing setuid.")]
pub struct ImageBuildArgs {
    /// The image's name.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    tag: String,
    /// A program (name on PATH or absolute path) to include besides the defaults; repeatable.
    #[arg(long = "program", value_name = "PROGRAM")]
    programs: Vec<String>,
    /// Only the programs given with --program, not the defaults.
    #[arg(long)]
    no_defaults: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RootfsArgs {
    /// Where to build it (must not exist).
    dir: PathBuf,
    /// A program (name on PATH or absolute path) to include; repeatable.
    #[arg(long = "program", value_name = "PROGRAM")]
    programs: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProviderArg {
    Native,
    Docker,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The command runs with no network, every namespace unshared, a read-only root, a writable
/workspace (a copy of --workspace) and /tmp, no capabilities, Landlock and a seccomp filter.
With --provider docker it runs in a container of the local engine (DOCKER_HOST=unix://… or
/var/run/docker.sock) from --image, with the same limits, filter and Landlock.
With --allow-host, it still has no route out: HTTP_PROXY/HTTPS_PROXY point at a bridge to
Smithers' proxy, which allows a host on the list only if every address it resolves to is
public (patterns: example.com, *.example.com, example.com:443); each decision is printed.
Exit status: the command's own; 124 when the time limit killed it, 137 when the memory limit
did (a message on stderr says which); 2 when the sandbox itself failed.")]
pub struct RunArgs {
    #[arg(long, value_enum, default_value = "native")]
    provider: ProviderArg,
    /// Copy this directory into the sandbox's workspace (default: an empty workspace).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Use this root filesystem (from `sandbox rootfs`) instead of the host's /usr (native).
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    root: Option<PathBuf>,
    /// The image of a docker sandbox (from `sandbox image build`).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// A host the sandbox may reach through the egress proxy (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// Memory limit (e.g. 512M, 2G).
    #[arg(long, default_value = "512M", value_parser = parse_memory)]
    memory: u64,
    /// Most processes and threads at once.
    #[arg(long, default_value_t = 256)]
    pids: u32,
    /// CPUs (e.g. 1, 0.5, 2).
    #[arg(long, default_value = "1", value_parser = parse_cpus)]
    cpus: u32,
    /// Wall-clock limit (e.g. 90s, 30m).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// An environment variable of the command (repeatable); nothing of yours is passed otherwise.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long)]
    json: bool,
}

fn parse_cpus(text: &str) -> Result<u32, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of CPUs like 1 or 0.5"))?;
    if !(0.01..=1024.0).contains(&cpus) {
        return Err(format!("{text} CPUs is out of range (0.01 to 1024)"));
    }
    Ok((cpus * 1000.0).round() as u32)
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not K=V"))
}

/// Each egress decision of a sandbox, printed on stderr as it is made.
pub fn print_egress() -> EgressObserver {
    Arc::new(|e: &EgressEvent| {
        let verdict = if e.allowed { "allowed" } else { "REFUSED" };
        eprintln!(
            "smithers: egress {verdict} {}:{} ({})",
            e.host, e.port, e.reason
        );
    })
}

pub fn run(command: SandboxCommand, state: &StateArgs) -> Result<ExitCode> {
    match command {
        SandboxCommand::Run(args) => run_command(args, state),
        SandboxCommand::Check(args) => check(&args, state),
        SandboxCommand::Rootfs(args) => rootfs(&args),
        SandboxCommand::Image(ImageCommand::Build(args)) => image_build(&args, state),
        SandboxCommand::Purge(args) => purge(&args, state),
    }
}

fn purge(args: &PurgeArgs, state: &StateArgs) -> Result<ExitCode> {
    let config = context::app_config(state);
    let purged = context::runtime()?.block_on(config.purge_orphaned_sandboxes(args.docker))?;
    let docker_error = purged.docker_error.clone();
    let unclean = !purged.is_clean();
    let purged: Vec<_> = purged
        .sandboxes
        .iter()
        .map(|p| (p.provider, &p.sandbox, &p.report))
        .collect();
    if args.json {
        print_json(&serde_json::json!({
            "purged": purged.iter().map(|(provider, id, r)| serde_json::json!({
                "provider": provider,
                "sandbox": id.to_string(),
                "processes_killed": r.processes_killed,
                "removed": r.removed,
                "remaining": r.remaining,
            })).collect::<Vec<_>>(),
            "docker_error": docker_error,
        }));
    } else {
        if purged.is_empty() {
            outln!("nothing to purge: no sandbox of a killed Smithers remains");
        }
        for (provider, id, report) in &purged {
            outln!(
                "{provider} sandbox {id}: {} removed{}",
                report.removed.len(),
                if report.processes_killed > 0 {
                    format!(", {} processes killed", report.processes_killed)
                } else {
                    String::new()
                }
            );
            for left in &report.remaining {
                outln!("  NOT REMOVED: {left}");
            }
        }
        if let Some(e) = &docker_error {
            eprintln!("smithers: the Docker engine was not looked at: {e}");
        }
    }
    Ok(if unclean {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn image_build(args: &ImageBuildArgs, state: &StateArgs) -> Result<ExitCode> {
    let mut programs: Vec<String> = if args.no_defaults {
        Vec::new()
    } else {
        DEFAULT_PROGRAMS.iter().map(|p| (*p).to_string()).collect()
    };
    for program in &args.programs {
        if !programs.contains(program) {
            programs.push(program.clone());
        }
    }
    if programs.is_empty() {
        bail!("no programs: give --program or leave out --no-defaults");
    }
    let config = context::app_config(state).docker_config()?;
    let helper = std::env::current_exe().context("cannot find the smithers binary")?;
    let work = std::env::temp_dir();
    let report = context::runtime()?.block_on(smithers_sandbox::docker::image::build(
        &config.socket,
        &args.tag,
        &programs,
        &helper,
        &work,
        |_| Ok(()),
    ))?;
    if args.json {
        print_json(&serde_json::json!({
            "tag": report.tag,
            "id": report.id,
            "programs": report.rootfs.programs,
            "libraries": report.rootfs.libraries,
            "layer_bytes": report.layer_bytes,
        }));
    } else {
        outln!(
            "built image {} ({}) with {} programs and {} libraries, a {} byte layer; use it with `smithers sandbox run --provider docker`",
            report.tag,
            report.id,
            report.rootfs.programs.len(),
            report.rootfs.libraries.len(),
            report.layer_bytes,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rootfs(args: &RootfsArgs) -> Result<ExitCode> {
    let programs: Vec<String> = if args.programs.is_empty() {
        DEFAULT_PROGRAMS.iter().map(|p| (*p).to_string()).collect()
    } else {
        args.programs.clone()
    };
    let helper = std::env::current_exe().context("cannot find the smithers binary")?;
    let report = smithers_sandbox::rootfs::assemble(&args.dir, &programs, &helper)?;
    if args.json {
        print_json(&serde_json::json!({
            "root": args.dir.display().to_string(),
            "programs": report.programs,
            "libraries": report.libraries,
            "bytes": report.bytes,
        }));
    } else {
        outln!(
            "built {} with {} programs and {} libraries ({} bytes); use it with `smithers sandbox run --root {}`",
            args.dir.display(),
            report.programs.len(),
            report.libraries.len(),
            report.bytes,
            args.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs, state: &StateArgs) -> Result<ExitCode> {
    let config = context::app_config(state);
    let report = context::runtime()?.block_on(check_host(
        &config.native_config()?,
        &config.docker_config()?,
    ));
    if args.json {
        print_json(&serde_json::json!({
            "native_ready": report.native_ready(),
            "capabilities": report.capabilities,
        }));
    } else {
        for c in &report.capabilities {
            let mark = match (c.available, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "no  ",
            };
            outln!("{mark} {:<11} {}", c.name, c.detail);
        }
        outln!(
            "{}",
            if report.native_ready() {
                "the native provider can give all its guarantees here"
            } else {
                "the native provider CANNOT give its guarantees here (FAIL above)"
            }
        );
    }
    Ok(if report.native_ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_command(args: RunArgs, state: &StateArgs) -> Result<ExitCode> {
    if args.image.is_some() && matches!(args.provider, ProviderArg::Native) {
        bail!("--image is for --provider docker; the native provider takes --root");
    }
    if args.root.is_some() && matches!(args.provider, ProviderArg::Docker) {
        bail!("--root is for the native provider; a docker sandbox takes --image");
    }
    if let Some(dir) = &args.workspace
        && !dir.is_dir()
    {
        bail!("--workspace {} is not a directory", dir.display());
    }
    let spec = SandboxSpec {
        root: args.root.clone().map_or(Root::Host, Root::Directory),
        workspace_from: args.workspace.clone(),
        env: args.env.clone(),
        limits: Limits {
            memory: args.memory,
            pids: args.pids,
            millicpus: args.cpus,
        },
        egress: args.allow_host.clone(),
        timeout: args.timeout,
    };
    let config = context::app_config(state);
    let run = SandboxRun {
        provider: match args.provider {
            ProviderArg::Native => ProviderKind::Native,
            ProviderArg::Docker => ProviderKind::Docker,
        },
        image: args.image.clone(),
        spec,
        command: args.command.clone(),
        observer: Some(print_egress()),
    };
    context::runtime()?.block_on(async move {
        // Egress is audited: the application is opened only when there
        // can be any.
        let app = if args.allow_host.is_empty() {
            None
        } else {
            Some(context::open_app(state).await?)
        };
        let (tx, mut rx) = mpsc::channel::<OutputChunk>(64);
        let printer = tokio::spawn(async move {
            let mut stdout = std::io::stdout();
            let mut stderr = std::io::stderr();
            while let Some(chunk) = rx.recv().await {
                // A reader that went away ends the command, as it ends
                // any filter; other failures lose only this output.
                let _ = match chunk.stream {
                    Stream::Stdout => stdout
                        .write_all(&chunk.bytes)
                        .and_then(|()| stdout.flush())
                        .map_err(crate::render::closed_quietly),
                    Stream::Stderr => stderr.write_all(&chunk.bytes).and_then(|()| stderr.flush()),
                };
            }
        });
        let outcome = config.run_in_sandbox(app.as_ref(), run, tx).await;
        let _ = printer.await;
        if let Some(app) = app {
            app.close().await;
        }
        Ok(report(&outcome?, &args))
    })
}

/// The sandboxed command's ending, told; its exit status.
fn report(outcome: &SandboxRunOutcome, args: &RunArgs) -> ExitCode {
    let exec = &outcome.exec;
    if let Some(limit) = exec.limit_hit() {
        let detail = if exec.timed_out {
            format!(
                "{} after {}",
                limit,
                humantime::format_duration(args.timeout)
            )
        } else {
            format!("{limit} of {} bytes", args.memory)
        };
        eprintln!("smithers: the command was killed: {detail}");
    }
    if !outcome.purge.is_clean() {
        eprintln!(
            "smithers: the sandbox was not fully removed: {}",
            outcome.purge.remaining.join("; ")
        );
        return ExitCode::from(2);
    }
    ExitCode::from(u8::try_from(exec.exit_code).unwrap_or(1))
}
