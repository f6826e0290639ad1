//! The connection to the Docker engine: bollard for the API, with the
//! version negotiated down to what the engine speaks, and one request
//! bollard does not offer (the stat of a path in a container) made over
//! the same Unix socket.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bollard::Docker;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;

use crate::Error;

/// Where the engine listens unless `DOCKER_HOST` says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long one request may take. A command's wait is a request too, and
/// its own time limit is enforced by the provider, so this is only a bound
/// on a hung engine.
const REQUEST_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// The engine's Unix socket: `DOCKER_HOST=unix:///path`, or the default.
/// Only a local engine will do: sandboxes bind the helper and the egress
/// proxy's socket from this host.
pub fn engine_socket(docker_host: Option<&str>) -> Result<PathBuf, Error> {
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            _ => Err(Error::Unsupported(format!(
                "DOCKER_HOST={host}: the docker provider needs a local engine on a Unix socket (unix:///path)"
            ))),
        },
    }
}

/// Connects and negotiates the API version (the engine may be older than
/// the client: Debian's 20.10 speaks 1.41).
pub async fn connect(socket: &Path) -> Result<Docker, Error> {
    let text = socket
        .to_str()
        .ok_or_else(|| Error::Invalid(format!("socket path {} is not UTF-8", socket.display())))?;
    if !socket.exists() {
        return Err(Error::Unsupported(format!(
            "no Docker engine socket at {text} (is dockerd running?)"
        )));
    }
    let docker =
        Docker::connect_with_unix(text, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            .map_err(Error::engine(format!(
                "cannot reach the Docker engine at {text}"
            )))?;
    docker
        .negotiate_version()
        .await
        .map_err(Error::engine(format!(
            "the Docker engine at {text} does not answer"
        )))
}

/// What the engine reports of one path in a container, without following
/// a symlink in its last component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File {
        size: u64,
        mode: u32,
    },
    Directory,
    /// A symbolic link and where it leads, as the engine reports it: the
    /// engine resolves the target within the container (every link on the
    /// way followed), so it is absolute, e.g. `/workspace/config/prod.key`
    /// for a link written `config/prod.key`.
    Symlink(String),
    /// A device, socket or pipe.
    Other,
}

#[derive(serde::Deserialize)]
struct PathStat {
    size: u64,
    /// Go's `os.FileMode`: permission bits below, type bits on top.
    mode: u32,
    #[serde(rename = "linkTarget", default)]
    link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_TYPE: u32 = 0xff << 24;

/// The one request bollard lacks, over a connection pool of its own that
/// lives as long as the provider.
pub struct PathStats {
    client: Client<UnixConnector, Empty<bytes::Bytes>>,
    socket: PathBuf,
    api_version: String,
}

impl PathStats {
    pub fn new(socket: &Path, api_version: String) -> PathStats {
        PathStats {
            client: Client::builder(TokioExecutor::new()).build(UnixConnector),
            socket: socket.to_path_buf(),
            api_version,
        }
    }

    /// The API version agreed with the engine.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `HEAD /containers/{id}/archive?path=…`: the engine resolves every
    /// component but the last within the container's root and `lstat`s the
    /// last one.
    pub async fn stat(&self, container: &str, path: &str) -> Result<PathKind, Error> {
        let query = url_encode(path);
        let uri: hyper::Uri = hyperlocal::Uri::new(
            &self.socket,
            &format!(
                "/v{}/containers/{container}/archive?path={query}",
                self.api_version
            ),
        )
        .into();
        stat_request(&self.client, uri, container, path).await
    }
}

async fn stat_request(
    client: &Client<UnixConnector, Empty<bytes::Bytes>>,
    uri: hyper::Uri,
    container: &str,
    path: &str,
) -> Result<PathKind, Error> {
    let request = hyper::Request::head(uri.clone())
        .body(Empty::new())
        .map_err(|e| Error::Invalid(format!("cannot build a stat request: {e}")))?;
    let response = client.request(request).await.map_err(|e| Error::Io {
        context: format!("cannot stat {path} in container {container}"),
        source: std::io::Error::other(e),
    })?;
    let status = response.status();
    if status == hyper::StatusCode::NOT_FOUND {
        // The path, or the container (the caller made it, so the path).
        return Ok(PathKind::Missing);
    }
    let header = response
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Drain the (empty) body so the connection is reusable.
    let _ = response.into_body().collect().await;
    if status.is_server_error() && engine_says(client, uri, "too many links").await {
        // The engine follows a link to report its target, and a loop of
        // links fails that.
        return Err(Error::Invalid(format!(
            "{path:?} goes through too many symbolic links (a loop?)"
        )));
    }
    if !status.is_success() {
        return Err(Error::Invalid(format!(
            "the engine answered {status} to a stat of {path}"
        )));
    }
    let header = header.ok_or_else(|| {
        Error::Invalid(format!("the engine's stat of {path} carries no path stat"))
    })?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(header.as_bytes())
        .map_err(|e| Error::Invalid(format!("the engine's stat of {path} is not base64: {e}")))?;
    let stat: PathStat = serde_json::from_slice(&json)
        .map_err(|e| Error::Invalid(format!("the engine's stat of {path} does not parse: {e}")))?;
    Ok(kind_of(&stat))
}

/// Whether the engine's message for `GET uri` (a failed request: a HEAD
/// carries no message) contains `words`. The message itself is not passed
/// on: it names the engine's own directories.
async fn engine_says(
    client: &Client<UnixConnector, Empty<bytes::Bytes>>,
    uri: hyper::Uri,
    words: &str,
) -> bool {
    let Ok(request) = hyper::Request::get(uri).body(Empty::new()) else {
        return false;
    };
    let Ok(response) = client.request(request).await else {
        return false;
    };
    if response.status().is_success() {
        // An archive after all (the tree changed): not the failure asked about.
        return false;
    }
    let limited = http_body_util::Limited::new(response.into_body(), 64 * 1024);
    match limited.collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).contains(words),
        Err(_) => false,
    }
}

fn kind_of(stat: &PathStat) -> PathKind {
    if stat.mode & GO_MODE_SYMLINK != 0 || !stat.link_target.is_empty() {
        PathKind::Symlink(stat.link_target.clone())
    } else if stat.mode & GO_MODE_DIR != 0 {
        PathKind::Directory
    } else if stat.mode & GO_MODE_TYPE == 0 {
        PathKind::File {
            size: stat.size,
            mode: stat.mode & 0o777,
        }
    } else {
        PathKind::Other
    }
}

/// Percent-encodes a query value (everything but unreserved characters
/// and `/`).
fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_engines() {
        assert_eq!(engine_socket(None).unwrap(), Path::new(DEFAULT_SOCKET));
        assert_eq!(
            engine_socket(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            Path::new("/run/user/1000/docker.sock")
        );
        for remote in ["tcp://10.0.0.1:2375", "ssh://host", "unix://relative"] {
            assert!(matches!(
                engine_socket(Some(remote)),
                Err(Error::Unsupported(_))
            ));
        }
    }

    #[test]
    fn go_file_modes() {
        let stat = |mode, link: &str| PathStat {
            size: 3,
            mode,
            link_target: link.into(),
        };
        assert_eq!(
            kind_of(&stat(0o644, "")),
            PathKind::File {
                size: 3,
                mode: 0o644
            }
        );
        assert_eq!(kind_of(&stat(GO_MODE_DIR | 0o755, "")), PathKind::Directory);
        assert_eq!(
            kind_of(&stat(GO_MODE_SYMLINK | 0o777, "/etc")),
            PathKind::Symlink("/etc".into())
        );
        assert_eq!(kind_of(&stat(1 << 26, "")), PathKind::Other);
        assert_eq!(url_encode("/workspace/a b&c"), "/workspace/a%20b%26c");
    }
}
