//! The helper binary's two jobs. `park` runs on the host: it joins the
//! sandbox's cgroups (so that everything bubblewrap starts is counted from
//! the first instruction), waits for its launch plan, drops to the
//! sandbox's unprivileged uid, and becomes bubblewrap. `init` runs inside the sandbox as the command's
//! parent-to-be: it restricts itself with Landlock and seccomp and then
//! becomes the command, so the command starts already confined.
//!
//! The sandbox's environment arrives in the launch plan on a pipe and
//! travels through bubblewrap as `SMITHERS_ENV_<NAME>` variables, which
//! neither bubblewrap nor the dynamic loader act on; `init` turns them
//! back into the command's whole environment. Nothing secret is ever in an
//! argument list, where other host processes could read it.

mod bridge;
mod landlock_rules;
mod reaper;
mod seccomp;

use std::ffi::OsString;
use std::io::{BufRead as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

pub use landlock_rules::landlock_abi;
pub use seccomp::docker_profile;

/// The prefix carrying the sandbox's environment through bubblewrap.
pub const ENV_PREFIX: &str = "SMITHERS_ENV_";

/// What `park` is started with: the groups to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParkPlan {
    /// `cgroup.procs` files to join before anything else.
    pub cgroup_procs: Vec<PathBuf>,
}

/// What a parked helper is told, on its stdin, once a command is due.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The host uid and gid to become (when Smithers runs as root).
    pub user: Option<(u32, u32)>,
    pub bwrap: PathBuf,
    pub args: Vec<String>,
    /// The command's environment (arrives on a pipe, never in arguments).
    pub env: Vec<(String, String)>,
}

/// What a parked helper writes once it is in its groups.
pub const READY: &[u8] = b"ready\n";

/// What `init` does before it becomes the command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitPlan {
    /// Directories (inside the sandbox) the command may write beneath.
    pub writable: Vec<String>,
    /// Whether IPv4/IPv6 sockets are allowed (egress through the proxy).
    pub inet: bool,
    /// The bridge to the egress proxy to start first, if egress is allowed.
    pub bridge: Option<BridgePlan>,
    /// Arguments that reach the helper again (before `bridge`).
    pub helper_args: Vec<String>,
    pub argv: Vec<String>,
    /// Where `init` is PID 1 of a PID namespace Smithers does not hold
    /// (a container): stay as PID 1, reap, and kill everything after this
    /// many milliseconds, so the time limit holds even if Smithers is gone.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
}

/// The bridge inside a sandbox: `127.0.0.1:port` to the proxy's socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BridgePlan {
    pub socket: PathBuf,
    pub port: u16,
}

fn fail(what: &str, detail: impl std::fmt::Display) -> ! {
    eprintln!("smithers sandbox: {what}: {detail}");
    std::process::exit(125)
}

/// The helper's `main`, given the arguments after the program (and after
/// any leading arguments the host binary uses to reach it):
/// `park PLAN-JSON` or `init PLAN-JSON`.
pub fn main(args: Vec<OsString>) -> ! {
    let mode = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    let plan = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
    match mode {
        "park" => match serde_json::from_str::<ParkPlan>(plan) {
            Ok(plan) => park(&plan),
            Err(e) => fail("bad park plan", e),
        },
        "init" => match serde_json::from_str::<InitPlan>(plan) {
            Ok(plan) => init(&plan),
            Err(e) => fail("bad init plan", e),
        },
        "bridge" => match serde_json::from_str::<BridgePlan>(plan) {
            Ok(plan) => bridge::run(&plan),
            Err(e) => fail("bad bridge plan", e),
        },
        _ => fail("usage", "smithers-sandbox-helper park|init|bridge PLAN"),
    }
}

/// Joins the groups, says so, waits for the launch plan on stdin, and
/// becomes bubblewrap. Joining a cgroup v1 hierarchy can wait for an RCU
/// grace period (~10 ms); parking does it before a command is due.
fn park(plan: &ParkPlan) -> ! {
    let pid = std::process::id().to_string();
    for procs in &plan.cgroup_procs {
        if let Err(e) = std::fs::write(procs, &pid) {
            fail(&format!("cannot join {}", procs.display()), e);
        }
    }
    let mut stdout = std::io::stdout();
    if stdout
        .write_all(READY)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        // Abandoned: the provider went away or destroyed the sandbox.
        Ok(0) | Err(_) => std::process::exit(0),
        Ok(_) => {}
    }
    let launch: LaunchPlan = match serde_json::from_str(&line) {
        Ok(launch) => launch,
        Err(e) => fail("bad launch plan", e),
    };
    let mut bwrap = Command::new(&launch.bwrap);
    bwrap.args(&launch.args).env_clear().envs(
        launch
            .env
            .iter()
            .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v)),
    );
    if let Some((uid, gid)) = launch.user {
        // As root, std also drops every supplementary group here.
        bwrap.uid(uid).gid(gid);
    }
    let e = bwrap.exec();
    fail(&format!("cannot run {}", launch.bwrap.display()), e)
}

fn init(plan: &InitPlan) -> ! {
    let Some((program, args)) = plan.argv.split_first() else {
        fail("nothing to run", "empty command");
    };
    let env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.to_str()?.strip_prefix(ENV_PREFIX)?.to_string();
            Some((OsString::from(k), v))
        })
        .collect();
    if let Some(bridge) = &plan.bridge
        && let Err(e) = bridge::start(bridge, &plan.helper_args)
    {
        fail("cannot start the egress bridge", e);
    }
    match landlock_rules::restrict(&plan.writable) {
        Ok(landlock_rules::FULLY_ENFORCED) => {}
        // Said on the command's stderr, so whoever reads its output knows
        // which confinement held (the read-only root and the mounts still do).
        Ok(status) => eprintln!("smithers sandbox: Landlock {status}"),
        Err(e) => fail("cannot apply Landlock", e),
    }
    // Seccomp last: it forbids what setting up the rest may need.
    if let Err(e) = seccomp::install(plan.inet) {
        fail("cannot install the seccomp filter", e);
    }
    // Descriptors the process that started Smithers left open without
    // close-on-exec (a lock, a redirected file) came through bubblewrap:
    // none of them may reach the command, which gets its three streams only.
    close_fds::set_fds_cloexec_threadsafe(3, &[]);
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(env);
    if let Some(deadline) = plan.deadline_ms {
        match command.spawn() {
            Ok(child) => reaper::run(child.id(), std::time::Duration::from_millis(deadline)),
            Err(e) => exit_not_run(program, &e),
        }
    }
    let e = command.exec();
    exit_not_run(program, &e)
}

/// What a shell would say and exit with for a command it could not start.
fn exit_not_run(program: &str, e: &std::io::Error) -> ! {
    eprintln!("smithers sandbox: cannot run {program}: {e}");
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    std::process::exit(code)
}
