//! A minimal root filesystem assembled from the host's own files: the
//! programs asked for, every shared library they load (as the host's
//! dynamic loader resolves them, through `ldd`), a generated `/etc`, and
//! the mount points a sandbox needs. It is the root of a sandbox that must
//! not see the host's `/usr` (`Root::Directory`), and what a container
//! image is made from when nothing can be pulled.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;
use crate::native::etc_files;

/// What a root (or an image) holds unless other programs are asked for: a
/// shell, the common tools of build scripts, git.
pub const DEFAULT_PROGRAMS: &[&str] = &[
    "sh", "bash", "env", "cat", "ls", "cp", "mv", "rm", "mkdir", "rmdir", "ln", "touch", "chmod",
    "head", "tail", "cut", "tr", "sort", "uniq", "wc", "grep", "sed", "find", "xargs", "diff",
    "true", "false", "sleep", "id", "readlink", "dirname", "basename", "tee", "date", "git", "tar",
];

/// Where programs are looked up when given by name.
const SEARCH: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];
/// Directories every root gets, for bubblewrap's mounts and the helper.
pub const MOUNT_POINTS: &[&str] = &[
    "workspace",
    "tmp",
    "proc",
    "dev",
    ".smithers",
    "usr/bin",
    "etc",
];
/// Files bound in at run time: the helper, the egress proxy's socket.
pub const MOUNT_FILES: &[&str] = &[".smithers/init", ".smithers/proxy.sock"];

/// Why `root` cannot be a sandbox's root, if it cannot.
pub fn missing_mount_points(root: &Path) -> Option<String> {
    let missing: Vec<&str> = MOUNT_POINTS
        .iter()
        .chain(MOUNT_FILES)
        .copied()
        .filter(|p| !root.join(p).exists())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "root {} lacks {} (build it with `smithers sandbox rootfs`)",
            root.display(),
            missing.join(", ")
        )
    })
}

/// What `assemble` copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsReport {
    pub programs: Vec<PathBuf>,
    pub libraries: Vec<PathBuf>,
    pub bytes: u64,
}

fn find(program: &str) -> Result<PathBuf, Error> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Invalid(format!("{program} is not a file")))
        };
    }
    SEARCH
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Invalid(format!("no program {program:?} on this host")))
}

/// The shared objects `binary` loads, as absolute paths (none for a static one).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, Error> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(Error::io("cannot run ldd (Debian package libc-bin)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Static binaries and scripts: nothing to load.
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(" (").next().unwrap_or_default(),
            None => line.split(" (").next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            found.push(PathBuf::from(path));
        } else if line.contains("not found") {
            return Err(Error::Invalid(format!("{}: {line}", binary.display())));
        }
    }
    Ok(found)
}

/// Copies `from` (dereferenced) to the same absolute path under `root`.
fn copy_in(root: &Path, from: &Path) -> Result<u64, Error> {
    let relative = from.strip_prefix("/").unwrap_or(from);
    let target = root.join(relative);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(Error::io(format!("cannot create {}", parent.display())))?;
    }
    let bytes = std::fs::copy(from, &target)
        .map_err(Error::io(format!("cannot copy {}", from.display())))?;
    let mode = std::fs::metadata(from)
        .map_err(Error::io("cannot stat"))?
        .permissions()
        .mode()
        & 0o755;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .map_err(Error::io("cannot set a mode"))?;
    Ok(bytes)
}

/// Builds a root under `root` (which must not exist yet) with `programs`
/// (names or paths) and their libraries, plus the libraries of `helper`
/// (bound in at run time, it must find its own).
pub fn assemble(root: &Path, programs: &[String], helper: &Path) -> Result<RootfsReport, Error> {
    if root.exists() {
        return Err(Error::Invalid(format!("{} already exists", root.display())));
    }
    std::fs::create_dir_all(root)
        .map_err(Error::io(format!("cannot create {}", root.display())))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::io("cannot set a mode"))?;
    let mut report = RootfsReport::default();
    let mut libraries_needed: BTreeSet<PathBuf> = libraries(helper)?.into_iter().collect();
    for program in programs {
        let path = find(program)?;
        libraries_needed.extend(libraries(&path)?);
        // Found by name: it goes where PATH looks, /usr/bin.
        let placed = if program.contains('/') {
            path.clone()
        } else {
            Path::new("/usr/bin").join(program)
        };
        let relative = placed.strip_prefix("/").unwrap_or(&placed);
        let target = root.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("cannot create a directory"))?;
        }
        report.bytes += std::fs::copy(&path, &target)
            .map_err(Error::io(format!("cannot copy {}", path.display())))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(Error::io("cannot set a mode"))?;
        report.programs.push(placed);
    }
    for library in &libraries_needed {
        report.bytes += copy_in(root, library)?;
        report.libraries.push(library.clone());
    }
    for dir in MOUNT_POINTS {
        std::fs::create_dir_all(root.join(dir))
            .map_err(Error::io("cannot create a mount point"))?;
    }
    // Files bubblewrap binds onto must exist in a read-only root.
    for file in MOUNT_FILES {
        std::fs::write(root.join(file), b"").map_err(Error::io("cannot create a mount point"))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(Error::io("cannot set a mode"))?;
    // `/bin/sh` is where scripts look for a shell.
    if report.programs.iter().any(|p| p.ends_with("sh")) && !root.join("bin").exists() {
        std::os::unix::fs::symlink("usr/bin", root.join("bin"))
            .map_err(Error::io("cannot link /bin"))?;
    }
    for (name, contents) in etc_files() {
        std::fs::write(root.join("etc").join(name), contents)
            .map_err(Error::io("cannot write /etc"))?;
    }
    Ok(report)
}

/// The uid and gid that own the workspace and temporary directories in an
/// image, the sandbox user inside.
pub(crate) const SANDBOX_OWNER: u32 = 1000;

/// Writes `root` as a tar stream (an image layer for `docker import`):
/// entries owned by root except `/workspace` and `/tmp`, which belong to
/// the sandbox user (a volume mounted there takes the image's ownership);
/// symlinks kept as links, never followed; permission bits kept as they
/// are (`assemble` leaves no setuid bit).
pub fn write_tar(root: &Path, out: impl std::io::Write) -> Result<u64, Error> {
    tar_tree(root, out, tar::HeaderMode::Deterministic, |relative| {
        let owned = relative == Path::new("workspace") || relative == Path::new("tmp");
        let owner = if owned { u64::from(SANDBOX_OWNER) } else { 0 };
        let mode = (relative == Path::new("tmp")).then_some(0o1777);
        (owner, mode)
    })
}

/// Writes the tree under `root` (not `root` itself) as a tar stream: names
/// relative to it, in name order, symlinks kept as links, special files
/// left out. `owner_and_mode` gives each entry's uid and gid and, if it
/// should differ from the file's own, its mode; `mode` says what else of
/// the file's metadata is kept (times, with `Complete`).
pub(crate) fn tar_tree(
    root: &Path,
    out: impl std::io::Write,
    mode: tar::HeaderMode,
    owner_and_mode: impl Fn(&Path) -> (u64, Option<u32>),
) -> Result<u64, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let mut entries = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = root.join(&relative);
        let meta = std::fs::symlink_metadata(&full)
            .map_err(Error::io(format!("cannot stat {}", full.display())))?;
        if !relative.as_os_str().is_empty() {
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, mode);
            let (owner, forced) = owner_and_mode(&relative);
            header.set_uid(owner);
            header.set_gid(owner);
            if !meta.file_type().is_symlink() {
                header.set_mode(forced.unwrap_or(meta.mode() & 0o7777));
            }
            let io = |e: std::io::Error| Error::Io {
                context: format!("cannot archive {}", relative.display()),
                source: e,
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&full).map_err(io)?;
                builder
                    .append_link(&mut header, &relative, &target)
                    .map_err(io)?;
                entries += 1;
            } else if meta.is_dir() {
                builder
                    .append_data(&mut header, &relative, std::io::empty())
                    .map_err(io)?;
                entries += 1;
            } else if meta.is_file() {
                let file = std::fs::File::open(&full).map_err(io)?;
                builder
                    .append_data(&mut header, &relative, file)
                    .map_err(io)?;
                entries += 1;
            }
        }
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&full)
                .map_err(Error::io(format!("cannot read {}", full.display())))?
                .filter_map(|e| e.ok())
                .map(|e| relative.join(e.file_name()))
                .collect();
            // Sorted, and reversed for the stack: the archive is in name order.
            children.sort();
            stack.extend(children.into_iter().rev());
        }
    }
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(Error::io("cannot finish the archive"))?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_becomes_an_image_layer_with_the_sandbox_owning_its_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let helper = PathBuf::from("/bin/sh");
        let report = assemble(&root, &["sh".to_string()], &helper).unwrap();
        assert!(report.programs.contains(&PathBuf::from("/usr/bin/sh")));
        let mut layer = Vec::new();
        let entries = write_tar(&root, &mut layer).unwrap();
        assert!(entries > 10, "{entries}");
        let mut archive = tar::Archive::new(layer.as_slice());
        let mut seen = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().display().to_string();
            seen.insert(
                path,
                (
                    header.uid().unwrap(),
                    header.mode().unwrap(),
                    header.entry_type(),
                ),
            );
        }
        assert_eq!(seen["workspace"].0, 1000);
        assert_eq!(seen["tmp"], (1000, 0o1777, tar::EntryType::Directory));
        assert_eq!(seen["usr/bin/sh"].0, 0);
        assert_eq!(seen["bin"].2, tar::EntryType::Symlink);
        assert!(seen.contains_key("etc/passwd") && seen.contains_key(".smithers/init"));
        assert!(
            seen.keys().any(|k| k.ends_with("libc.so.6")),
            "{:?}",
            seen.keys()
        );
    }
}
