//! What a sandbox is made of: root, workspace, environment, limits,
//! egress allowlist and time limit.

use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// The root filesystem a sandbox sees, always read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// The host's system directories (`/usr` and the `/bin`, `/lib`, …
    /// links or directories), a generated `/etc` and the host's CA
    /// certificates; nothing else of the host.
    Host,
    /// A directory holding a whole root filesystem.
    Directory(PathBuf),
}

/// Resource limits, enforced by cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes (swap included where the host accounts it).
    pub memory: u64,
    /// Most processes and threads at once.
    pub pids: u32,
    /// CPU time per wall-clock time, in thousandths of a CPU.
    pub millicpus: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 512 << 20,
            pids: 256,
            millicpus: 1000,
        }
    }
}

/// Everything needed to create a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub root: Root,
    /// Copied into the sandbox's workspace; empty workspace if `None`.
    pub workspace_from: Option<PathBuf>,
    /// Environment of every command (nothing of the host's is inherited).
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// Hosts the sandbox may reach through the egress proxy; empty: none.
    pub egress: Vec<String>,
    /// Wall-clock limit of each command unless the request says otherwise.
    pub timeout: Duration,
}

/// The default wall-clock limit of a command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            root: Root::Host,
            workspace_from: None,
            env: Vec::new(),
            limits: Limits::default(),
            egress: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl SandboxSpec {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.limits.memory < (16 << 20) {
            return Err(Error::Invalid(
                "the memory limit must be at least 16M".into(),
            ));
        }
        if self.limits.pids < 4 {
            return Err(Error::Invalid("the PID limit must be at least 4".into()));
        }
        if self.limits.millicpus < 10 {
            return Err(Error::Invalid("the CPU limit must be at least 0.01".into()));
        }
        if self.timeout.is_zero() {
            return Err(Error::Invalid("the timeout must be positive".into()));
        }
        for (key, _) in &self.env {
            let ok = !key.is_empty()
                && !key.starts_with(|c: char| c.is_ascii_digit())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(Error::Invalid(format!(
                    "environment variable name {key:?} must be letters, digits and `_`"
                )));
            }
        }
        crate::egress::Allowlist::parse(&self.egress)?;
        Ok(())
    }
}

/// `512M`, `2G`, `1048576` (bytes), `64K`; binary multiples.
pub fn parse_memory(text: &str) -> Result<u64, Error> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 10),
        Some((at, 'm' | 'M')) => (&text[..at], 20),
        Some((at, 'g' | 'G')) => (&text[..at], 30),
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| Error::Invalid(format!("{text:?} is not a size like 512M or 2G")))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| Error::Invalid(format!("{text:?} is too large")))
}

/// `30m`, `90s`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    humantime::parse_duration(text.trim())
        .map_err(|_| Error::Invalid(format!("{text:?} is not a duration like 30s, 5m or 1h")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("2g").unwrap(), 2 << 30);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("99999999999999G").is_err());
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("soon").is_err());
    }
}
