//! Files of a Docker sandbox's workspace, read and written through the
//! engine's archive API on the sandbox's holder container (created, never
//! started, with the sandbox's volumes mounted and a read-only root).
//!
//! The workspace is written by hostile code, so every path is walked one
//! component at a time with the engine's `lstat`: a symlink anywhere on
//! the way, or a parent that is not a directory, refuses the operation.
//! Between commands no process of the sandbox exists (each command is its
//! own container), so nothing can swap a directory for a link between the
//! walk and the transfer; during a command the engine still resolves every
//! path inside the container's own root, and that root is read-only.

use std::io::Read as _;
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::engine::{PathKind, PathStats};
use crate::patch::Current;
use crate::resolve::Entry;
use crate::rootfs::SANDBOX_OWNER;
use crate::workspace::{MAX_FILE_BYTES, relative_components};
use crate::{Error, rootfs};

/// The engine-side view of one sandbox's workspace.
pub(super) struct Files<'a> {
    pub docker: &'a Docker,
    pub stats: &'a PathStats,
    pub holder: String,
}

/// Where a path's walk ended.
struct Walk {
    /// How many leading components exist as directories.
    parents: usize,
    /// The last component, if all its parents exist.
    last: PathKind,
}

fn absolute(parts: &[&str]) -> String {
    if parts.is_empty() {
        "/workspace".to_string()
    } else {
        format!("/workspace/{}", parts.join("/"))
    }
}

impl Files<'_> {
    async fn stat(&self, parts: &[&str]) -> Result<PathKind, Error> {
        self.stats.stat(&self.holder, &absolute(parts)).await
    }

    async fn walk(&self, path: &str, parts: &[&str]) -> Result<Walk, Error> {
        for depth in 1..parts.len() {
            match self.stat(&parts[..depth]).await? {
                PathKind::Directory => {}
                PathKind::Missing => {
                    return Ok(Walk {
                        parents: depth - 1,
                        last: PathKind::Missing,
                    });
                }
                PathKind::Symlink(_) => return Err(Error::Escape(path.to_string())),
                PathKind::File { .. } | PathKind::Other => {
                    return Err(Error::Invalid(format!(
                        "{:?} in {path:?} is not a directory",
                        parts[..depth].join("/")
                    )));
                }
            }
        }
        Ok(Walk {
            parents: parts.len() - 1,
            last: self.stat(parts).await?,
        })
    }

    /// The file as a patch sees it, `None` if it (or a directory on its
    /// way) does not exist; a link anywhere on the way is refused.
    pub async fn read_if_exists(&self, path: &str) -> Result<Option<Current>, Error> {
        let parts = relative_components(path)?;
        let walk = self.walk(path, &parts).await?;
        match walk.last {
            PathKind::Missing => Ok(None),
            PathKind::Symlink(_) => Err(Error::Escape(path.to_string())),
            PathKind::Directory | PathKind::Other => {
                Err(Error::Invalid(format!("{path:?} is not a regular file")))
            }
            PathKind::File { size, .. } if size > MAX_FILE_BYTES => Err(Error::Invalid(format!(
                "{path:?} is larger than {MAX_FILE_BYTES} bytes"
            ))),
            PathKind::File { mode, .. } => Ok(Some(Current {
                contents: self.download(path, &parts).await?,
                executable: mode & 0o100 != 0,
            })),
        }
    }

    /// A regular file's contents, reached without a link.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        match self.read_if_exists(path).await? {
            Some(current) => Ok(current.contents),
            None => Err(Error::Io {
                context: format!("workspace file {path:?}"),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        }
    }

    /// What `parts` (a workspace path whose parents are directories) is,
    /// without following it: the provider's half of `resolve`. A link's
    /// target comes as the engine reports it, already resolved.
    pub async fn entry(&self, parts: &[String]) -> Result<Entry, Error> {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(match self.stat(&parts).await? {
            PathKind::Missing => Entry::Missing,
            PathKind::Directory => Entry::Directory,
            PathKind::File { .. } => Entry::File,
            PathKind::Symlink(target) => Entry::Symlink(target),
            PathKind::Other => Entry::Other,
        })
    }

    async fn download(&self, path: &str, parts: &[&str]) -> Result<Vec<u8>, Error> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(&absolute(parts))
            .build();
        let mut stream = self
            .docker
            .download_from_container(&self.holder, Some(options));
        let mut archive = Vec::new();
        // The file plus its tar header and padding.
        let cap = MAX_FILE_BYTES + 64 * 1024;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::engine(format!("cannot read {path:?}")))?;
            archive.extend_from_slice(&chunk);
            if archive.len() as u64 > cap {
                return Err(Error::Invalid(format!(
                    "{path:?} is larger than {MAX_FILE_BYTES} bytes"
                )));
            }
        }
        let mut tar = tar::Archive::new(archive.as_slice());
        let mut entries = tar
            .entries()
            .map_err(Error::io(format!("cannot read the archive of {path:?}")))?;
        let mut entry = entries
            .next()
            .ok_or_else(|| Error::Invalid(format!("the engine sent no file for {path:?}")))?
            .map_err(Error::io(format!("cannot read the archive of {path:?}")))?;
        if !entry.header().entry_type().is_file() {
            return Err(Error::Invalid(format!("{path:?} is not a regular file")));
        }
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .map_err(Error::io(format!("cannot read the archive of {path:?}")))?;
        Ok(contents)
    }

    /// Writes the file, creating missing directories (owned by the sandbox
    /// user). `executable` sets its mode to 0755 or 0644; `None` keeps an
    /// existing file's permission bits (0644 for a new file).
    pub async fn write(
        &self,
        path: &str,
        contents: &[u8],
        executable: Option<bool>,
    ) -> Result<(), Error> {
        let parts = relative_components(path)?;
        let walk = self.walk(path, &parts).await?;
        let mode = match walk.last {
            PathKind::Missing => 0o644,
            PathKind::File { mode, .. } => mode,
            PathKind::Symlink(_) => return Err(Error::Escape(path.to_string())),
            PathKind::Directory | PathKind::Other => {
                return Err(Error::Invalid(format!("{path:?} is not a regular file")));
            }
        };
        let mode = match executable {
            Some(true) => 0o755,
            Some(false) => 0o644,
            None => mode,
        };
        let io = Error::io(format!("cannot archive {path:?}"));
        let mut builder = tar::Builder::new(Vec::new());
        let owned = |header: &mut tar::Header, mode: u32, size: u64| {
            header.set_uid(u64::from(SANDBOX_OWNER));
            header.set_gid(u64::from(SANDBOX_OWNER));
            header.set_mode(mode);
            header.set_size(size);
            header.set_mtime(now());
        };
        // Names relative to the deepest existing directory.
        let below = &parts[walk.parents..];
        for depth in 1..below.len() {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            owned(&mut header, 0o755, 0);
            builder
                .append_data(&mut header, below[..depth].join("/"), std::io::empty())
                .map_err(Error::io(format!("cannot archive {path:?}")))?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        owned(&mut header, mode, contents.len() as u64);
        builder
            .append_data(&mut header, below.join("/"), contents)
            .map_err(Error::io(format!("cannot archive {path:?}")))?;
        let archive = builder.into_inner().map_err(io)?;
        self.upload(&absolute(&parts[..walk.parents]), archive, path)
            .await
    }

    /// Copies a host directory into the (empty) workspace, everything owned
    /// by the sandbox user.
    pub async fn upload_tree(&self, from: &Path) -> Result<(), Error> {
        let mut archive = Vec::new();
        rootfs::tar_tree(from, &mut archive, tar::HeaderMode::Complete, |_| {
            (u64::from(SANDBOX_OWNER), None)
        })?;
        self.upload("/workspace", archive, &from.display().to_string())
            .await
    }

    async fn upload(&self, into: &str, archive: Vec<u8>, what: &str) -> Result<(), Error> {
        let options = UploadToContainerOptionsBuilder::new()
            .path(into)
            .no_overwrite_dir_non_dir("true")
            .build();
        self.docker
            .upload_to_container(
                &self.holder,
                Some(options),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(Error::engine(format!(
                "cannot write {what:?} into the workspace"
            )))
    }

    /// Checks that `path` names something removable (a file or a link, not
    /// a directory, reached without a link); returns its absolute path.
    pub async fn removable(&self, path: &str) -> Result<String, Error> {
        let parts = relative_components(path)?;
        let walk = self.walk(path, &parts).await?;
        match walk.last {
            PathKind::Missing => Err(Error::Io {
                context: format!("workspace file {path:?}"),
                source: std::io::ErrorKind::NotFound.into(),
            }),
            PathKind::Directory => Err(Error::Invalid(format!("{path:?} is a directory"))),
            PathKind::File { .. } | PathKind::Symlink(_) | PathKind::Other => Ok(absolute(&parts)),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
