//! The provider interface every sandbox implementation gives.

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::patch::ParsedPatch;
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

/// Where a workspace path leads once every symbolic link on the way is
/// followed (see [`Provider::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Inside the workspace: the normalized workspace-relative path (`""`
    /// is the workspace itself; no `.`, `..` or empty components).
    Inside(String),
    /// Out of the workspace: the absolute path (in the sandbox's view) it
    /// leads to, as far as it was followed: nothing out of the workspace
    /// is looked at, so what follows the first component out is kept as
    /// written (`..` included).
    Outside(String),
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
    /// Where `path` leads, like `realpath` confined to the workspace.
    /// `path` is workspace-relative or absolute in the sandbox's view
    /// (`/workspace/…`; any other absolute path is `Outside`). Components
    /// are taken left to right: `.` is skipped, `..` goes up (above the
    /// workspace is `/`, where only `workspace` leads back in), and each
    /// existing component is looked at without following it. A symbolic
    /// link's target takes its place: a relative target from the link's
    /// directory, an absolute one from `/` (so `/workspace/…` continues
    /// inside, anything else is `Outside`). From the first component that
    /// does not exist (or follows a file), the rest is kept as written,
    /// normalized; so a dangling link resolves to its target as written.
    ///
    /// Errors: more than 40 links on the way (a loop), a NUL in the path,
    /// an unknown sandbox, or a failure looking. The answer describes the
    /// workspace at the time of the call; file operations never follow
    /// links themselves, so a link swapped in afterwards makes them fail
    /// rather than lead elsewhere.
    ///
    /// The native provider looks at each link's target as written; the
    /// Docker engine reports targets already resolved within the
    /// container, so a link leading out and back in (through `/tmp`, say)
    /// is `Inside` there and `Outside` (where it left) natively.
    async fn resolve(&self, id: &SandboxId, path: &str) -> Result<Resolved, Error>;
    /// Reads a regular file of the workspace (`path` relative to
    /// `/workspace`, at most 64 MiB). A symbolic link anywhere on the way
    /// is refused (`Error::Escape`), even one that stays inside: callers
    /// [`resolve`](Provider::resolve) first and read what it leads to.
    async fn read_file(&self, id: &SandboxId, path: &str) -> Result<Vec<u8>, Error>;
    /// Writes a file of the workspace, creating directories on the way.
    async fn write_file(&self, id: &SandboxId, path: &str, contents: &[u8]) -> Result<(), Error>;
    /// Applies a parsed patch to the workspace: the very parse the caller
    /// decided on (its [`ParsedPatch::paths`]). All of it, or nothing if
    /// any hunk does not apply, or any file it touches is reached through
    /// a symbolic link, is not a regular file, or (for a creation or a
    /// rename's destination) already exists; everything is read and
    /// checked before the first write. Returns the paths changed, created
    /// or deleted, sorted.
    async fn apply_patch(
        &self,
        id: &SandboxId,
        patch: &ParsedPatch<'_>,
    ) -> Result<Vec<String>, Error>;
    async fn status(&self, id: &SandboxId) -> Result<SandboxStatus, Error>;
    /// Kills what runs, removes everything, and checks that nothing remains.
    async fn destroy(&self, id: &SandboxId) -> Result<PurgeReport, Error>;
}
