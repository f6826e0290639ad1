//! The provider interface every sandbox implementation gives.

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::{Error, SandboxSpec};

/// A sandbox's id: a UUIDv7, also its directory and cgroup name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SandboxId(pub String);

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command to run in a sandbox.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Program and arguments; the program is looked up on the sandbox's PATH.
    pub argv: Vec<String>,
    /// Extra environment for this command only.
    pub env: Vec<(String, String)>,
    /// Overrides the spec's timeout.
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> ExecRequest {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            timeout: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Bytes a command wrote, as they come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: Stream,
    pub bytes: Vec<u8>,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code, or 128 + signal when killed (124 on timeout).
    pub exit_code: i32,
    /// Killed because the wall-clock limit passed.
    pub timed_out: bool,
    /// Killed by the kernel for exceeding the memory limit.
    pub oom_killed: bool,
    pub duration: Duration,
}

impl ExecOutcome {
    /// Which limit ended the command, in words, if one did.
    pub fn limit_hit(&self) -> Option<&'static str> {
        if self.timed_out {
            Some("the time limit")
        } else if self.oom_killed {
            Some("the memory limit")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxStatus {
    /// Created, no command running.
    Idle,
    /// A command is running.
    Running,
}

/// What `destroy` removed and what a check afterwards found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Processes still alive that were killed.
    pub processes_killed: usize,
    /// Things removed: cgroups, directories, containers, volumes.
    pub removed: Vec<String>,
    /// What the check after destroy still found; empty means clean.
    pub remaining: Vec<String>,
}

impl PurgeReport {
    pub fn is_clean(&self) -> bool {
        self.remaining.is_empty()
    }
}

/// A way to run commands in disposable sandboxes.
#[allow(async_fn_in_trait)] // used through generics, not trait objects
pub trait Provider {
    /// The provider's name, as the command line spells it.
    fn name(&self) -> &'static str;
    async fn create(&self, spec: SandboxSpec) -> Result<SandboxId, Error>;
    /// Runs a command, sending its output to `output` as it comes.
    async fn exec(
        &self,
        id: &SandboxId,
        request: ExecRequest,
        output: mpsc::Sender<OutputChunk>,
    ) -> Result<ExecOutcome, Error>;
    /// Reads a file of the workspace (`path` relative to `/workspace`).
    async fn read_file(&self, id: &SandboxId, path: &str) -> Result<Vec<u8>, Error>;
    /// Writes a file of the workspace, creating directories on the way.
    async fn write_file(&self, id: &SandboxId, path: &str, contents: &[u8]) -> Result<(), Error>;
    /// Applies a unified diff (plain or git-style) to the workspace: all
    /// of it, or nothing if any hunk does not apply or any path would leave
    /// the workspace. Returns the paths changed, created or deleted.
    async fn apply_patch(&self, id: &SandboxId, patch: &str) -> Result<Vec<String>, Error>;
    async fn status(&self, id: &SandboxId) -> Result<SandboxStatus, Error>;
    /// Kills what runs, removes everything, and checks that nothing remains.
    async fn destroy(&self, id: &SandboxId) -> Result<PurgeReport, Error>;
}
