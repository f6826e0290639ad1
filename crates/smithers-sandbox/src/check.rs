//! What this host can enforce, for `smithers sandbox check`.

use std::os::unix::process::CommandExt as _;
use std::path::Path;

use serde::Serialize;

use crate::native::cgroup::CgroupLayout;
use crate::{DockerConfig, NativeConfig};

/// One capability and whether the host has it.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub available: bool,
    pub detail: String,
    /// The native provider cannot give its guarantees without it.
    pub required: bool,
}

/// Everything `check_host` found.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub capabilities: Vec<Capability>,
}

impl HostReport {
    /// Whether the default (native) provider can give all its guarantees.
    pub fn native_ready(&self) -> bool {
        self.capabilities.iter().all(|c| c.available || !c.required)
    }
}

fn capability(name: &'static str, required: bool, result: Result<String, String>) -> Capability {
    match result {
        Ok(detail) => Capability {
            name,
            available: true,
            detail,
            required,
        },
        Err(detail) => Capability {
            name,
            available: false,
            detail,
            required,
        },
    }
}

fn bubblewrap(bwrap: &Path) -> Result<String, String> {
    let out = std::process::Command::new(bwrap)
        .arg("--version")
        .output()
        .map_err(|e| {
            format!(
                "{}: {e} (install the Debian package `bubblewrap`)",
                bwrap.display()
            )
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Namespaces as the native provider makes them: as the unprivileged
/// sandbox user when Smithers runs as root, which needs unprivileged user
/// namespaces (some hosts turn them off).
pub(crate) fn namespaces(bwrap: &Path, sandbox_user: (u32, u32)) -> Result<String, String> {
    let mut command = std::process::Command::new(bwrap);
    command.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--",
        "/bin/true",
    ]);
    let root = rustix::process::geteuid().is_root();
    if root {
        command.uid(sandbox_user.0).gid(sandbox_user.1);
    }
    let out = command.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(if root {
            format!(
                "user, pid, net, ipc, uts, cgroup, mount (as uid {}, unprivileged)",
                sandbox_user.0
            )
        } else {
            "user, pid, net, ipc, uts, cgroup, mount".into()
        })
    } else {
        Err(format!(
            "bubblewrap cannot create namespaces here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn seccomp() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    if status.lines().any(|l| l.starts_with("Seccomp:")) {
        Ok("filter mode".into())
    } else {
        Err("this kernel was built without seccomp".into())
    }
}

fn landlock() -> Result<String, String> {
    match crate::helper::landlock_abi() {
        0 => Err(
            "not offered by this kernel (filesystem writes are then confined by mounts only)"
                .into(),
        ),
        abi => Ok(format!("ABI {abi}")),
    }
}

fn cgroups() -> Result<String, String> {
    CgroupLayout::detect()
        .map(|l| format!("{} (memory, pids, cpu)", l.version.as_str()))
        .map_err(|e| e.to_string())
}

/// Real hardware virtualization: `/dev/kvm` that answers KVM_GET_API_VERSION
/// and a CPU that advertises VMX or SVM.
fn kvm() -> Result<String, String> {
    if !Path::new("/dev/kvm").exists() {
        return Err("no /dev/kvm".into());
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    if !flags.split_whitespace().any(|f| f == "vmx" || f == "svm") {
        return Err("/dev/kvm exists but the CPU advertises neither VMX nor SVM: not real hardware virtualization".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| "/dev/kvm opens and the CPU has hardware virtualization".to_string())
        .map_err(|e| format!("/dev/kvm cannot be opened: {e}"))
}

/// Probes this host for the native provider configured by `config`, and
/// the Docker engine (and image) of `docker`.
pub async fn check_host(config: &NativeConfig, docker: &DockerConfig) -> HostReport {
    let bwrap = config.bwrap.as_path();
    HostReport {
        capabilities: vec![
            capability("bubblewrap", true, bubblewrap(bwrap)),
            capability("namespaces", true, namespaces(bwrap, config.sandbox_user)),
            capability("seccomp", true, seccomp()),
            capability("landlock", false, landlock()),
            capability("cgroups", true, cgroups()),
            capability("docker", false, crate::docker::probe(docker).await),
            capability("kvm", false, kvm()),
        ],
    }
}
