//! Resource limits with cgroups: v1 (a hierarchy per controller) or v2
//! (one unified hierarchy), whichever this host's memory, pids and cpu
//! controllers live in. Each sandbox gets its own group under the group
//! Smithers itself runs in.

use std::path::{Path, PathBuf};

use crate::{Error, Limits};

/// The controllers a sandbox needs.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }
}

/// Where new groups go, per controller (v1) or once (v2).
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    pub version: CgroupVersion,
    /// v1: the parent directory in each of memory, pids, cpu; v2: one.
    parents: Vec<PathBuf>,
}

/// One mount of a cgroup filesystem: where, and which controllers (v1).
struct Mount {
    point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

fn mounts(mountinfo: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // `… mount-point … - fstype source super-options`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let options = right.nth(1).unwrap_or_default();
        match fstype {
            "cgroup2" => out.push(Mount {
                point: PathBuf::from(point),
                v2: true,
                controllers: Vec::new(),
            }),
            "cgroup" => out.push(Mount {
                point: PathBuf::from(point),
                v2: false,
                controllers: options.split(',').map(str::to_string).collect(),
            }),
            _ => {}
        }
    }
    out
}

/// This process's group in a v1 controller's hierarchy, or in v2's (`None`).
fn own_path(proc_cgroup: &str, controller: Option<&str>) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            Some(c) => list.split(',').any(|l| l == c),
            None => list.is_empty(),
        };
        hit.then(|| path.to_string())
    })
}

fn join(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

impl CgroupLayout {
    /// Finds where this host keeps the memory, pids and cpu controllers.
    pub fn detect() -> Result<CgroupLayout, Error> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(Error::io("cannot read /proc/self/mountinfo"))?;
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(Error::io("cannot read /proc/self/cgroup"))?;
        Self::from_tables(&mountinfo, &proc_cgroup, |p| {
            std::fs::read_to_string(p).ok()
        })
    }

    fn from_tables(
        mountinfo: &str,
        proc_cgroup: &str,
        read: impl Fn(&Path) -> Option<String>,
    ) -> Result<CgroupLayout, Error> {
        let mounts = mounts(mountinfo);
        let v1: Option<Vec<PathBuf>> = CONTROLLERS
            .iter()
            .map(|c| {
                let mount = mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|x| x == c))?;
                Some(join(&mount.point, &own_path(proc_cgroup, Some(c))?))
            })
            .collect();
        if let Some(parents) = v1 {
            return Ok(CgroupLayout {
                version: CgroupVersion::V1,
                parents,
            });
        }
        if let Some(mount) = mounts.iter().find(|m| m.v2) {
            let own = own_path(proc_cgroup, None).unwrap_or_else(|| "/".into());
            let parent = join(&mount.point, &own);
            let available = read(&parent.join("cgroup.controllers")).unwrap_or_default();
            let missing: Vec<&str> = CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !available.split_whitespace().any(|a| a == *c))
                .collect();
            if missing.is_empty() {
                return Ok(CgroupLayout {
                    version: CgroupVersion::V2,
                    parents: vec![parent],
                });
            }
            return Err(Error::Unsupported(format!(
                "cgroup v2 at {} does not offer the {} controller(s) here",
                parent.display(),
                missing.join(", ")
            )));
        }
        Err(Error::Unsupported(
            "no cgroup hierarchy with the memory, pids and cpu controllers is mounted".into(),
        ))
    }
}

/// One sandbox's group: only paths, so a copy can be used without holding
/// the sandbox table's lock.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    version: CgroupVersion,
    /// v1: memory, pids, cpu; v2: one directory.
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    std::fs::write(path, value).map_err(Error::io(format!("cannot write {}", path.display())))
}

impl Cgroup {
    /// Creates the group `name` with `limits`.
    pub fn create(layout: &CgroupLayout, name: &str, limits: &Limits) -> Result<Cgroup, Error> {
        let dirs: Vec<PathBuf> = layout.parents.iter().map(|p| p.join(name)).collect();
        let group = Cgroup {
            version: layout.version,
            dirs,
        };
        if let Err(e) = group.set_up(layout, limits) {
            let _ = group.remove();
            return Err(e);
        }
        Ok(group)
    }

    fn set_up(&self, layout: &CgroupLayout, limits: &Limits) -> Result<(), Error> {
        if self.version == CgroupVersion::V2 {
            // Children get the controllers only if the parent hands them on.
            if let Some(parent) = layout.parents.first() {
                write(&parent.join("cgroup.subtree_control"), "+memory +pids +cpu").map_err(
                    |e| {
                        Error::Unsupported(format!(
                            "cannot delegate cgroup v2 controllers under {}: {e}",
                            parent.display()
                        ))
                    },
                )?;
            }
        }
        for dir in &self.dirs {
            std::fs::create_dir(dir)
                .map_err(Error::io(format!("cannot create {}", dir.display())))?;
        }
        self.set_limits(limits)
    }

    /// Sets (or changes) the group's limits.
    pub fn set_limits(&self, limits: &Limits) -> Result<(), Error> {
        let period: u64 = 100_000;
        let quota = u64::from(limits.millicpus) * period / 1000;
        match self.version {
            CgroupVersion::V1 => {
                let (memory, pids, cpu) = (&self.dirs[0], &self.dirs[1], &self.dirs[2]);
                // Swap counts too where the host accounts it; the combined
                // limit may not go below the memory limit, so order matters.
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, "-1")?;
                }
                write(
                    &memory.join("memory.limit_in_bytes"),
                    &limits.memory.to_string(),
                )?;
                if memsw.exists() {
                    write(&memsw, &limits.memory.to_string())?;
                }
                write(&pids.join("pids.max"), &limits.pids.to_string())?;
                write(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                write(&dir.join("memory.max"), &limits.memory.to_string())?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&dir.join("pids.max"), &limits.pids.to_string())?;
                write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The processes in the group.
    pub fn pids(&self) -> Vec<i32> {
        // Every process is in every controller's group; pids' (or the one) says.
        let dir = match self.version {
            CgroupVersion::V1 => &self.dirs[1],
            CgroupVersion::V2 => &self.dirs[0],
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in the group, again until none is left (a
    /// fork between reading the list and the kill is caught next round).
    pub fn kill_all(&self) -> usize {
        if self.version == CgroupVersion::V2 {
            let _ = std::fs::write(self.dirs[0].join("cgroup.kill"), "1");
        }
        let mut killed = 0;
        // A killed process leaves the group once the kernel has reaped it:
        // poll briefly, then less often, for up to about two seconds.
        for round in 0..400u32 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid)
                    && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
                {
                    killed += 1;
                }
            }
            let pause = if round < 50 { 100 } else { 5_000 };
            std::thread::sleep(std::time::Duration::from_micros(pause));
        }
        killed
    }

    /// How many times the kernel has OOM-killed in this group.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.version {
            CgroupVersion::V1 => (self.dirs[0].join("memory.oom_control"), "oom_kill"),
            CgroupVersion::V2 => (self.dirs[0].join("memory.events"), "oom_kill"),
        };
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(0)
    }

    /// Removes the group's directories (processes must be gone); returns
    /// what it removed, and fails naming what it could not.
    pub fn remove(&self) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        for dir in &self.dirs {
            if !dir.exists() {
                continue;
            }
            let mut last = None;
            // An emptied group can take a moment to become removable.
            for _ in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    // Gone meanwhile (another purge of the same orphan).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            match last {
                None => removed.push(format!("cgroup {}", dir.display())),
                Some(e) => {
                    return Err(Error::Io {
                        context: format!("cannot remove cgroup {}", dir.display()),
                        source: e,
                    });
                }
            }
        }
        Ok(removed)
    }

    /// Group directories that still exist.
    pub fn leftovers(&self) -> Vec<String> {
        self.dirs
            .iter()
            .filter(|d| d.exists())
            .map(|d| format!("cgroup {}", d.display()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 26 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 26 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 26 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
38 26 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED: &str = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn v1_controllers_win_on_a_hybrid_host() {
        let own = "9:memory:/jobs/a\n8:pids:/\n7:cpu,cpuacct:/x\n0::/\n";
        let layout = CgroupLayout::from_tables(HYBRID, own, |_| None).unwrap();
        assert_eq!(layout.version, CgroupVersion::V1);
        assert_eq!(
            layout.parents,
            [
                PathBuf::from("/sys/fs/cgroup/memory/jobs/a"),
                PathBuf::from("/sys/fs/cgroup/pids"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/x"),
            ]
        );
    }

    #[test]
    fn v2_needs_the_controllers() {
        let own = "0::/user.slice/smithers.service\n";
        let full = |_: &Path| Some("cpuset cpu io memory pids".to_string());
        let layout = CgroupLayout::from_tables(UNIFIED, own, full).unwrap();
        assert_eq!(layout.version, CgroupVersion::V2);
        assert_eq!(
            layout.parents,
            [PathBuf::from("/sys/fs/cgroup/user.slice/smithers.service")]
        );
        let partial = |_: &Path| Some("cpu io".to_string());
        let e = CgroupLayout::from_tables(UNIFIED, own, partial).unwrap_err();
        assert!(e.to_string().contains("memory, pids"), "{e}");
        assert!(CgroupLayout::from_tables("", own, |_| None).is_err());
    }
}
