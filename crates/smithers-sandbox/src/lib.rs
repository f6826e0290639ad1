//! Sandboxed execution: the boundary between hostile code and everything
//! else. One [`Provider`] trait and one [`SandboxSpec`]; every provider
//! gives the same guarantees and passes the same hostile test suite.
//!
//! The native provider ([`NativeProvider`]) runs each command under
//! bubblewrap with every namespace unshared, a read-only root assembled
//! from the host's system directories (never its `/root`, `/home` or
//! `/etc`), a writable workspace at `/workspace`, a private `/tmp`, all
//! capabilities dropped, and, applied by a small helper inside the sandbox
//! just before the command starts, Landlock (writes only in the workspace
//! and `/tmp`) and a seccomp filter. Memory, PID and CPU limits are cgroup
//! limits (v1 or v2, whichever the host has); the sandbox user is an
//! unprivileged host uid even when Smithers runs as root.

mod check;
pub mod docker;
pub mod egress;
mod error;
pub mod helper;
mod native;
pub mod owner;
pub mod patch;
mod provider;
mod resolve;
pub mod rootfs;
mod spec;
mod table;
mod workspace;

pub use check::{HostReport, check_host};
pub use docker::{DockerConfig, DockerProvider};
pub use egress::EgressSettings;
pub use error::Error;
pub use native::{NativeConfig, NativeProvider};
pub use patch::ParsedPatch;
pub use provider::{
    ExecOutcome, ExecRequest, OutputChunk, Provider, PurgeReport, Resolved, SandboxId,
    SandboxStatus, Stream,
};
pub use spec::{Limits, Root, SandboxSpec, parse_duration, parse_memory};
