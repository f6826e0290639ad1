//! The checkpoint signing key: kept out of the database, in
//! `SMITHERS_AUDIT_SIGNING_KEY` or in a 0600 key file in the data directory
//! (created on first use).

use std::io::Write;
use std::path::{Path, PathBuf};

use smithers_audit::CheckpointSigner;
use zeroize::Zeroizing;

use crate::{DataDir, Error};

/// The environment variable holding the key: 64 hex digits (a 32-byte Ed25519 seed).
pub const SIGNING_KEY_ENV: &str = "SMITHERS_AUDIT_SIGNING_KEY";
/// The key file's name in the data directory.
pub const SIGNING_KEY_FILE: &str = "audit-signing.key";

/// Where the signing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    /// A new key was generated and written to this file.
    Created(PathBuf),
}

fn decode(text: &str, origin: &str) -> Result<CheckpointSigner, Error> {
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), &mut seed[..]).map_err(|_| {
        Error::Invalid(format!(
            "{origin} must hold 64 hex digits (a 32-byte Ed25519 seed)"
        ))
    })?;
    Ok(CheckpointSigner::from_seed(&seed[..])?)
}

/// Loads the key from `env_value` (the value of [`SIGNING_KEY_ENV`]) if
/// set, else from the key file, creating it when missing. A key file that
/// others can read is refused.
pub fn load_signing_key(
    data_dir: &DataDir,
    env_value: Option<&str>,
) -> Result<(CheckpointSigner, KeySource), Error> {
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        return Ok((decode(value, SIGNING_KEY_ENV)?, KeySource::Environment));
    }
    let path = data_dir.path().join(SIGNING_KEY_FILE);
    let io = |source| Error::DataDir {
        path: path.display().to_string(),
        source,
    };
    match create(&path) {
        Ok(signer) => return Ok((signer, KeySource::Created(path))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    check_private(&path)?;
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io)?);
    Ok((
        decode(&text, &path.display().to_string())?,
        KeySource::File(path),
    ))
}

fn create(path: &Path) -> std::io::Result<CheckpointSigner> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(|e| std::io::Error::other(e.to_string()))?;
    let signer = CheckpointSigner::from_seed(&seed[..]).map_err(std::io::Error::other)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(&seed[..])));
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(signer)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| Error::DataDir {
            path: path.display().to_string(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::Invalid(format!(
            "the audit signing key {} is readable by others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Error> {
    Ok(())
}
