//! The data directory: where the embedded database and key files live.

use std::path::{Path, PathBuf};

use crate::Error;

/// A data directory that exists and only its owner can enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `--data-dir`, else `SMITHERS_HOME`, else the platform's data directory
/// (`$XDG_DATA_HOME/smithers`, `~/.local/share/smithers`). Created with mode
/// 0700 if missing; an existing one is tightened to 0700.
pub fn resolve_data_dir(flag: Option<&Path>, env_home: Option<&str>) -> Result<DataDir, Error> {
    let path = match (flag, env_home.filter(|h| !h.is_empty())) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(home)) => PathBuf::from(home),
        (None, None) => dirs::data_dir()
            .map(|d| d.join("smithers"))
            .ok_or_else(|| {
                Error::Invalid(
                    "no data directory: none was named and the platform has no data directory"
                        .into(),
                )
            })?,
    };
    let io = |source| Error::DataDir {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&path).map_err(io)?;
    restrict(&path).map_err(io)?;
    Ok(DataDir { path })
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
