//! Files of a workspace, read and written from the host side. The
//! workspace is written by hostile code, so every path is resolved by the
//! kernel beneath the workspace directory (`openat2` with
//! `RESOLVE_BENEATH`): a symlink, `..` or magic link that points out fails
//! instead of being followed.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

use crate::Error;

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

/// Reads `path` of the workspace.
pub(crate) fn read(workspace: &Path, path: &str) -> Result<Vec<u8>, Error> {
    let parts = relative_components(path)?;
    let root = open_root(workspace)?;
    let fd = openat2(
        &root,
        parts.join("/"),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| beneath(path, e))?;
    let mut file = File::from(fd);
    if !file.metadata().map_err(Error::io(path))?.is_file() {
        return Err(Error::Invalid(format!("{path:?} is not a regular file")));
    }
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
    Ok(out)
}

/// Writes `path` of the workspace, creating its directories; every
/// component is resolved without following any symlink. New files and
/// directories belong to `owner` (the sandbox user).
pub(crate) fn write(
    workspace: &Path,
    path: &str,
    contents: &[u8],
    owner: Option<(u32, u32)>,
) -> Result<(), Error> {
    let parts = relative_components(path)?;
    let strict = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
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
    let mut file = File::from(fd);
    file.write_all(contents)
        .and_then(|()| file.flush())
        .map_err(Error::io(format!("cannot write {path:?}")))
}

/// Whether `path` exists in the workspace (as a regular file), `Ok(None)`
/// for a file that is not there; its contents otherwise.
pub(crate) fn read_if_exists(workspace: &Path, path: &str) -> Result<Option<Vec<u8>>, Error> {
    match read(workspace, path) {
        Ok(bytes) => Ok(Some(bytes)),
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
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| beneath(path, e))?
    };
    rustix::fs::unlinkat(&dir, *name, rustix::fs::AtFlags::empty()).map_err(|e| beneath(path, e))
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
        write(&ws, "a/b/c.txt", b"hello", None).unwrap();
        assert_eq!(read(&ws, "a/b/c.txt").unwrap(), b"hello");
        assert_eq!(read(&ws, "/workspace/a/b/c.txt").unwrap(), b"hello");
        for bad in ["../secret", "/etc/passwd", "a/../../secret", ""] {
            assert!(read(&ws, bad).is_err(), "{bad}");
            assert!(write(&ws, bad, b"x", None).is_err(), "{bad}");
        }
        // A symlink planted in the workspace does not lead out.
        std::os::unix::fs::symlink(dir.path().join("secret"), ws.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("dirlink")).unwrap();
        assert!(matches!(read(&ws, "link"), Err(Error::Escape(_))));
        assert!(write(&ws, "link", b"x", None).is_err());
        assert!(write(&ws, "dirlink/secret", b"x", None).is_err());
        assert_eq!(std::fs::read(dir.path().join("secret")).unwrap(), b"host");
    }
}
