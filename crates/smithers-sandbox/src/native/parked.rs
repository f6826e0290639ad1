//! Parked helpers: a helper process that has already joined a sandbox's
//! cgroups and waits for its launch plan. Joining a cgroup v1 hierarchy
//! can wait for an RCU grace period (about 10 ms here); parking pays that
//! while nothing waits, so a command starts as fast as bubblewrap can.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use crate::Error;
use crate::helper::{LaunchPlan, ParkPlan, READY};

/// How long a helper may take to join its groups.
const PARK_TIMEOUT: Duration = Duration::from_secs(20);

/// A helper in a sandbox's groups, waiting on its stdin.
pub(crate) struct Parked {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
}

/// A started command: the process (bubblewrap) and its output.
pub(crate) struct Launched {
    pub child: Child,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Starts a helper that joins the groups of `procs` and parks.
pub(crate) async fn park(
    helper: PathBuf,
    helper_args: Vec<String>,
    procs: Vec<PathBuf>,
) -> Result<Parked, Error> {
    let plan = serde_json::to_string(&ParkPlan {
        cgroup_procs: procs,
    })
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut child = tokio::process::Command::new(&helper)
        .args(&helper_args)
        .arg("park")
        .arg(plan)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io(format!(
            "cannot start the sandbox helper {}",
            helper.display()
        )))?;
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::Invalid("the sandbox helper has no pipes".into()));
    };
    let mut ready = [0u8; READY.len()];
    let joined = tokio::time::timeout(PARK_TIMEOUT, stdout.read_exact(&mut ready)).await;
    if !matches!(joined, Ok(Ok(_))) || ready != READY {
        let _ = child.start_kill();
        let mut why = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_string(&mut why)).await;
        return Err(Error::Unsupported(format!(
            "the sandbox helper could not join the sandbox's cgroups: {}",
            if why.trim().is_empty() {
                "no answer"
            } else {
                why.trim()
            }
        )));
    }
    Ok(Parked {
        child,
        stdin,
        stdout,
        stderr,
    })
}

/// Parks a helper in the background after `delay`.
pub(crate) fn park_later(
    helper: &Path,
    helper_args: &[String],
    procs: Vec<PathBuf>,
    delay: Duration,
) -> JoinHandle<Result<Parked, Error>> {
    let (helper, args) = (helper.to_path_buf(), helper_args.to_vec());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        park(helper, args, procs).await
    })
}

impl Parked {
    /// Hands the helper its plan; it becomes bubblewrap.
    pub(crate) async fn launch(mut self, plan: &LaunchPlan) -> Result<Launched, Error> {
        let mut line = serde_json::to_vec(plan).map_err(|e| Error::Invalid(e.to_string()))?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .map_err(Error::io("cannot hand the sandbox helper its plan"))?;
        // Closing stdin gives the command an empty stdin.
        drop(self.stdin);
        Ok(Launched {
            child: self.child,
            stdout: self.stdout,
            stderr: self.stderr,
        })
    }

    /// Kills the helper and waits for it.
    pub(crate) async fn discard(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A sandbox's next helper: ready, on its way, or none yet.
pub(crate) enum Slot {
    Ready(Box<Parked>),
    Pending(JoinHandle<Result<Parked, Error>>),
    Empty,
}

impl Slot {
    /// The parked helper, waiting for one on its way.
    pub(crate) async fn take(self) -> Option<Result<Parked, Error>> {
        match self {
            Slot::Ready(parked) => Some(Ok(*parked)),
            Slot::Pending(handle) => Some(
                handle
                    .await
                    .map_err(|e| Error::Invalid(format!("the sandbox helper task failed: {e}")))
                    .and_then(|r| r),
            ),
            Slot::Empty => None,
        }
    }

    /// Kills whatever helper the slot holds; one on its way is called off
    /// (if it is already starting, dropping it kills it).
    pub(crate) async fn discard(self) {
        match self {
            Slot::Ready(parked) => parked.discard().await,
            Slot::Pending(handle) => {
                handle.abort();
                if let Ok(Ok(parked)) = handle.await {
                    parked.discard().await;
                }
            }
            Slot::Empty => {}
        }
    }
}
