//! Files of a workspace, read and written from the host side. The
//! workspace is written by hostile code, so every path is resolved by the
//! kernel beneath the workspace directory without following any link
//! (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): a symlink,
//! `..` or magic link fails instead of being followed, even a link that
//! stays inside, so what was decided on (the path `resolve` gave) is what
//! is read, and a link swapped in afterwards fails the read.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

use crate::Error;
use crate::patch::Current;
use crate::resolve::Entry;

/// Reads and writes of a workspace never take more than this.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;

/// Lexical check first, for a clear message; the kernel enforces it.
pub(crate) fn relative_components(path: &str) -> Result<Vec<&str>, Error> {
    let trimmed = path.strip_prefix("/workspace/").unwrap_or(path);
    if trimmed.is_empty() || trimmed.contains('\0') {
        return Err(Error::Invalid(format!("{path:?} is not a file path")));
    }
    let mut parts = Vec::new();
    for component in Path::new(trimmed).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::CurDir => {}
            _ => return Err(Error::Escape(path.to_string())),
        }
    }
    if parts.is_empty() {
        return Err(Error::Invalid(format!("{path:?} is not a file path")));
    }
    Ok(parts)
}

/// Runs file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Io {
            context: "workspace file work stopped".into(),
            source: std::io::Error::other(e),
        })?
}

fn open_root(workspace: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        workspace,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        context: format!("cannot open workspace {}", workspace.display()),
        source: e.into(),
    })
}

fn beneath(path: &str, e: rustix::io::Errno) -> Error {
    if e == rustix::io::Errno::XDEV || e == rustix::io::Errno::LOOP {
        Error::Escape(path.to_string())
    } else {
        Error::Io {
            context: format!("workspace file {path:?}"),
            source: e.into(),
        }
    }
}

/// How every host-side path is resolved: beneath the workspace, no link
/// followed.
const STRICT: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Reads `path` of the workspace: a regular file reached without a link.
pub(crate) fn read(workspace: &Path, path: &str) -> Result<Vec<u8>, Error> {
    read_current(workspace, path).map(|current| current.contents)
}

fn read_current(workspace: &Path, path: &str) -> Result<Current, Error> {
    let parts = relative_components(path)?;
    let root = open_root(workspace)?;
    let fd = openat2(
        &root,
        parts.join("/"),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NOFOLLOW,
        Mode::empty(),
        STRICT,
    )
    .map_err(|e| beneath(path, e))?;
    let mut file = File::from(fd);
    let metadata = file.metadata().map_err(Error::io(path))?;
    if !metadata.is_file() {
        return Err(Error::Invalid(format!("{path:?} is not a regular file")));
    }
    let executable = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o100 != 0;
    let mut out = Vec::new();
    std::io::Read::by_ref(&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(Error::io(format!("cannot read {path:?}")))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Invalid(format!(
            "{path:?} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(Current {
        contents: out,
        executable,
    })
}

/// Writes `path` of the workspace, creating its directories; every
/// component is resolved without following any symlink. New files and
/// directories belong to `owner` (the sandbox user). `executable` sets
/// the file's mode to 0755 or 0644; `None` keeps an existing file's mode
/// (0644 for a new file).
pub(crate) fn write(
    workspace: &Path,
    path: &str,
    contents: &[u8],
    executable: Option<bool>,
    owner: Option<(u32, u32)>,
) -> Result<(), Error> {
    let parts = relative_components(path)?;
    let strict = STRICT;
    let chown = |fd: &OwnedFd| -> Result<(), Error> {
        if let Some((uid, gid)) = owner {
            rustix::fs::fchown(
                fd,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(|e| beneath(path, e))?;
        }
        Ok(())
    };
    let mut dir = open_root(workspace)?;
    let (file_name, parents) = parts
        .split_last()
        .ok_or_else(|| Error::Invalid(format!("{path:?} is not a file path")))?;
    for part in parents {
        match rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(beneath(path, e)),
        }
        let next = openat2(
            &dir,
            *part,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            strict,
        )
        .map_err(|e| beneath(path, e))?;
        chown(&next)?;
        dir = next;
    }
    let fd = openat2(
        &dir,
        *file_name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
        strict,
    )
    .map_err(|e| beneath(path, e))?;
    chown(&fd)?;
    if let Some(executable) = executable {
        let mode = if executable { 0o755 } else { 0o644 };
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| beneath(path, e))?;
    }
    let mut file = File::from(fd);
    file.write_all(contents)
        .and_then(|()| file.flush())
        .map_err(Error::io(format!("cannot write {path:?}")))
}

/// The file `path` as a patch sees it, `Ok(None)` for a file that is not
/// there; a link anywhere on the way is refused, a missing file included.
pub(crate) fn read_if_exists(workspace: &Path, path: &str) -> Result<Option<Current>, Error> {
    match read_current(workspace, path) {
        Ok(current) => Ok(Some(current)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the file `path` of the workspace, resolving its directory
/// beneath the workspace without following any symlink.
pub(crate) fn remove(workspace: &Path, path: &str) -> Result<(), Error> {
    let parts = relative_components(path)?;
    let (name, parents) = parts
        .split_last()
        .ok_or_else(|| Error::Invalid(format!("{path:?} is not a file path")))?;
    let root = open_root(workspace)?;
    let dir = if parents.is_empty() {
        root
    } else {
        openat2(
            &root,
            parents.join("/"),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            STRICT,
        )
        .map_err(|e| beneath(path, e))?
    };
    rustix::fs::unlinkat(&dir, *name, rustix::fs::AtFlags::empty()).map_err(|e| beneath(path, e))
}

/// What `parts` (a workspace path whose parents are directories) is,
/// without following it: the provider's half of `resolve`. Its directory
/// is opened without following any link, so a link swapped in on the way
/// fails rather than leads the look out.
pub(crate) fn entry(workspace: &Path, parts: &[String]) -> Result<Entry, Error> {
    let path = parts.join("/");
    let Some((name, parents)) = parts.split_last() else {
        return Ok(Entry::Directory);
    };
    let root = open_root(workspace)?;
    let dir = if parents.is_empty() {
        root
    } else {
        match openat2(
            &root,
            parents.join("/"),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            STRICT,
        ) {
            Ok(dir) => dir,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(Entry::Missing),
            Err(e) => return Err(beneath(&path, e)),
        }
    };
    let stat = match rustix::fs::statat(&dir, name.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
    {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(Entry::Missing),
        Err(e) => return Err(beneath(&path, e)),
    };
    Ok(match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::Directory => Entry::Directory,
        rustix::fs::FileType::RegularFile => Entry::File,
        rustix::fs::FileType::Symlink => {
            let target = rustix::fs::readlinkat(&dir, name.as_str(), Vec::new())
                .map_err(|e| beneath(&path, e))?;
            let target = target.into_string().map_err(|_| {
                Error::Invalid(format!(
                    "the link {path:?} leads to a name that is not UTF-8"
                ))
            })?;
            Entry::Symlink(target)
        }
        _ => Entry::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(dir.path().join("secret"), b"host").unwrap();
        write(&ws, "a/b/c.txt", b"hello", None, None).unwrap();
        assert_eq!(read(&ws, "a/b/c.txt").unwrap(), b"hello");
        assert_eq!(read(&ws, "/workspace/a/b/c.txt").unwrap(), b"hello");
        for bad in ["../secret", "/etc/passwd", "a/../../secret", ""] {
            assert!(read(&ws, bad).is_err(), "{bad}");
            assert!(write(&ws, bad, b"x", None, None).is_err(), "{bad}");
        }
        // A symlink planted in the workspace does not lead out.
        std::os::unix::fs::symlink(dir.path().join("secret"), ws.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("dirlink")).unwrap();
        assert!(matches!(read(&ws, "link"), Err(Error::Escape(_))));
        assert!(write(&ws, "link", b"x", None, None).is_err());
        assert!(write(&ws, "dirlink/secret", b"x", None, None).is_err());
        assert_eq!(std::fs::read(dir.path().join("secret")).unwrap(), b"host");
    }

    #[test]
    fn links_inside_are_not_followed_either_and_entries_say_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        write(ws, "config/prod.key", b"key", None, None).unwrap();
        std::os::unix::fs::symlink("config/prod.key", ws.join("notes.txt")).unwrap();
        std::os::unix::fs::symlink("config", ws.join("cfg")).unwrap();
        for through in ["notes.txt", "cfg/prod.key"] {
            assert!(
                matches!(read(ws, through), Err(Error::Escape(_))),
                "{through}"
            );
        }
        assert!(matches!(
            read_if_exists(ws, "cfg/new"),
            Err(Error::Escape(_))
        ));
        assert_eq!(read(ws, "config/prod.key").unwrap(), b"key");
        let entry =
            |path: &str| entry(ws, &path.split('/').map(str::to_string).collect::<Vec<_>>());
        assert_eq!(
            entry("notes.txt").unwrap(),
            Entry::Symlink("config/prod.key".into())
        );
        assert_eq!(entry("config").unwrap(), Entry::Directory);
        assert_eq!(entry("config/prod.key").unwrap(), Entry::File);
        assert_eq!(entry("nope/x").unwrap(), Entry::Missing);
        assert!(matches!(entry("cfg/prod.key"), Err(Error::Escape(_))));

        write(ws, "run.sh", b"#!/bin/sh\n", Some(true), None).unwrap();
        let executable = |path| read_if_exists(ws, path).unwrap().unwrap().executable;
        assert!(executable("run.sh"));
        write(ws, "run.sh", b"#!/bin/sh\n", None, None).unwrap();
        assert!(executable("run.sh"), "None keeps the mode");
        write(ws, "run.sh", b"#!/bin/sh\n", Some(false), None).unwrap();
        assert!(!executable("run.sh"));
    }
}
